import { withinDeadline } from '../../core/errors.js';
import type { GrantDetail, GrantStore, Redemption } from '../../core/grant-store.js';
import type { Sql } from './sql.js';

interface Row {
  tenant: string;
  grant: string;
  detail: string;
  expires_at: Date;
  used_at: Date | null;
  revoked_at?: Date | null;
}

/** Redeems in one statement: the row is marked used only if it was unused, so a race has one winner. */
function redemption(fresh: Row | undefined, existing: Row | undefined, now: number): Redemption {
  if (fresh !== undefined) {
    if (new Date(fresh.expires_at).getTime() <= now) return { status: 'expired' };
    return { status: 'ok', tenant: fresh.tenant, grantId: fresh.grant, detail: JSON.parse(fresh.detail) as GrantDetail, expiresAt: new Date(fresh.expires_at) };
  }
  if (existing === undefined) return { status: 'unknown' };
  return { status: 'reused', tenant: existing.tenant, grantId: existing.grant };
}

/** The grant store over SQL; any failure or slowness is StorageUnavailableError (503). */
export function createGrantStore(sql: Sql, now: () => number, deadlineMs = 3000): GrantStore {
  const guarded = <T>(work: Promise<T>): Promise<T> => withinDeadline(work, deadlineMs);
  return {
    async saveCode(hash, tenant, grantId, detail, expiresAt) {
      await guarded(sql`INSERT INTO authorization_codes (code_hash, tenant, grant_id, detail, expires_at) VALUES (${hash}, ${tenant}, ${grantId}, ${JSON.stringify(detail)}, ${expiresAt})`);
    },
    async redeemCode(hash) {
      const [fresh] = await guarded(sql<Row>`UPDATE authorization_codes SET used_at = now() WHERE code_hash = ${hash} AND used_at IS NULL RETURNING tenant, grant_id AS grant, detail, expires_at, used_at`);
      const [existing] = fresh === undefined ? await guarded(sql<Row>`SELECT tenant, grant_id AS grant, detail, expires_at, used_at FROM authorization_codes WHERE code_hash = ${hash}`) : [];
      return redemption(fresh, existing, now());
    },
    async saveRefresh(hash, tenant, family, detail, expiresAt) {
      await guarded(sql`INSERT INTO refresh_tokens (token_hash, tenant, family, detail, expires_at) VALUES (${hash}, ${tenant}, ${family}, ${JSON.stringify(detail)}, ${expiresAt})`);
    },
    async redeemRefresh(hash) {
      const [fresh] = await guarded(sql<Row>`UPDATE refresh_tokens SET used_at = now() WHERE token_hash = ${hash} AND used_at IS NULL AND revoked_at IS NULL RETURNING tenant, family AS grant, detail, expires_at, used_at`);
      const [existing] = fresh === undefined ? await guarded(sql<Row>`SELECT tenant, family AS grant, detail, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = ${hash}`) : [];
      return redemption(fresh, existing, now());
    },
    async revokeFamily(tenant, family) {
      await guarded(sql`UPDATE refresh_tokens SET revoked_at = now() WHERE tenant = ${tenant} AND family = ${family} AND revoked_at IS NULL`);
    },
  };
}
