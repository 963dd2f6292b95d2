import { Validator, type Schema } from '@cfworker/json-schema';
import { z } from 'zod';
import { OAuthError, type OAuthErrorCode } from './errors.js';

/** One RFC 9396 authorization details entry. */
export type AuthorizationDetail = Readonly<Record<string, unknown>> & { readonly type: string };

/** How a field of a child entry must relate to the parent's for the child to be covered. */
export const attenuationRules = ['equal', 'max', 'min', 'subset'] as const;
export type AttenuationRule = (typeof attenuationRules)[number];

const pointer = z.string().regex(/^(\/[^/]+)+$/, 'must be a JSON pointer such as /instructedAmount/amount');

/** The declaration file of one type (`schemas/authorization-details/<type>.json`). */
export const detailTypeFileSchema = z.strictObject({
  type: z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/),
  description: z.string().min(1),
  schema: z.record(z.string(), z.unknown()),
  attenuation: z.record(pointer, z.enum(attenuationRules)),
  decisions: z
    .record(
      z.string().min(1),
      z.strictObject({
        actions: z.array(z.string().min(1)).optional(),
        context: z.record(pointer, z.string().min(1)),
      }),
    )
    .default({}),
  sentence: z.string().min(1),
  labels: z.record(pointer, z.record(z.string(), z.string())).default({}),
  /** The sentence and labels in other languages, by primary language tag (`de`, `fr`). */
  translations: z
    .record(
      z.string().regex(/^[a-z]{2,3}$/, 'must be a primary language tag such as de or fr'),
      z.strictObject({ sentence: z.string().min(1), labels: z.record(pointer, z.record(z.string(), z.string())).default({}) }),
    )
    .default({}),
});
export type DetailTypeFile = z.infer<typeof detailTypeFileSchema>;

/**
 * A compiled type: its validator (built once), rules, decision mappings and sentence. Decisions
 * and labels are Maps: they are looked up by a resource server's action and by values from a
 * request, which may be "constructor" or "__proto__".
 */
export interface DetailType {
  readonly type: string;
  readonly description: string;
  readonly validator: Validator;
  readonly rules: readonly (readonly [string, AttenuationRule])[];
  readonly decisions: ReadonlyMap<string, DetailTypeFile['decisions'][string]>;
  readonly sentence: string;
  readonly labels: Labels;
  /** The sentence and labels in other languages, by primary language tag. */
  readonly translations: ReadonlyMap<string, { readonly sentence: string; readonly labels: Labels }>;
}

/** Labels of a type's values, by JSON pointer, then by value. */
type Labels = ReadonlyMap<string, ReadonlyMap<string, string>>;

function labelMap(labels: DetailTypeFile['labels']): Labels {
  return new Map(Object.entries(labels).map(([path, byValue]) => [path, new Map(Object.entries(byValue))]));
}

/** The types a deployment accepts, by name. */
export type DetailTypes = ReadonlyMap<string, DetailType>;

