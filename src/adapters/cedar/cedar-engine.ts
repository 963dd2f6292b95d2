import type * as CedarWasm from '@cedar-policy/cedar-wasm/nodejs';
import type { PolicyDecision, PolicyEngine, PolicyEntity, PolicyRequest } from '../../core/ports.js';
import { policyReads } from './attributes-read.js';
import { coerceAttributes, narrowShapes, schemaShapes, type ActionShape, type SchemaShapes } from './schema-shapes.js';

/** The functions Baton uses from cedar-wasm; the Node and web builds both provide them. */
export type Cedar = Pick<
  typeof CedarWasm,
  | 'policySetTextToParts'
  | 'policyToJson'
  | 'validate'
  | 'checkParseEntities'
  | 'schemaToJsonWithResolvedTypes'
  | 'preparsePolicySet'
  | 'statefulIsAuthorized'
>;

export interface SourceFile<T = string> {
  readonly file: string;
  readonly content: T;
}

/** A policy folder's contents: `.cedar` files, one schema, and optional entity data. */
export interface PolicySource {
  readonly policies: readonly SourceFile[];
  readonly schema: SourceFile;
  readonly entities?: SourceFile<unknown>;
}

export interface PolicyProblem {
  readonly file: string;
  readonly line?: number;
  readonly message: string;
}

/** A policy set that cannot be used, with every problem as file:line: message. */
export class PolicySetError extends Error {
  constructor(readonly problems: readonly PolicyProblem[]) {
    super(
      `invalid policy set:\n${problems.map((p) => `  ${p.file}${p.line === undefined ? '' : `:${p.line}`}: ${p.message}`).join('\n')}`,
    );
    this.name = 'PolicySetError';
  }
}

