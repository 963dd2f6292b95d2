import { canonicalJson } from '../audit/chain.js';
import type { RegistryDocument } from './document.js';

/** The sections of the registry document that hold entities, with the member naming each entity. */
export const registrySections = {
  tenants: 'id',
  trusted_issuers: 'issuer',
  workload_issuers: 'issuer',
  agents: 'id',
  clients: 'client_id',
  resource_servers: 'id',
  users: 'sub',
} as const satisfies Partial<Record<keyof RegistryDocument, string>>;

export type RegistrySection = keyof typeof registrySections;

/** One entity added, changed (with the names of the members that differ) or removed. */
export interface EntityChange {
  readonly section: RegistrySection;
  readonly id: string;
  readonly change: 'added' | 'changed' | 'removed';
  readonly fields: readonly string[];
}

/** The names of the top-level members whose values differ between two versions of one entity, sorted. */
export function changedFields(before: object, after: object): string[] {
  const a = before as Record<string, unknown>;
  const b = after as Record<string, unknown>;
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...names]
    .filter((name) => {
      const x = Object.hasOwn(a, name) ? a[name] : undefined;
      const y = Object.hasOwn(b, name) ? b[name] : undefined;
      return x === undefined || y === undefined ? x !== y : canonicalJson(x) !== canonicalJson(y);
    })
    .sort();
}

/** Users are named by tenant and sub; everything else by its own id, unique in the registry. */
function keyOf(section: RegistrySection, entity: Record<string, unknown>): string {
  const id = String(entity[registrySections[section]]);
  return section === 'users' ? `${String(entity.tenant)}/${id}` : id;
}

/** What turns `before` into `after`, entity by entity, in section order then id order. */
export function registryDiff(before: RegistryDocument, after: RegistryDocument): EntityChange[] {
  const changes: EntityChange[] = [];
  for (const section of Object.keys(registrySections) as RegistrySection[]) {
    const index = (doc: RegistryDocument) =>
      new Map((doc[section] as unknown as Record<string, unknown>[]).map((e) => [keyOf(section, e), e] as const));
    const old = index(before);
    const now = index(after);
    const ids = [...new Set([...old.keys(), ...now.keys()])].sort();
    for (const id of ids) {
      const a = old.get(id);
      const b = now.get(id);
      if (a === undefined) changes.push({ section, id, change: 'added', fields: [] });
      else if (b === undefined) changes.push({ section, id, change: 'removed', fields: [] });
      else {
        const fields = changedFields(a, b);
        if (fields.length > 0) changes.push({ section, id, change: 'changed', fields });
      }
    }
  }
  return changes;
}

/** One change as a line: `+ agents/x`, `- clients/y`, `~ resource_servers/z: name, scopes`. */
export function changeLine(change: EntityChange): string {
  const sign = change.change === 'added' ? '+' : change.change === 'removed' ? '-' : '~';
  return `${sign} ${change.section}/${change.id}${change.fields.length === 0 ? '' : `: ${change.fields.join(', ')}`}`;
}
