import type { z } from 'zod';
import { OAuthError, type OAuthErrorCode } from '../errors.js';

// PostgreSQL's text (and its JSON parser) refuses NUL, and a UTF-16 surrogate that is not half of
// a pair has no UTF-8 form: PostgreSQL's JSON and Cedar's JSON input refuse its escape, and a
// driver that encodes it silently turns it into U+FFFD (two different ids becoming one).
const nul = '\u0000';
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What is wrong with a string that cannot be stored or evaluated, or undefined when it can. */
export function textProblem(text: string): string | undefined {
  if (text.includes(nul)) return 'a NUL character';
  return loneSurrogate.test(text) ? 'an unpaired UTF-16 surrogate' : undefined;
}

/** Where in a JSON value the first unstorable string is, and what is wrong with it. */
export interface UnstorableText {
  /** Member names and array indexes down to the string (to the object, for a bad member name). */
  readonly path: readonly (string | number)[];
  /** Reads after the path: "contains a NUL character". */
  readonly problem: string;
}

interface Visit {
  readonly value: unknown;
  readonly key: string | number | undefined;
  readonly parent: Visit | undefined;
}

function pathOf(visit: Visit): (string | number)[] {
  const path: (string | number)[] = [];
  for (let at: Visit | undefined = visit; at?.key !== undefined; at = at.parent) path.push(at.key);
  return path.reverse();
}

/**
 * The first string in a JSON value (member names included), in document order, that cannot be
 * stored. Walked without recursion: a body may nest as deep as its size allows.
 */
export function findUnstorableText(value: unknown): UnstorableText | undefined {
  const pending: Visit[] = [{ value, key: undefined, parent: undefined }];
  for (let visit = pending.pop(); visit !== undefined; visit = pending.pop()) {
    const node = visit.value;
    if (typeof node === 'string') {
      const problem = textProblem(node);
      if (problem !== undefined) return { path: pathOf(visit), problem: `contains ${problem}` };
    } else if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) pending.push({ value: node[i], key: i, parent: visit });
    } else if (typeof node === 'object' && node !== null) {
      const members = Object.entries(node);
      for (const [name] of members) {
        const problem = textProblem(name);
        if (problem !== undefined) return { path: pathOf(visit), problem: `has a member name with ${problem}` };
      }
      for (let i = members.length - 1; i >= 0; i--)
        pending.push({
          value: (members[i] as [string, unknown])[1],
          key: (members[i] as [string, unknown])[0],
          parent: visit,
        });
    }
  }
  return undefined;
}

/** A member name as an error description may show it: short printable ASCII, else a placeholder. */
export function shownName(name: string | number): string | number {
  return typeof name === 'number' || /^[\x21-\x7E]{1,64}$/.test(name) ? name : '(member)';
}

/** Names a place in a value for an error description, after `prefix` if not empty: `resource.properties.note`, `act.sub`. */
export function describePath(path: readonly (string | number)[], prefix = ''): string {
  return [...(prefix === '' ? [] : [prefix]), ...path.map(shownName)].join('.');
}

/** Refuses a value holding unstorable text, naming where: "`name`.path contains a NUL character" (`name` may be empty). */
export function assertStorableText(value: unknown, name: string, code: OAuthErrorCode = 'invalid_request'): void {
  const found = findUnstorableText(value);
  if (found !== undefined) throw new OAuthError(code, `${describePath(found.path, name)} ${found.problem}`);
}

/** Adds to a zod schema the refusal of unstorable text anywhere in what it parsed, as an issue at its path. */
export function storable<T extends z.ZodType>(schema: T): T {
  return schema.check((payload) => {
    const found = findUnstorableText(payload.value);
    if (found !== undefined)
      payload.issues.push({
        code: 'custom',
        input: payload.value,
        path: found.path.map(shownName),
        message: found.problem,
      });
  }) as T;
}
