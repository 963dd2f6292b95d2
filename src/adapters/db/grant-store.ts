import { withinDeadline } from './deadline.js';
import type { GrantDetail, GrantStore, Redemption } from '../../core/ports.js';
import type { Sql } from './sql.js';

interface Row {
  tenant: string;
  grant: string;
  detail: string;
  expires_at: Date;
  used_at: Date | null;
}

interface ExistingRow {
  tenant: string;
  grant: string;
  used_at: Date | null;
  revoked: boolean;
}

/** Redeems in one statement: the row is marked used only if it was unused and its grant unrevoked, so a race has one winner. */
function redemption(fresh: Row | undefined, existing: ExistingRow | undefined, now: number): Redemption {
  if (fresh !== undefined) {
    if (new Date(fresh.expires_at).getTime() <= now) return { status: 'expired' };
    return {
      status: 'ok',
      tenant: fresh.tenant,
      grantId: fresh.grant,
      detail: JSON.parse(fresh.detail) as GrantDetail,
      expiresAt: new Date(fresh.expires_at),
    };
  }
  if (existing === undefined) return { status: 'unknown' };
  // A used one presented again is a replay, whether or not its grant is already revoked.
  if (existing.used_at === null && existing.revoked)
    return { status: 'revoked', tenant: existing.tenant, grantId: existing.grant };
  return { status: 'reused', tenant: existing.tenant, grantId: existing.grant };
}

/** The grant store over SQL; any failure or slowness is StorageUnavailableError (503). */
export function createGrantStore(sql: Sql, now: () => number, deadlineMs = 3000): GrantStore {
  const guarded = <T>(work: Promise<T>): Promise<T> => withinDeadline(work, deadlineMs);
  return {
    async saveCode(hash, tenant, grantId, detail, expiresAt) {
      await guarded(sql`
        WITH made AS (
          INSERT INTO grants (tenant, grant_id, client_id, subject, agent) VALUES (${tenant}, ${grantId}, ${detail.clientId}, ${detail.user}, ${detail.agent})
        )
        INSERT INTO authorization_codes (code_hash, tenant, grant_id, detail, expires_at) VALUES (${hash}, ${tenant}, ${grantId}, ${JSON.stringify(detail)}, ${expiresAt})`);
    },
    async redeemCode(hash) {
      const [fresh] = await guarded(sql<Row>`
        UPDATE authorization_codes c SET used_at = now()
        WHERE code_hash = ${hash} AND used_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.tenant = c.tenant AND g.grant_id = c.grant_id AND g.revoked_at IS NOT NULL)
        RETURNING tenant, grant_id AS grant, detail, expires_at, used_at`);
      const [existing] =
        fresh === undefined
          ? await guarded(sql<ExistingRow>`
        SELECT c.tenant, c.grant_id AS grant, c.used_at,
          EXISTS (SELECT 1 FROM grants g WHERE g.tenant = c.tenant AND g.grant_id = c.grant_id AND g.revoked_at IS NOT NULL) AS revoked
        FROM authorization_codes c WHERE code_hash = ${hash}`)
          : [];
      return redemption(fresh, existing, now());
    },
    async saveRefresh(hash, tenant, family, detail, expiresAt) {
      await guarded(
        sql`INSERT INTO refresh_tokens (token_hash, tenant, family, detail, expires_at) VALUES (${hash}, ${tenant}, ${family}, ${JSON.stringify(detail)}, ${expiresAt})`,
      );
    },
    async redeemRefresh(hash) {
      const [fresh] = await guarded(sql<Row>`
        UPDATE refresh_tokens r SET used_at = now()
        WHERE token_hash = ${hash} AND used_at IS NULL AND revoked_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.tenant = r.tenant AND g.grant_id = r.family AND g.revoked_at IS NOT NULL)
        RETURNING tenant, family AS grant, detail, expires_at, used_at`);
      const [existing] =
        fresh === undefined
          ? await guarded(sql<ExistingRow>`
        SELECT r.tenant, r.family AS grant, r.used_at,
          r.revoked_at IS NOT NULL OR EXISTS (SELECT 1 FROM grants g WHERE g.tenant = r.tenant AND g.grant_id = r.family AND g.revoked_at IS NOT NULL) AS revoked
        FROM refresh_tokens r WHERE token_hash = ${hash}`)
          : [];
      return redemption(fresh, existing, now());
    },
    async findRefresh(hash) {
      const [row] = await guarded(
        sql<{
          tenant: string;
          grant: string;
          detail: string;
        }>`SELECT tenant, family AS grant, detail FROM refresh_tokens WHERE token_hash = ${hash}`,
      );
      return row === undefined
        ? undefined
        : { tenant: row.tenant, grantId: row.grant, clientId: (JSON.parse(row.detail) as GrantDetail).clientId };
    },
  };
}
