import type { ServiceContext } from '../context.js';
import { echo } from '../errors.js';
import type { RegistryDocument } from './document.js';
import type { RegistryStore } from './store.js';

/** A tenant's unused-client lifetime when it is not in the registry in force (just added): the default, 30 days. */
const defaultTtlSeconds = 30 * 86_400;

/**
 * Removes from the stored registry the dynamically registered clients (RFC 7591) left unused
 * longer than their tenant's `unused_client_ttl_seconds`, counting from their last recorded use,
 * or from their registration when never used; a suspension of one goes with it. Audited per
 * tenant (`registry.sweep`). Resolves to how many were removed.
 */
export async function sweepUnusedClients(ctx: ServiceContext, store: RegistryStore): Promise<number> {
  const lastUsed = await ctx.clientUses.lastUsed();
  const tenants = ctx.registry().tenants;
  const unused = (c: RegistryDocument['clients'][number]): boolean => {
    if (c.dynamically_registered_at === undefined) return false;
    const ttl = tenants.get(c.tenant)?.dynamicClientRegistration.unusedClientTtlSeconds ?? defaultTtlSeconds;
    const since = Math.max(Date.parse(c.dynamically_registered_at), lastUsed.get(c.client_id) ?? 0);
    return ctx.clock.now() - since > ttl * 1000;
  };
  // Most sweeps find nothing: a read then costs no edit (which compiles the whole registry).
  if (!(await store.read()).document.clients.some(unused)) return 0;
  let removed: RegistryDocument['clients'] = [];
  await store.edit('sweep', (document) => {
    removed = document.clients.filter(unused);
    if (removed.length === 0) return document;
    const gone = new Set(removed.map((c) => `${c.tenant}\u0000${c.client_id}`));
    return {
      ...document,
      clients: document.clients.filter((c) => !unused(c)),
      suspensions: document.suspensions.filter((s) => !(s.kind === 'client' && gone.has(`${s.tenant}\u0000${s.id}`))),
    };
  });
  const byTenant = new Map<string, string[]>();
  for (const client of removed) byTenant.set(client.tenant, [...(byTenant.get(client.tenant) ?? []), client.client_id]);
  for (const [tenant, ids] of byTenant) {
    const ttl = tenants.get(tenant)?.dynamicClientRegistration.unusedClientTtlSeconds ?? defaultTtlSeconds;
    await ctx.audit.append({
      tenant,
      type: 'registry.sweep',
      decision: 'applied',
      reason: `removed dynamically registered client${ids.length === 1 ? '' : 's'} unused for over ${ttl} s: ${ids.map((id) => echo(id, 128)).join(', ')}`,
    });
  }
  if (removed.length > 0) await ctx.clientUses.forget(removed.map((c) => c.client_id));
  return removed.length;
}