/** A type declaration that cannot be used. */
export class DetailTypeError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid authorization_details type ${file}:\n${problems.map((p) => `  ${file}: ${p}`).join('\n')}`);
    this.name = 'DetailTypeError';
  }
}

/** Leaf JSON pointers a JSON Schema's object properties declare, recursively. */
function leafPointers(schema: Record<string, unknown>, prefix = ''): string[] {
  const properties = schema.properties as Record<string, Record<string, unknown>> | undefined;
  if (schema.type !== 'object' || properties === undefined) return prefix === '' ? [] : [prefix];
  return Object.entries(properties).flatMap(([name, sub]) => leafPointers(sub, `${prefix}/${name}`));
}

/** Validates a type declaration and compiles its JSON Schema once; every field needs a rule. */
export function compileDetailType(file: string, input: unknown): DetailType {
  const parsed = detailTypeFileSchema.safeParse(input);
  if (!parsed.success) throw new DetailTypeError(file, parsed.error.issues.map((i) => `/${i.path.join('/')}: ${i.message}`));
  const doc = parsed.data;
  const problems: string[] = [];
  for (const leaf of leafPointers(doc.schema)) {
    if (leaf !== '/type' && doc.attenuation[leaf] === undefined) problems.push(`/attenuation: the field ${leaf} has no attenuation rule`);
  }
  for (const declared of Object.keys(doc.attenuation)) {
    if (!leafPointers(doc.schema).includes(declared)) problems.push(`/attenuation${declared.replaceAll('/', '~1')}: the schema declares no field ${declared}`);
  }
  if (problems.length > 0) throw new DetailTypeError(file, problems);
  return {
    type: doc.type,
    description: doc.description,
    validator: new Validator(doc.schema as Schema, '2020-12', false),
    rules: Object.entries(doc.attenuation),
    decisions: new Map(Object.entries(doc.decisions)),
    sentence: doc.sentence,
    labels: labelMap(doc.labels),
    translations: new Map(Object.entries(doc.translations).map(([language, t]) => [language, { sentence: t.sentence, labels: labelMap(t.labels) }])),
  };
}

/** Reads the value at a JSON pointer (undefined when absent). */
export function at(value: unknown, path: string): unknown {
  let node = value;
  for (const part of path.slice(1).split('/')) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[part.replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return node;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Exact comparison of non-negative or negative decimal numbers given as numbers or strings. */
function compareDecimal(a: unknown, b: unknown): number | undefined {
  const parse = (v: unknown): { sign: bigint; digits: bigint; scale: number } | undefined => {
    const text = typeof v === 'number' && Number.isFinite(v) ? String(v) : v;
    if (typeof text !== 'string' || !/^-?\d{1,30}(\.\d{1,18})?$/.test(text)) return undefined;
    const negative = text.startsWith('-');
    const [whole = '0', fraction = ''] = text.replace('-', '').split('.');
    return { sign: negative ? -1n : 1n, digits: BigInt(whole + fraction), scale: fraction.length };
  };
  const x = parse(a);
  const y = parse(b);
  if (x === undefined || y === undefined) return undefined;
  const scale = Math.max(x.scale, y.scale);
  const left = x.sign * x.digits * 10n ** BigInt(scale - x.scale);
  const right = y.sign * y.digits * 10n ** BigInt(scale - y.scale);
  return left < right ? -1 : left > right ? 1 : 0;
}

/** Why `child` is not within `parent` at a field, or undefined when it is. */
function violates(rule: AttenuationRule, parent: unknown, child: unknown): string | undefined {
  switch (rule) {
    case 'equal':
      return deepEqual(parent, child) ? undefined : 'must equal the granted value';
    case 'max': {
      const order = compareDecimal(child, parent);
      return order !== undefined && order <= 0 ? undefined : `exceeds the granted ${JSON.stringify(parent)}`;
    }
    case 'min': {
      const order = compareDecimal(child, parent);
      return order !== undefined && order >= 0 ? undefined : `is below the granted ${JSON.stringify(parent)}`;
    }
    case 'subset': {
      const granted = Array.isArray(parent) ? parent : [parent];
      const asked = Array.isArray(child) ? child : [child];
      const extra = asked.find((c) => !granted.some((g) => deepEqual(g, c)));
      return extra === undefined ? undefined : `${JSON.stringify(extra)} is not granted`;
    }
  }
}

/**
 * The first field at which `child` is not covered by `parent` (same type assumed), checking
 * `pointers` (default: every rule). A field the parent sets and the child leaves out is not covered:
 * dropping it would widen the grant.
 */
export function uncovered(type: DetailType, parent: AuthorizationDetail, child: Readonly<Record<string, unknown>>, pointers?: ReadonlySet<string>): { pointer: string; reason: string } | undefined {
  for (const [path, rule] of type.rules) {
    if (pointers !== undefined && !pointers.has(path)) continue;
    const granted = at(parent, path);
    if (granted === undefined) continue;
    const asked = at(child, path);
    if (asked === undefined) return { pointer: path, reason: 'is missing, but the grant restricts it' };
    const why = violates(rule, granted, asked);
    if (why !== undefined) return { pointer: path, reason: why };
  }
  return undefined;
}

function refuse(description: string): OAuthError {
  return new OAuthError('invalid_authorization_details', description);
}

/** Parses and validates the `authorization_details` parameter against the declared types. */
export function parseAuthorizationDetails(raw: string | undefined, types: DetailTypes, maxEntries: number): AuthorizationDetail[] | undefined {
  if (raw === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw refuse('authorization_details is not valid JSON');
  }
  if (!Array.isArray(value)) throw refuse('authorization_details must be a JSON array');
  if (value.length > maxEntries) throw refuse(`authorization_details has more than ${maxEntries} entries`);
  value.forEach((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw refuse(`authorization_details[${i}] must be an object`);
    const name = (entry as { type?: unknown }).type;
    if (typeof name !== 'string') throw refuse(`authorization_details[${i}] lacks a string "type"`);
    const type = types.get(name);
    if (type === undefined) throw refuse(`authorization_details[${i}] has unknown type "${name.slice(0, 100)}"`);
    const result = type.validator.validate(entry);
    if (!result.valid) {
      // The last error is the innermost one, which names the field (cfworker lists outer ones first).
      const error = result.errors.at(-1);
      const where = (error?.instanceLocation ?? '#').replace(/^#/, '') || '/';
      const message = error?.keyword === 'false' ? 'is not a member this type declares' : (error?.error ?? 'is invalid');
      throw refuse(`authorization_details[${i}] ${where}: ${message}`);
    }
  });
  return value as AuthorizationDetail[];
}

/** Reads the `authorization_details` claim of a verified token (absent means none). */
export function authorizationDetailsClaim(value: unknown, param: string, errorCode: OAuthErrorCode = 'invalid_request'): AuthorizationDetail[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((e) => typeof e === 'object' && e !== null && !Array.isArray(e) && typeof (e as { type?: unknown }).type === 'string')) {
    throw new OAuthError(errorCode, `${param} has a malformed authorization_details claim`);
  }
  return value as AuthorizationDetail[];
}

/**
 * Grants requested entries only when each is covered by an entry `held` (by `holder`); without a
 * request, the held entries carry over unchanged, so a hop never drops a narrowing entry.
 */
export function attenuateAuthorizationDetails(types: DetailTypes, requested: AuthorizationDetail[] | undefined, held: readonly AuthorizationDetail[], holder: string): AuthorizationDetail[] {
  if (requested === undefined) return [...held];
  if (held.length > 0 && requested.length === 0) throw refuse(`authorization_details may not be dropped from ${holder} that carries them`);
  requested.forEach((entry, i) => {
    const type = types.get(entry.type) as DetailType;
    const sameType = held.filter((h) => h.type === entry.type);
    if (sameType.length === 0) throw refuse(`authorization_details[${i}] is not covered: ${holder} holds no ${entry.type} entry`);
    const misses = sameType.map((h) => uncovered(type, h, entry));
    if (misses.some((m) => m === undefined)) return;
    const first = misses[0] as { pointer: string; reason: string };
    throw refuse(`authorization_details[${i}] is not covered by ${holder}: ${first.pointer} ${first.reason}`);
  });
  return requested;
}

/** The outcome of checking a resource server's action against a token's details. */
export type DetailMatch = { readonly applies: false } | { readonly applies: true; readonly entry: AuthorizationDetail | undefined; readonly reason: string | undefined };

/**
 * A token that carries authorization_details must hold an entry covering a governed action (one
 * a type's `decisions` names): its mapped context values and the declared actions. Returns the
 * matching entry. A token without details is governed by its scope alone.
 */
export function matchDecision(types: DetailTypes, held: readonly AuthorizationDetail[], action: string, context: Readonly<Record<string, unknown>>): DetailMatch {
  const governing = [...types.values()].filter((t) => t.decisions.has(action));
  if (governing.length === 0 || held.length === 0) return { applies: false };
  let reason = `the token holds no ${governing.map((t) => t.type).join(' or ')} entry`;
  for (const type of governing) {
    const mapping = type.decisions.get(action) as DetailTypeFile['decisions'][string];
    const asked: Record<string, unknown> = {};
    const pointers = new Set<string>(Object.keys(mapping.context));
    for (const [path, key] of Object.entries(mapping.context)) {
      if (Object.hasOwn(context, key)) setAt(asked, path, context[key]);
    }
    if (mapping.actions !== undefined) {
      setAt(asked, '/actions', mapping.actions);
      pointers.add('/actions');
    }
    for (const entry of held.filter((h) => h.type === type.type)) {
      const miss = uncovered(type, entry, asked, pointers);
      if (miss === undefined) return { applies: true, entry, reason: undefined };
      reason = `${type.type} ${miss.pointer} ${miss.reason}`;
    }
  }
  return { applies: true, entry: undefined, reason };
}

function setAt(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.slice(1).split('/');
  let node = target;
  parts.slice(0, -1).forEach((p) => {
    node[p] ??= {};
    node = node[p] as Record<string, unknown>;
  });
  node[parts.at(-1) as string] = value;
}

/** The word that joins the last two items of a list, per language. */
const lastJoin: Readonly<Record<string, string>> = { en: 'and', de: 'und', fr: 'et' };

function words(values: readonly string[], language: string): string {
  if (values.length <= 1) return values.join('');
  return `${values.slice(0, -1).join(', ')} ${lastJoin[language] ?? 'and'} ${values.at(-1)}`;
}

/**
 * One plain sentence for an entry, from its type's template in `language` (English when the type
 * has no translation): `{/pointer}` is a value (lists read "a, b and c", labelled values use their
 * label), `[…]` is shown only when its values are present.
 */
export function describeDetail(types: DetailTypes, entry: AuthorizationDetail, language = 'en'): string {
  const type = types.get(entry.type);
  if (type === undefined) return `${entry.type}: ${JSON.stringify(entry)}`;
  const translated = type.translations.get(language);
  const sentence = translated?.sentence ?? type.sentence;
  const labelsOf = translated?.labels ?? type.labels;
  const wordsIn = translated === undefined ? 'en' : language;
  const render = (template: string): string | undefined => {
    let missing = false;
    const text = template.replace(/\{([^}]+)\}/g, (_m, path: string) => {
      const value = at(entry, path);
      if (value === undefined) {
        missing = true;
        return '';
      }
      const labels = labelsOf.get(path);
      const list = (Array.isArray(value) ? value : [value]).map((v) => labels?.get(String(v)) ?? String(v));
      return words(list, wordsIn);
    });
    return missing ? undefined : text;
  };
  const withOptional = sentence.replace(/\[([^\]]*)\]/g, (_m, inner: string) => render(inner) ?? '');
  return render(withOptional) ?? type.description;
}
