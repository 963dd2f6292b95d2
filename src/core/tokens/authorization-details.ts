import { Validator, type Schema } from '@cfworker/json-schema';
import { z } from 'zod';
import { OAuthError, echo, type OAuthErrorCode } from '../errors.js';
import { jsonNestingDepth, maxJsonDepth } from '../input/json-depth.js';

/** One RFC 9396 authorization details entry. */
export type AuthorizationDetail = Readonly<Record<string, unknown>> & { readonly type: string };

/** How a field of a child entry must relate to the parent's for the child to be covered. */
const attenuationRules = ['equal', 'max', 'min', 'subset'] as const;
export type AttenuationRule = (typeof attenuationRules)[number];

const pointer = z.string().regex(/^(\/[^/]+)+$/, 'must be a JSON pointer such as /instructedAmount/amount');

/** The declaration file of one type (`schemas/authorization-details/<type>.json`). */
const detailTypeFileSchema = z.strictObject({
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
      z.strictObject({
        sentence: z.string().min(1),
        labels: z.record(pointer, z.record(z.string(), z.string())).default({}),
      }),
    )
    .default({}),
});
type DetailTypeFile = z.infer<typeof detailTypeFileSchema>;

/**
 * A compiled type: its validator (built once), rules, decision mappings and sentence. Decisions
 * and labels are Maps: they are looked up by a resource server's action and by values from a
 * request, which may be "constructor" or "__proto__".
 */
