import { withinDeadline } from './deadline.js';
import type { AssertionUse, Store, TokenLineage } from '../../core/ports.js';
import type { Sql } from './sql.js';

interface TokenRow {
  tenant: string;
  jti: string;
  parent_jti: string | null;
  root_grant: string;
  subject: string;
  actor: string | null;
  client_id: string;
  expires_at: Date;
}

/**
 * Deletes the used assertion ids whose assertions expired before `before`, and returns how many.
 * An expired assertion is refused before its id is looked up, so its row guards nothing; token
 * lineage and revocations stay (the audit trail walks the lineage).
 */
export async function purgeUsedAssertions(sql: Sql, before: Date): Promise<number> {
  const rows = await sql`DELETE FROM used_assertions WHERE expires_at < ${before} RETURNING 1`;
  return rows.length;
}

/** How many found lineage rows a store keeps in memory. */
const knownTokensKept = 10_000;

/**
 * The Store port over SQL, identical on PostgreSQL and PGlite. Any failure, or no answer within
 * `deadlineMs`, is StorageUnavailableError (503).
 */
export function createSqlStore(sql: Sql, deadlineMs = 3000): Store {
  const guarded = <T>(query: () => Promise<T>): Promise<T> => withinDeadline(query(), deadlineMs);
  // A lineage row never changes once written (revocation is kept apart), so a row found once is
  // kept and the next check of the same token (an agent's own token is shown at every hop) costs
  // no query. Only found rows are kept: an unknown token is looked up every time.
  const known = new Map<string, TokenLineage>();
  return {
    async consumeAssertion(use: AssertionUse): Promise<boolean> {
      const rows = await guarded(
        () => sql`
        INSERT INTO used_assertions (tenant, issuer, jti, expires_at)
        VALUES (${use.tenant}, ${use.issuer}, ${use.jti}, ${use.expiresAt})
        ON CONFLICT DO NOTHING
        RETURNING jti`,
      );
      return rows.length === 1;
    },

    async findToken(tenant: string, jti: string): Promise<TokenLineage | undefined> {
      const key = `${tenant}\u0000${jti}`;
      const kept = known.get(key);
      if (kept !== undefined) return kept;
      const [row] = await guarded(
        () => sql<TokenRow>`
        SELECT tenant, jti, parent_jti, root_grant, subject, actor, client_id, expires_at
        FROM tokens WHERE tenant = ${tenant} AND jti = ${jti}`,
      );
      if (row === undefined) return undefined;
      const lineage = {
        tenant: row.tenant,
        jti: row.jti,
        parentJti: row.parent_jti,
        rootGrant: row.root_grant,
        subject: row.subject,
        actor: row.actor,
        clientId: row.client_id,
        expiresAt: new Date(row.expires_at),
      };
      if (known.size >= knownTokensKept) known.delete(known.keys().next().value as string);
      known.set(key, lineage);
      return lineage;
    },
  };
}
