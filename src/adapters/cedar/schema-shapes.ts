import type { PolicyReads } from './attributes-read.js';

/** A resolved Cedar schema type, as `schemaToJsonWithResolvedTypes` reports it. */
export interface SchemaType {
  readonly type: string;
  readonly name?: string;
  readonly element?: SchemaType;
  readonly attributes?: Readonly<Record<string, SchemaType & { readonly required?: boolean }>>;
}

type Attributes = Readonly<Record<string, SchemaType>>;

interface Uid {
  readonly type: string;
  readonly id: string;
}

/** An action entity with the action groups it is a member of (Cedar JSON entity form). */
export interface ActionEntity {
  readonly uid: Uid;
  readonly attrs: Record<string, never>;
  readonly parents: readonly Uid[];
}

/**
 * Declared attribute types per entity type, and per action its uid, its context shape, the
 * attributes of each entity type its requests carry, and the action entities (the action and its
 * groups, transitively) a request must carry for `action in <group>` to hold (empty for an
 * action in no group).
 */
export interface SchemaShapes {
  readonly entities: ReadonlyMap<string, Attributes>;
  readonly actions: ReadonlyMap<string, ActionShape>;
}

export interface ActionShape {
  readonly uid: Uid;
  readonly context: Attributes;
  readonly entities: ReadonlyMap<string, Attributes>;
  readonly hierarchy: readonly ActionEntity[];
}

interface NamespaceJson {
  commonTypes?: Record<string, SchemaType>;
  entityTypes?: Record<string, { shape?: SchemaType }>;
  actions?: Record<string, { appliesTo?: { context?: SchemaType }; memberOf?: { id: string; type?: string }[] }>;
}

const builtIn = new Set([
  'String',
  'Long',
  'Boolean',
  'Set',
  'Record',
  'Entity',
  'Extension',
  'decimal',
  'ipaddr',
  'datetime',
  'duration',
]);

/** One spelling per type: `__cedar::Long` is `Long`, `Bool` is `Boolean`; an unresolved `EntityOrCommon` becomes what its name denotes. */
function normalise(type: SchemaType, common: Readonly<Record<string, SchemaType>>): SchemaType {
  if (type.type.startsWith('__cedar::'))
    return normalise({ ...type, type: type.type.slice('__cedar::'.length) }, common);
  if (type.type === 'Bool') return { ...type, type: 'Boolean' };
  if (type.type === 'EntityOrCommon' && type.name !== undefined) {
    const name = type.name === 'Bool' ? 'Boolean' : type.name;
    return builtIn.has(name) || common[name] !== undefined ? { type: name } : { type: 'Entity', name };
  }
  return type;
}

/** Replaces references to common types by their definitions, all the way down. */
function resolveCommon(raw: SchemaType, common: Readonly<Record<string, SchemaType>>, depth = 0): SchemaType {
  const type = normalise(raw, common);
  if (depth > 32) return type;
  const named = builtIn.has(type.type)
    ? type
    : normalise(common[type.type] ?? common[type.type.split('::').at(-1) ?? ''] ?? type, common);
  return {
    ...named,
    ...(named.element === undefined ? {} : { element: resolveCommon(named.element, common, depth + 1) }),
    ...(named.attributes === undefined
      ? {}
      : {
          attributes: Object.fromEntries(
            Object.entries(named.attributes).map(([k, v]) => [k, resolveCommon(v, common, depth + 1)]),
          ),
        }),
  };
}

/** Indexes a schema (JSON form, types resolved) by fully qualified entity type and action id. */
export function schemaShapes(json: Readonly<Record<string, NamespaceJson>>): SchemaShapes {
  const entities = new Map<string, Attributes>();
  const actions = new Map<
    string,
    { uid: Uid; context: Attributes; entities: ReadonlyMap<string, Attributes>; hierarchy: ActionEntity[] }
  >();
  const groupsOf = new Map<string, Uid[]>();
  const uidKey = (uid: Uid): string => `${uid.type}::${JSON.stringify(uid.id)}`;
  for (const [ns, def] of Object.entries(json)) {
    const prefix = ns === '' ? '' : `${ns}::`;
    const common = def.commonTypes ?? {};
    const attributesOf = (type: SchemaType | undefined) =>
      type === undefined ? {} : (resolveCommon(type, common).attributes ?? {});
    for (const [name, entity] of Object.entries(def.entityTypes ?? {}))
      entities.set(`${prefix}${name}`, attributesOf(entity.shape));
    for (const [id, action] of Object.entries(def.actions ?? {})) {
      const uid = { type: `${prefix}Action`, id };
      const groups = (action.memberOf ?? []).map((g) => ({
        type: g.type === undefined ? `${prefix}Action` : g.type.includes('::') ? g.type : `${prefix}${g.type}`,
        id: g.id,
      }));
      groupsOf.set(uidKey(uid), groups);
      if (!actions.has(id))
        actions.set(id, { uid, context: attributesOf(action.appliesTo?.context), entities, hierarchy: [] });
    }
  }
  for (const action of actions.values()) {
    if ((groupsOf.get(uidKey(action.uid)) ?? []).length === 0) continue;
    const seen = new Set<string>();
    const pending: Uid[] = [action.uid];
    for (let uid = pending.pop(); uid !== undefined; uid = pending.pop()) {
      if (seen.has(uidKey(uid))) continue;
      seen.add(uidKey(uid));
      const parents = groupsOf.get(uidKey(uid)) ?? [];
      action.hierarchy.push({ uid, attrs: {}, parents });
      pending.push(...parents);
    }
  }
  return { entities, actions };
}

