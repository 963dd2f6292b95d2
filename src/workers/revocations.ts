import { cascadeRevocation } from '../adapters/db/revocation-store.js';
import type { Sql } from '../adapters/db/sql.js';
import { withinDeadline } from '../adapters/db/deadline.js';
import type { RevocationTarget, Revocations } from '../core/ports.js';

/**
 * Revocations for a request on Workers, where no timer outlives a request: each check is one
 * indexed lookup (revocations are materialized down the lineage, so it is never a walk), and a
 * revocation runs the same cascade as on Node.
 */
export function requestRevocations(sql: Sql): Revocations {
  return {
    async isRevoked(tenant, jti) {
      const rows = await withinDeadline(
        sql`SELECT 1 FROM revocations WHERE tenant = ${tenant} AND jti = ${jti} AND expires_at > now()`,
        3000,
      );
      return rows.length > 0;
    },
    revoke: async (tenant: string, target: RevocationTarget) =>
      (await withinDeadline(cascadeRevocation(sql, tenant, target), 3000)).revoked,
  };
}
