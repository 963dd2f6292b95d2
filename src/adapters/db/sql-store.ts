import { withinDeadline } from '../../core/errors.js';
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

/** The Store port over SQL, identical on PostgreSQL and PGlite. Any failure, or no answer within `deadlineMs`, is StorageUnavailableError (503). */
export function createSqlStore(sql: Sql, deadlineMs = 3000): Store {
  const guarded = <T>(query: () => Promise<T>): Promise<T> => withinDeadline(query(), deadlineMs);
  return {
    async consumeAssertion(use: AssertionUse): Promise<boolean> {
      const rows = await guarded(() => sql`
        INSERT INTO used_assertions (tenant, issuer, jti, expires_at)
        VALUES (${use.tenant}, ${use.issuer}, ${use.jti}, ${use.expiresAt})
        ON CONFLICT DO NOTHING
        RETURNING jti`);
      return rows.length === 1;
    },

    async findToken(tenant: string, jti: string): Promise<TokenLineage | undefined> {
      const [row] = await guarded(() => sql<TokenRow>`
        SELECT tenant, jti, parent_jti, root_grant, subject, actor, client_id, expires_at
        FROM tokens WHERE tenant = ${tenant} AND jti = ${jti}`);
      if (row === undefined) return undefined;
      return {
        tenant: row.tenant,
        jti: row.jti,
        parentJti: row.parent_jti,
        rootGrant: row.root_grant,
        subject: row.subject,
        actor: row.actor,
        clientId: row.client_id,
        expiresAt: new Date(row.expires_at),
      };
    },
  };
}
