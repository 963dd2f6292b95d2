/** What the policies that may apply to an action can observe of its requests. */
export interface AttributesRead {
  /** Attribute names read on entities (and on records inside values). */
  readonly entityNames: ReadonlySet<string>;
  /** Keys read directly on `context`. */
  readonly contextNames: ReadonlySet<string>;
  /** Whether `context` is used other than through `.` or `has` (compared as a record, say). */
  readonly wholeContext: boolean;
}

/** Per action id, what its policies read; `all` covers actions no policy names. */
export interface PolicyReads {
  readonly byAction: ReadonlyMap<string, AttributesRead>;
  readonly all: AttributesRead;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

interface Read {
  entityNames: Set<string>;
  contextNames: Set<string>;
  wholeContext: boolean;
}

/** What one policy's conditions read. */
function readsOf(conditions: unknown): Read {
  const read: Read = { entityNames: new Set(), contextNames: new Set(), wholeContext: false };
  const visit = (node: unknown, accessed: boolean): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item, false);
      return;
    }
    if (!isObject(node)) return;
    if (node.Var === 'context' && !accessed) read.wholeContext = true;
    for (const [key, value] of Object.entries(node)) {
      if ((key === '.' || key === 'has') && isObject(value)) {
        const onContext = isObject(value.left) && value.left.Var === 'context';
        const names = onContext ? read.contextNames : read.entityNames;
        // `has a.b.c` reads a on the left and b, c on the records below it.
        const path =
          typeof value.attr === 'string'
            ? [value.attr]
            : Array.isArray(value.attr)
              ? value.attr.filter((a): a is string => typeof a === 'string')
              : [];
        path.forEach((name, i) => (i === 0 ? names : read.entityNames).add(name));
        visit(value.left, true);
      } else visit(value, false);
    }
  };
  visit(conditions, false);
  return read;
}

/** The action a policy is limited to by `action == Action::"id"`, or undefined when it may apply to several. */
function onlyAction(policy: Record<string, unknown>): string | undefined {
  const scope = policy.action;
  if (!isObject(scope) || scope.op !== '==' || !isObject(scope.entity)) return undefined;
  return typeof scope.entity.id === 'string' ? scope.entity.id : undefined;
}

const merge = (into: Read, from: Read): void => {
  for (const n of from.entityNames) into.entityNames.add(n);
  for (const n of from.contextNames) into.contextNames.add(n);
  into.wholeContext ||= from.wholeContext;
};

/**
 * Walks policies in Cedar's JSON form (EST) for what each action's requests can show them: the
 * attribute names read with `.` or `has` on entities, the keys read on `context`, and whether
 * `context` is used whole. A policy limited to one action by `action ==` counts for that action
 * only; any other counts for all. What no applicable policy reads cannot change a decision
 * (entities compare by uid, never by their attributes), so it need not be sent.
 */
export function policyReads(policies: readonly Record<string, unknown>[]): PolicyReads {
  const all: Read = { entityNames: new Set(), contextNames: new Set(), wholeContext: false };
  const byAction = new Map<string, Read>();
  for (const policy of policies) {
    const read = readsOf(policy.conditions);
    const action = onlyAction(policy);
    if (action === undefined) merge(all, read);
    else {
      const own = byAction.get(action) ?? { entityNames: new Set(), contextNames: new Set(), wholeContext: false };
      merge(own, read);
      byAction.set(action, own);
    }
  }
  // Policies open to every action apply to those named by others too.
  for (const own of byAction.values()) merge(own, all);
  return { byAction, all };
}
