import type { Revocations, RevocationTarget, TokenLineage } from '../../../src/core/ports.js';
import { key, type MemoryState } from './state.js';

/** Whether a token is one the target names itself (before what derives from it). */
function reaches(target: RevocationTarget, token: TokenLineage): boolean {
  switch (target.kind) {
    case 'token':
      return token.jti === target.jti;
    case 'agent':
      return token.actor === target.agent || token.subject === target.agent;
    case 'user':
      return token.subject === target.user;
    case 'client':
      return token.clientId === target.client;
    case 'grant':
      return token.rootGrant === target.grant;
  }
}

/**
 * Writes a token's lineage, as the audit log does with its entry. A token of a revoked grant is
 * revoked as it is written (migration 9's trigger), and so is a token derived from a revoked one:
 * the PostgreSQL adapter's follow-up passes catch those, issued while a cascade ran, a moment later.
 */
export function writeLineage(state: MemoryState, lineage: TokenLineage): void {
  const id = key(lineage.tenant, lineage.jti);
  if (state.tokens.has(id)) throw new Error(`duplicate key ${JSON.stringify(id)}`);
  state.tokens.set(id, lineage);
  const parentRevoked = lineage.parentJti !== null && state.revoked.has(key(lineage.tenant, lineage.parentJti));
  if (parentRevoked || state.grants.get(key(lineage.tenant, lineage.rootGrant))?.revoked === true)
    state.revoked.add(id);
}

/**
 * The Revocations port in memory, as the SQL one behaves: the code-flow grants the target names
 * are marked revoked, then every live token it reaches and every live token derived from those,
 * transitively, is revoked; the jtis newly revoked are returned.
 */
export function memoryRevocations(state: MemoryState, now: () => number): Revocations {
  return {
    isRevoked: (tenant, jti) => state.revoked.has(key(tenant, jti)),
    async revoke(tenant, target) {
      if (target.kind !== 'token') {
        for (const grant of state.grants.values()) {
          if (grant.tenant !== tenant) continue;
          if (
            target.kind === 'grant'
              ? grant.grantId === target.grant
              : target.kind === 'user'
                ? grant.subject === target.user
                : target.kind === 'client'
                  ? grant.clientId === target.client
                  : grant.agent === target.agent
          )
            grant.revoked = true;
        }
      }
      const live = (token: TokenLineage) => token.expiresAt.getTime() > now();
      const ofTenant = [...state.tokens.values()].filter((t) => t.tenant === tenant);
      const tree = new Set(ofTenant.filter((t) => live(t) && reaches(target, t)).map((t) => t.jti));
      for (let grown = true; grown;) {
        grown = false;
        for (const t of ofTenant) {
          if (t.parentJti === null || tree.has(t.jti) || !tree.has(t.parentJti)) continue;
          tree.add(t.jti);
          grown = true;
        }
      }
      const newly: string[] = [];
      for (const t of ofTenant) {
        const id = key(tenant, t.jti);
        if (!tree.has(t.jti) || !live(t) || state.revoked.has(id)) continue;
        state.revoked.add(id);
        newly.push(t.jti);
      }
      return newly;
    },
  };
}
