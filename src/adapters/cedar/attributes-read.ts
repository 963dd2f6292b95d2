/** What a policy set can observe of a request: attribute names, and whether it reads `context` whole. */
export interface AttributesRead {
  readonly names: ReadonlySet<string>;
  readonly wholeContext: boolean;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/**
 * Walks policies in Cedar's JSON form (EST) for every attribute name read with `.` or `has`
 * (on any entity or record), and for `context` used other than through one of those. An
 * attribute no policy names cannot change a decision (entities compare by uid, never by their
 * attributes), so it need not be sent; `context` compared as a whole record keeps all of it.
 */
export function attributesRead(policies: readonly unknown[]): AttributesRead {
  const names = new Set<string>();
  let wholeContext = false;
  const visit = (node: unknown, accessed: boolean): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item, false);
      return;
    }
    if (!isObject(node)) return;
    if (node.Var === 'context' && !accessed) wholeContext = true;
    for (const [key, value] of Object.entries(node)) {
      if ((key === '.' || key === 'has') && isObject(value)) {
        if (typeof value.attr === 'string') names.add(value.attr);
        if (Array.isArray(value.attr)) for (const a of value.attr) if (typeof a === 'string') names.add(a);
        visit(value.left, true);
      } else visit(value, false);
    }
  };
  for (const policy of policies) visit(isObject(policy) ? policy.conditions : undefined, false);
  return { names, wholeContext };
}