interface CedarEntity {
  uid: { type: string; id: string };
  attrs: Record<string, unknown>;
  parents: { type: string; id: string }[];
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

interface DetailedError {
  message: string;
  help: string | null;
  sourceLocations?: { start: number; label?: string | null }[];
}

function describe(error: DetailedError): string {
  const hint = error.help ?? error.sourceLocations?.[0]?.label ?? null;
  return hint === null ? error.message : `${error.message} (${hint})`;
}

const key = (type: string, id: string): string => `${type}::${JSON.stringify(id)}`;

/** The entities a Cedar JSON value refers to (`{"__entity": {type, id}}`), anywhere inside it. */
function entityRefs(value: unknown, found: { type: string; id: string }[] = []): { type: string; id: string }[] {
  if (Array.isArray(value)) for (const item of value) entityRefs(item, found);
  else if (typeof value === 'object' && value !== null) {
    const ref = (value as { __entity?: unknown }).__entity;
    if (
      typeof ref === 'object' &&
      ref !== null &&
      typeof (ref as { type?: unknown }).type === 'string' &&
      typeof (ref as { id?: unknown }).id === 'string'
    ) {
      found.push({ type: (ref as { type: string }).type, id: (ref as { id: string }).id });
    } else for (const item of Object.values(value)) entityRefs(item, found);
  }
  return found;
}
/**
 * A policy set's files (name to text, as stored) as a source: every `.cedar` file, exactly one
 * `.cedarschema`, and `entities.json` if present (parsed here); other names are refused, so that
 * what is stored and hashed is exactly what is evaluated. `where` prefixes the names in errors.
 */
export function policySourceOf(files: Readonly<Record<string, string>>, where = ''): PolicySource {
  const names = Object.keys(files).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const at = (name: string) => (where === '' ? name : `${where}/${name}`);
  const read = (name: string) => ({ file: at(name), content: files[name] as string });
  const problems: PolicyProblem[] = [];
  for (const name of names)
    if (!(name.endsWith('.cedar') || name.endsWith('.cedarschema') || name === 'entities.json') || name.includes('/'))
      problems.push({
        file: at(name),
        message: 'is not a policy set file (*.cedar, one *.cedarschema, entities.json)',
      });
  const schemas = names.filter((n) => n.endsWith('.cedarschema'));
  const [schema] = schemas;
  if (schema === undefined || schemas.length > 1)
    problems.push({ file: where || '.', message: `must hold exactly one .cedarschema file (found ${schemas.length})` });
  const policies = names.filter((n) => n.endsWith('.cedar')).map(read);
  if (policies.length === 0) problems.push({ file: where || '.', message: 'holds no .cedar policy file' });
  let entities: SourceFile<unknown> | undefined;
  const entityText = files['entities.json'];
  if (Object.hasOwn(files, 'entities.json') && entityText !== undefined) {
    try {
      entities = { file: at('entities.json'), content: JSON.parse(entityText) as unknown };
    } catch (error) {
      problems.push({
        file: at('entities.json'),
        message: `is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
  }
  if (problems.length > 0 || schema === undefined) throw new PolicySetError(problems);
  return { policies, schema: read(schema), ...(entities === undefined ? {} : { entities }) };
}

let generation = 0;
/** How many decisions a policy set remembers, and the longest input (JSON characters) it keeps. */
const rememberedDecisions = 4096;
const maxRememberedInput = 4096;

/**
 * Parses, validates (strict mode) and preparses a policy set once; the returned engine answers
 * each request with the preparsed set and only the entities the request refers to.
 */
export function loadCedarPolicySet(
  cedar: Cedar,
  source: PolicySource,
  digest = 'unversioned',
): PolicyEngine & { readonly policyIds: readonly string[] } {
  const problems: PolicyProblem[] = [];
  // No prototype: a policy may be called @id("constructor") or @id("__proto__").
  const staticPolicies: Record<string, string> = Object.create(null) as Record<string, string>;
  const located = new Map<string, { file: string; text: string; offset: number }>();
  /** Each policy in Cedar's JSON form; undefined where it could not be converted. */
  const policyJson: (Record<string, unknown> | undefined)[] = [];

  for (const { file, content } of source.policies) {
    const parts = cedar.policySetTextToParts(content);
    if (parts.type === 'failure') {
      for (const e of parts.errors)
        problems.push({
          file,
          ...(e.sourceLocations?.[0] ? { line: lineOf(content, e.sourceLocations[0].start) } : {}),
          message: describe(e),
        });
      continue;
    }
    if (parts.policy_templates.length > 0) problems.push({ file, message: 'policy templates are not supported' });
    let from = 0;
    parts.policies.forEach((text, index) => {
      const offset = Math.max(0, content.indexOf(text, from));
      from = offset + text.length;
      const json = cedar.policyToJson(text);
      policyJson.push(json.type === 'success' ? (json.json as unknown as Record<string, unknown>) : undefined);
      const id =
        (json.type === 'success' ? json.json.annotations?.id : undefined) ?? `${file.split('/').at(-1)}#${index + 1}`;
      if (Object.hasOwn(staticPolicies, id))
        problems.push({ file, line: lineOf(content, offset), message: `duplicate policy id "${id}"` });
      staticPolicies[id] = text;
      located.set(id, { file, text: content, offset });
    });
  }

  const schemaJson = cedar.schemaToJsonWithResolvedTypes(source.schema.content);
  if (schemaJson.type === 'failure') {
    for (const e of schemaJson.errors)
      problems.push({
        file: source.schema.file,
        ...(e.sourceLocations?.[0] ? { line: lineOf(source.schema.content, e.sourceLocations[0].start) } : {}),
        message: describe(e),
      });
    throw new PolicySetError(problems);
  }
  if (problems.length > 0) throw new PolicySetError(problems);

  const validation = cedar.validate({
    schema: source.schema.content,
    policies: { staticPolicies },
    validationSettings: { mode: 'strict' },
  });
  if (validation.type === 'failure') {
    throw new PolicySetError(validation.errors.map((e) => ({ file: source.schema.file, message: describe(e) })));
  }
  for (const { policyId, error } of validation.validationErrors) {
    const where = located.get(policyId);
    const start = error.sourceLocations?.[0]?.start;
    problems.push({
      file: where?.file ?? policyId,
      ...(where === undefined ? {} : { line: lineOf(where.text, where.offset + (start ?? 0)) }),
      message: describe(error),
    });
  }

  const entityData = new Map<string, CedarEntity>();
  if (source.entities !== undefined) {
    const { file, content } = source.entities;
    if (!Array.isArray(content)) problems.push({ file, message: 'must be a JSON array of Cedar entities' });
    else {
      const parsed = cedar.checkParseEntities({ entities: content as never, schema: source.schema.content });
      if (parsed.type === 'failure') parsed.errors.forEach((e) => problems.push({ file, message: describe(e) }));
      else
        for (const e of content as CedarEntity[])
          entityData.set(key(e.uid.type, e.uid.id), { uid: e.uid, attrs: e.attrs ?? {}, parents: e.parents ?? [] });
    }
  }
  if (problems.length > 0) throw new PolicySetError(problems);

  generation += 1;
  const policySetId = `baton-policies-${generation}`;
  const preparedPolicies = cedar.preparsePolicySet(policySetId, { staticPolicies });
  if (preparedPolicies.type === 'failure') {
    throw new PolicySetError([{ file: source.schema.file, message: 'the policy set could not be prepared' }]);
  }
  // Only what the policies that may apply read is sent (see policyReads); a policy that cannot
  // be read that way keeps everything.
  const declared = schemaShapes(schemaJson.json as never);
  const readable = policyJson.filter((p): p is Record<string, unknown> => p !== undefined);
  const shapes: SchemaShapes =
    readable.length < policyJson.length ? declared : narrowShapes(declared, policyReads(readable));

  /**
   * Adds an entity (merged with its entity data), its ancestors, and the entities its attributes
   * (as sent) refer to; `given` holds the request's own entities by key.
   */
  function collect(
    entity: PolicyEntity,
    action: ActionShape,
    given: ReadonlyMap<string, PolicyEntity>,
    into: Map<string, CedarEntity>,
  ): void {
    const k = key(entity.type, entity.id);
    if (into.has(k)) return;
    const data = entityData.get(k);
    const shape = action.entities.get(entity.type) ?? {};
    const parents = [...(data?.parents ?? []), ...(entity.parents ?? [])].filter((p) => shapes.entities.has(p.type));
    const attrs = coerceAttributes({ ...data?.attrs, ...entity.attributes }, shape);
    into.set(k, {
      uid: { type: entity.type, id: entity.id },
      attrs,
      parents: [...new Map(parents.map((p) => [key(p.type, p.id), { type: p.type, id: p.id }])).values()],
    });
    for (const ref of [...parents, ...entityRefs(attrs)])
      collect(given.get(key(ref.type, ref.id)) ?? ref, action, given, into);
  }

  /**
   * Decisions already made by this policy set, by their exact input. Cedar is a pure function
   * of the policies and the call (no clock, no I/O), and a reload builds a new engine, so an
   * answer from here is the one Cedar would give again; resource servers ask the same question
   * often. Bounded in entries and in input size; the oldest goes first.
   */
  const decided = new Map<string, PolicyDecision>();

  return {
    digest,
    policyIds: Object.keys(staticPolicies),
    declares: (action) => shapes.actions.has(action),
    catalog: {
      entityTypes: [...declared.entities.keys()],
      actions: [...declared.actions.keys()],
      entities: [...entityData.values()].map((e) => ({
        type: e.uid.type,
        id: e.uid.id,
        attributes: e.attrs,
        parents: e.parents,
      })),
    },
    evaluate(request: PolicyRequest): PolicyDecision {
      const action = shapes.actions.get(request.action);
      if (action === undefined)
        return { allowed: false, reasons: [], errors: [`action "${request.action}" is not in the schema`] };
      // Only entities a policy can reach are sent: principal, resource, those the context (as
      // sent) and their attributes refer to, and their ancestors. An entity with no attributes and
      // no parents tells Cedar nothing either. Values are typed by the schema here (schema-shapes),
      // so Cedar evaluates without reading the schema again, which costs about a third of an
      // evaluation; the action's groups come along.
      const given = new Map((request.entities ?? []).map((e) => [key(e.type, e.id), e]));
      const context = coerceAttributes(request.context, action.context);
      const entities = new Map<string, CedarEntity>();
      for (const e of [request.principal, request.resource, ...entityRefs(context)])
        collect(given.get(key(e.type, e.id)) ?? e, action, given, entities);
      const sent: unknown[] = [...action.hierarchy];
      for (const e of entities.values()) if (e.parents.length > 0 || Object.keys(e.attrs).length > 0) sent.push(e);
      const call = {
        principal: { type: request.principal.type, id: request.principal.id },
        action: action.uid,
        resource: { type: request.resource.type, id: request.resource.id },
        context: context as never,
        entities: sent as never,
        preparsedPolicySetId: policySetId,
        validateRequest: false,
      };
      // cedar-wasm takes the call as JSON text, so that text is all a decision depends on.
      const input = JSON.stringify(call);
      const known = decided.get(input);
      if (known !== undefined) return known;
      let answer: ReturnType<Cedar['statefulIsAuthorized']>;
      try {
        answer = cedar.statefulIsAuthorized(call);
      } catch (error) {
        // cedar-wasm throws, rather than answering a failure, on input its JSON reader refuses
        // (an unpaired UTF-16 surrogate); Baton refuses such text before asking, and a request
        // that still carries some is denied, never an error for the caller.
        return {
          allowed: false,
          reasons: [],
          errors: [`the request could not be read: ${error instanceof Error ? error.message : String(error)}`],
        };
      }
      let result: PolicyDecision;
      if (answer.type === 'failure')
        result = { allowed: false, reasons: [], errors: answer.errors.map((e) => e.message) };
      else {
        const { decision, diagnostics } = answer.response;
        const errors = diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`);
        // Fail closed: a policy that errors (a missing attribute, say) never lets a request through.
        result = { allowed: decision === 'allow' && errors.length === 0, reasons: diagnostics.reason, errors };
      }
      const frozen = Object.freeze({
        ...result,
        reasons: Object.freeze([...result.reasons]),
        errors: Object.freeze([...result.errors]),
      });
      if (input.length <= maxRememberedInput) {
        if (decided.size >= rememberedDecisions) decided.delete(decided.keys().next().value as string);
        decided.set(input, frozen);
      }
      return frozen;
    },
  };
}