export interface DetailType {
  readonly type: string;
  readonly description: string;
  readonly schema: Readonly<Record<string, unknown>>;
  readonly validator: Validator;
  /**
   * Where and why a partial entry (what a decision's context gives of one) fails the schema with
   * no member required, or undefined when it passes.
   */
  readonly partialProblem: (entry: Readonly<Record<string, unknown>>) => SchemaProblem | undefined;
  readonly rules: readonly (readonly [string, AttenuationRule])[];
  /** The schema of each `max` or `min` field, which both sides of a comparison must satisfy. */
  readonly bounds: ReadonlyMap<string, Validator>;
  /** Per governed action (`decisions`), how its context becomes a partial entry, worked out once. */
  readonly governs: ReadonlyMap<string, Governance>;
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

/** How a governed action's context becomes a partial entry of its type. */
export interface Governance {
  /** Each mapped member: its pointer, the context key it reads, and its schema. */
  readonly fields: readonly {
    readonly path: string;
    readonly key: string;
    readonly member: Readonly<Record<string, unknown>> | undefined;
  }[];
  readonly actions: readonly string[] | undefined;
  /** The pointers a held entry is checked at. */
  readonly pointers: ReadonlySet<string>;
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

/** The subschema of the member at a JSON pointer, following `properties`. */
function fieldSchema(schema: Readonly<Record<string, unknown>>, path: string): Record<string, unknown> | undefined {
  let node: Record<string, unknown> | undefined = schema;
  for (const part of path.slice(1).split('/')) {
    const properties = node?.properties as Record<string, Record<string, unknown>> | undefined;
    node = properties !== undefined && Object.hasOwn(properties, part) ? properties[part] : undefined;
  }
  return node;
}

/** Leaf JSON pointers a JSON Schema's object properties declare, recursively. */
function leafPointers(schema: Record<string, unknown>, prefix = ''): string[] {
  const properties = schema.properties as Record<string, Record<string, unknown>> | undefined;
  if (schema.type !== 'object' || properties === undefined) return prefix === '' ? [] : [prefix];
  return Object.entries(properties).flatMap(([name, sub]) => leafPointers(sub, `${prefix}/${name}`));
}

/**
 * The schema with `required` dropped along its members (an `if` inside `allOf` keeps its own), so
 * a partial entry is checked field by field with every other keyword intact.
 */
function withoutRequired(schema: Record<string, unknown>): Record<string, unknown> {
  const { required: _required, properties, ...rest } = schema;
  if (typeof properties !== 'object' || properties === null) return rest;
  return {
    ...rest,
    properties: Object.fromEntries(
      Object.entries(properties as Record<string, Record<string, unknown>>).map(([name, sub]) => [
        name,
        withoutRequired(sub),
      ]),
    ),
  };
}

/** How many checked partial entries a type remembers, and the longest (JSON characters) it keeps. */
const rememberedEntries = 4096;
const maxRememberedEntry = 1024;
/**
 * JSON text that tells 1e400 (Infinity) from null, which JSON.stringify writes alike; the slower
 * replacer runs only when a null shows up.
 */
const exactJson = (value: unknown): string => {
  const text = JSON.stringify(value);
  return text.includes('null')
    ? JSON.stringify(value, (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? `\u0000${v}` : v))
    : text;
};

/**
 * A schema check that remembers its last answers by the exact JSON checked: the schema validator
 * takes tens of microseconds an entry (each `if` is a subschema run), resource servers ask about
 * the same amounts again and again, and the answer depends on nothing else.
 */
function rememberedProblems(
  validator: Validator,
): (value: Readonly<Record<string, unknown>>) => SchemaProblem | undefined {
  const known = new Map<string, SchemaProblem | null>();
  return (value) => {
    const key = exactJson(value);
    const remembered = known.get(key);
    if (remembered !== undefined) return remembered ?? undefined;
    const problem = schemaProblem(validator, value);
    if (key.length <= maxRememberedEntry) {
      if (known.size >= rememberedEntries) known.delete(known.keys().next().value as string);
      known.set(key, problem ?? null);
    }
    return problem;
  };
}

/** Validates a type declaration and compiles its JSON Schema once; every field needs a rule. */
export function compileDetailType(file: string, input: unknown): DetailType {
  const parsed = detailTypeFileSchema.safeParse(input);
  if (!parsed.success)
    throw new DetailTypeError(
      file,
      parsed.error.issues.map((i) => `/${i.path.join('/')}: ${i.message}`),
    );
  const doc = parsed.data;
  const problems: string[] = [];
  for (const leaf of leafPointers(doc.schema)) {
    if (leaf !== '/type' && doc.attenuation[leaf] === undefined)
      problems.push(`/attenuation: the field ${leaf} has no attenuation rule`);
  }
  for (const declared of Object.keys(doc.attenuation)) {
    if (!leafPointers(doc.schema).includes(declared))
      problems.push(`/attenuation${declared.replaceAll('/', '~1')}: the schema declares no field ${declared}`);
  }
  if (problems.length > 0) throw new DetailTypeError(file, problems);
  return {
    type: doc.type,
    description: doc.description,
    schema: doc.schema,
    validator: new Validator(doc.schema as Schema, '2020-12', false),
    partialProblem: rememberedProblems(new Validator(withoutRequired(doc.schema) as Schema, '2020-12', false)),
    rules: Object.entries(doc.attenuation),
    bounds: new Map(
      Object.entries(doc.attenuation)
        .filter(([, rule]) => rule === 'max' || rule === 'min')
        .map(([path]) => [path, new Validator((fieldSchema(doc.schema, path) ?? {}) as Schema, '2020-12', false)]),
    ),
    governs: new Map(
      Object.entries(doc.decisions).map(([action, mapping]): [string, Governance] => [
        action,
        {
          fields: Object.entries(mapping.context).map(([path, key]) => ({
            path,
            key,
            member: fieldSchema(doc.schema, path),
          })),
          actions: mapping.actions,
          pointers: new Set([...Object.keys(mapping.context), ...(mapping.actions === undefined ? [] : ['/actions'])]),
        },
      ]),
    ),
    sentence: doc.sentence,
    labels: labelMap(doc.labels),
    translations: new Map(
      Object.entries(doc.translations).map(([language, t]) => [
        language,
        { sentence: t.sentence, labels: labelMap(t.labels) },
      ]),
    ),
  };
}

/** Reads the value at a JSON pointer (undefined when absent). */
function at(value: unknown, path: string): unknown {
  let node = value;
  for (const part of path.slice(1).split('/')) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[part.replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return node;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (
    typeof a !== 'object' ||
    typeof b !== 'object' ||
    a === null ||
    b === null ||
    Array.isArray(a) !== Array.isArray(b)
  )
    return false;
  const ka = Object.keys(a);
  return (
    ka.length === Object.keys(b).length &&
    ka.every(
      (k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  );
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

/**
 * Why `child` is not within `parent` at a field, or undefined when it is. A `max` or `min` field
 * compares only values its schema accepts (`field`): a negative, exponent or oversized amount is
 * never "no larger" than a limit, and a limit outside the schema covers nothing.
 */
function violates(
  rule: AttenuationRule,
  parent: unknown,
  child: unknown,
  field: Validator | undefined,
): string | undefined {
  switch (rule) {
    case 'equal':
      return deepEqual(parent, child) ? undefined : 'must equal the granted value';
    case 'max':
    case 'min': {
      const outside = field?.validate(child).errors.at(-1);
      if (outside !== undefined) return `is outside the schema: ${echo(outside.error, 120)}`;
      // JSON has no infinite number, but 1e400 reads as one: name it as it is.
      const granted = echo(
        typeof parent === 'number' && !Number.isFinite(parent) ? String(parent) : JSON.stringify(parent),
      );
      if (field?.validate(parent).valid === false)
        return `cannot be compared: the granted ${granted} is outside the schema`;
      const order = compareDecimal(child, parent);
      if (order === undefined) return `cannot be compared with the granted ${granted}`;
      if (rule === 'max') return order <= 0 ? undefined : `exceeds the granted ${granted}`;
      return order >= 0 ? undefined : `is below the granted ${granted}`;
    }
    case 'subset': {
      const granted = Array.isArray(parent) ? parent : [parent];
      const asked = Array.isArray(child) ? child : [child];
      const extra = asked.find((c) => !granted.some((g) => deepEqual(g, c)));
      return extra === undefined ? undefined : `${echo(JSON.stringify(extra))} is not granted`;
    }
  }
}

/**
 * The first field at which `child` is not covered by `parent` (same type assumed), checking
 * `pointers` (default: every rule). A field the parent sets and the child leaves out is not covered:
 * dropping it would widen the grant.
 */
function uncovered(
  type: DetailType,
  parent: AuthorizationDetail,
  child: Readonly<Record<string, unknown>>,
  pointers?: ReadonlySet<string>,
): { pointer: string; reason: string } | undefined {
  for (const [path, rule] of type.rules) {
    if (pointers !== undefined && !pointers.has(path)) continue;
    const granted = at(parent, path);
    if (granted === undefined) continue;
    const asked = at(child, path);
    if (asked === undefined) return { pointer: path, reason: 'is missing, but the grant restricts it' };
    const why = violates(rule, granted, asked, type.bounds.get(path));
    if (why !== undefined) return { pointer: path, reason: why };
  }
  return undefined;
}

function refuse(description: string): OAuthError {
  return new OAuthError('invalid_authorization_details', description);
}

/** Parses and validates the `authorization_details` parameter against the declared types. */
export function parseAuthorizationDetails(
  raw: string | undefined,
  types: DetailTypes,
  maxEntries: number,
): AuthorizationDetail[] | undefined {
  if (raw === undefined) return undefined;
  if (jsonNestingDepth(raw) > maxJsonDepth)
    throw refuse(`authorization_details nests deeper than ${maxJsonDepth} levels`);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw refuse('authorization_details is not valid JSON');
  }
  if (!Array.isArray(value)) throw refuse('authorization_details must be a JSON array');
  if (value.length > maxEntries) throw refuse(`authorization_details has more than ${maxEntries} entries`);
  value.forEach((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      throw refuse(`authorization_details[${i}] must be an object`);
    const name = (entry as { type?: unknown }).type;
    if (typeof name !== 'string') throw refuse(`authorization_details[${i}] lacks a string "type"`);
    const type = types.get(name);
    if (type === undefined) throw refuse(`authorization_details[${i}] has unknown type "${echo(name)}"`);
    const problem = schemaProblem(type.validator, entry);
    if (problem !== undefined) throw refuse(`authorization_details[${i}] ${problem.where}: ${problem.message}`);
  });
  return value as AuthorizationDetail[];
}

/** Where and why a value fails a schema, as a caller may be told. */
export interface SchemaProblem {
  readonly where: string;
  readonly message: string;
}

/** Where and why a value fails a schema, as a caller may be told (member names are the caller's), or undefined when it passes. */
function schemaProblem(validator: Validator, value: unknown): SchemaProblem | undefined {
  const result = validator.validate(value);
  if (result.valid) return undefined;
  // The last error is the innermost one, which names the field (cfworker lists outer ones first).
  const error = result.errors.at(-1);
  const where = echo((error?.instanceLocation ?? '#').replace(/^#/, '') || '/', 120);
  const message =
    error?.keyword === 'false' ? 'is not a member this type declares' : echo(error?.error ?? 'is invalid', 160);
  return { where, message };
}

/** Reads the `authorization_details` claim of a verified token (absent means none). */
export function authorizationDetailsClaim(
  value: unknown,
  param: string,
  errorCode: OAuthErrorCode = 'invalid_request',
): AuthorizationDetail[] {
  if (value === undefined) return [];
  if (
    !Array.isArray(value) ||
    !value.every(
      (e) =>
        typeof e === 'object' && e !== null && !Array.isArray(e) && typeof (e as { type?: unknown }).type === 'string',
    )
  ) {
    throw new OAuthError(errorCode, `${param} has a malformed authorization_details claim`);
  }
  return value as AuthorizationDetail[];
}

/**
 * Refuses a token whose entry of a known type fails that type's schema (an upstream identity
 * provider's claim, say), so a limit outside the schema is never carried down a chain.
 */
export function checkHeldDetails(types: DetailTypes, held: readonly AuthorizationDetail[], param: string): void {
  held.forEach((entry, i) => {
    const type = types.get(entry.type);
    const problem = type === undefined ? undefined : schemaProblem(type.validator, entry);
    if (problem !== undefined)
      throw new OAuthError(
        'invalid_request',
        `${param} has an authorization_details[${i}] outside its type's schema: ${problem.where}: ${problem.message}`,
      );
  });
}

/**
 * Grants requested entries only when each is covered by an entry `held` (by `holder`); without a
 * request, the held entries carry over unchanged, so a hop never drops a narrowing entry.
 */
export function attenuateAuthorizationDetails(
  types: DetailTypes,
  requested: AuthorizationDetail[] | undefined,
  held: readonly AuthorizationDetail[],
  holder: string,
): AuthorizationDetail[] {
  if (requested === undefined) return [...held];
  if (held.length > 0 && requested.length === 0)
    throw refuse(`authorization_details may not be dropped from ${holder} that carries them`);
  requested.forEach((entry, i) => {
    const type = types.get(entry.type) as DetailType;
    const sameType = held.filter((h) => h.type === entry.type);
    if (sameType.length === 0)
      throw refuse(`authorization_details[${i}] is not covered: ${holder} holds no ${entry.type} entry`);
    const misses = sameType.map((h) => uncovered(type, h, entry));
    if (misses.some((m) => m === undefined)) return;
    const first = misses[0] as { pointer: string; reason: string };
    throw refuse(`authorization_details[${i}] is not covered by ${holder}: ${first.pointer} ${first.reason}`);
  });
  return requested;
}

/** The outcome of checking a resource server's action against a token's details. */
export type DetailMatch =
  | { readonly applies: false }
  | { readonly applies: true; readonly entry: AuthorizationDetail | undefined; readonly reason: string | undefined };

/** What a governed action's context asks of one type: the partial entry it stands for and the fields to check. */
export interface GovernedContext {
  readonly type: DetailType;
  readonly asked: Readonly<Record<string, unknown>>;
  readonly pointers: ReadonlySet<string>;
}

/**
 * A context value read as the member its type declares: a JSON number where the schema wants a
 * string is the number's decimal text (so `50` and `"50"` are one amount, and `1e-7` reads
 * "1e-7", which a decimal pattern refuses); a single value where it wants an array is a list of one.
 */
function asMember(schema: Readonly<Record<string, unknown>> | undefined, value: unknown): unknown {
  if (schema?.type === 'string' && typeof value === 'number') return String(value);
  if (schema?.type === 'array' && !Array.isArray(value)) return [value];
  return value;
}

/**
 * The entries a governed action's context stands for, one per type whose `decisions` name the
 * action, each checked against its type's schema (every member optional) before any rule or
 * policy sees it. A value outside the schema (a negative or exponent amount, more decimals than
 * the currency has) is `invalid_request` naming the context member. Ungoverned actions give none.
 */
export function readGovernedContext(
  types: DetailTypes,
  action: string,
  context: Readonly<Record<string, unknown>>,
): GovernedContext[] {
  const governed: GovernedContext[] = [];
  for (const type of types.values()) {
    const governance = type.governs.get(action);
    if (governance === undefined) continue;
    const asked: Record<string, unknown> = { type: type.type };
    for (const { path, key, member } of governance.fields) {
      if (Object.hasOwn(context, key) && context[key] !== undefined) setAt(asked, path, asMember(member, context[key]));
    }
    if (governance.actions !== undefined) asked.actions = governance.actions;
    const problem = type.partialProblem(asked);
    if (problem !== undefined) {
      const member = governance.fields.find(
        ({ path }) => problem.where === path || problem.where.startsWith(`${path}/`),
      )?.key;
      throw new OAuthError(
        'invalid_request',
        `${member === undefined ? 'context' : `context.${member}`} is outside the ${type.type} schema at ${problem.where}: ${problem.message}`,
      );
    }
    governed.push({ type, asked, pointers: governance.pointers });
  }
  return governed;
}

/**
 * A token that carries authorization_details must hold an entry covering a governed action (its
 * context as `readGovernedContext` read it, and the declared actions). Returns the matching
 * entry. A token without details is governed by its scope alone.
 */
export function matchDecision(governed: readonly GovernedContext[], held: readonly AuthorizationDetail[]): DetailMatch {
  if (governed.length === 0 || held.length === 0) return { applies: false };
  let reason = `the token holds no ${governed.map((g) => g.type.type).join(' or ')} entry`;
  for (const { type, asked, pointers } of governed) {
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