/** Each action's shapes cut to what the policies that may apply to it read (context whole if one reads it whole). */
export function narrowShapes(shapes: SchemaShapes, reads: PolicyReads): SchemaShapes {
  const cut = (attributes: Attributes, names: ReadonlySet<string>): Attributes =>
    Object.fromEntries(Object.entries(attributes).filter(([name]) => names.has(name)));
  const narrowed = (id: string, action: ActionShape): ActionShape => {
    const read = reads.byAction.get(id) ?? reads.all;
    return {
      ...action,
      context: read.wholeContext ? action.context : cut(action.context, read.contextNames),
      entities: new Map([...action.entities].map(([type, attributes]) => [type, cut(attributes, read.entityNames)])),
    };
  };
  return {
    entities: shapes.entities,
    actions: new Map([...shapes.actions].map(([id, action]) => [id, narrowed(id, action)])),
  };
}

const drop = Symbol('drop');
/**
 * The constructor of each extension type. Values are sent in Cedar's explicit `__extn` form, so a
 * request needs no schema to be read as declared (evaluating without one is markedly cheaper).
 */
const extensionConstructors: Readonly<Record<string, string>> = {
  ipaddr: 'ip',
  datetime: 'datetime',
  duration: 'duration',
};
const decimalText = /^-?\d+(\.\d{1,4})?$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Turns a JSON value into the Cedar JSON value of a declared type, or `drop` when it cannot be one. */
function coerce(value: unknown, type: SchemaType): unknown {
  switch (type.type) {
    case 'String':
      return typeof value === 'string' ? value : drop;
    case 'Long':
      return typeof value === 'number' && Number.isSafeInteger(value) ? value : drop;
    case 'Boolean':
      return typeof value === 'boolean' ? value : drop;
    case 'decimal': {
      // Cedar decimals need a point and at most four fractional digits.
      const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
      if (typeof text !== 'string' || !decimalText.test(text)) return drop;
      return { __extn: { fn: 'decimal', arg: text.includes('.') ? text : `${text}.0` } };
    }
    case 'Set': {
      if (!Array.isArray(value) || type.element === undefined) return drop;
      const items = value.map((v) => coerce(v, type.element as SchemaType));
      return items.includes(drop) ? drop : items;
    }
    case 'Record':
      return isRecord(value) ? coerceAttributes(value, type.attributes ?? {}) : drop;
    case 'Entity': {
      if (isRecord(value) && isRecord(value.__entity)) return value;
      if (typeof value === 'string') return { __entity: { type: type.name, id: value } };
      if (isRecord(value) && typeof value.id === 'string')
        return { __entity: { type: typeof value.type === 'string' ? value.type : type.name, id: value.id } };
      return drop;
    }
    default: {
      // Other extension types (ipaddr, datetime, duration) take their string form.
      const fn = extensionConstructors[type.type];
      return typeof value === 'string' && fn !== undefined ? { __extn: { fn, arg: value } } : drop;
    }
  }
}

/**
 * Keeps only the attributes a shape declares, each coerced to its declared type; anything
 * undeclared or of the wrong type is left out, so a policy that needs it denies.
 */
export function coerceAttributes(
  values: Readonly<Record<string, unknown>>,
  shape: Attributes,
): Record<string, unknown> {
  // No prototype: a schema may declare an attribute "__proto__", which a plain object would swallow.
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [name, type] of Object.entries(shape)) {
    if (!Object.hasOwn(values, name)) continue;
    const value = coerce(values[name], type);
    if (value !== drop) out[name] = value;
  }
  return out;
}
