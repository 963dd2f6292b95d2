import type { GrantStore, Redemption } from '../../../src/core/ports.js';
import { key, type MemoryState, type StoredSecret } from './state.js';

/**
 * The GrantStore port in memory, as the SQL one behaves: a code or refresh token is marked used
 * by the one redemption that finds it unused and its grant unrevoked (expired or not: an expired
 * one presented again is a replay); a used one presented again is a replay, revoked grant or not.
 */
export function memoryGrantStore(state: MemoryState, now: () => number): GrantStore {
  const revoked = (secret: StoredSecret): boolean =>
    state.grants.get(key(secret.tenant, secret.grantId))?.revoked === true;
  const redeem = (secret: StoredSecret | undefined): Redemption => {
    if (secret === undefined) return { status: 'unknown' };
    if (secret.used) return { status: 'reused', tenant: secret.tenant, grantId: secret.grantId };
    if (revoked(secret)) return { status: 'revoked', tenant: secret.tenant, grantId: secret.grantId };
    secret.used = true;
    if (secret.expiresAt.getTime() <= now()) return { status: 'expired' };
    return {
      status: 'ok',
      tenant: secret.tenant,
      grantId: secret.grantId,
      detail: secret.detail,
      expiresAt: secret.expiresAt,
    };
  };
  /** Inserts under a primary key, as a table does: a second row with the same key is an error. */
  const insert = <T>(table: Map<string, T>, id: string, row: T): void => {
    if (table.has(id)) throw new Error(`duplicate key ${JSON.stringify(id)}`);
    table.set(id, row);
  };
  return {
    async saveCode(hash, tenant, grantId, detail, expiresAt) {
      if (state.codes.has(hash)) throw new Error(`duplicate key ${JSON.stringify(hash)}`);
      insert(state.grants, key(tenant, grantId), {
        tenant,
        grantId,
        clientId: detail.clientId,
        subject: detail.user,
        agent: detail.agent,
        revoked: false,
      });
      state.codes.set(hash, { tenant, grantId, detail, expiresAt, used: false });
    },
    async redeemCode(hash) {
      return redeem(state.codes.get(hash));
    },
    async saveRefresh(hash, tenant, family, detail, expiresAt) {
      insert(state.refreshTokens, hash, { tenant, grantId: family, detail, expiresAt, used: false });
    },
    async redeemRefresh(hash) {
      return redeem(state.refreshTokens.get(hash));
    },
    async findRefresh(hash) {
      const secret = state.refreshTokens.get(hash);
      return secret === undefined
        ? undefined
        : { tenant: secret.tenant, grantId: secret.grantId, clientId: secret.detail.clientId };
    },
  };
}
