import type { Sql } from './sql.js';
import type { RateLimitStore } from '../../core/ports.js';

/**
 * The shared rate limit buckets in PostgreSQL: one row per caller, its level and when it was last
 * refilled. A sync is one upsert for all its callers: rows are locked in caller order, so two
 * instances charging the same callers wait for each other and never deadlock, and each sees the
 * level the one before left. The refill is `refilled` (core/clients/rate-limit.ts) in SQL, on the
 * charging instance's clock: a clock behind the row's never takes time back (`greatest`).
 */
export function createRateLimitStore(sql: Sql): RateLimitStore {
  return {
    async charge(charges, shape, now) {
      const sorted = [...charges].sort((a, b) => (a.callerId < b.callerId ? -1 : a.callerId > b.callerId ? 1 : 0));
      const at = new Date(now);
      // A new row is a full bucket less the charge, so for an existing one the charge is burst - excluded.tokens.
      const rows = await sql<{ caller: string; tokens: number }>`
        INSERT INTO rate_limit_buckets AS b (caller, tokens, refilled_at)
        SELECT caller, ${shape.burst}::float8 - admitted, ${at}::timestamptz
        FROM unnest(${sorted.map((c) => c.callerId)}::text[], ${sorted.map((c) => c.admitted)}::float8[]) AS c(caller, admitted)
        ORDER BY caller
        ON CONFLICT (caller) DO UPDATE SET
          tokens = least(
            ${shape.burst}::float8,
            b.tokens + ${shape.perSecond}::float8 * greatest(0, extract(epoch FROM excluded.refilled_at - b.refilled_at))::float8
          ) - (${shape.burst}::float8 - excluded.tokens),
          refilled_at = greatest(b.refilled_at, excluded.refilled_at)
        RETURNING caller, tokens`;
      return new Map(rows.map((r) => [r.caller, Number(r.tokens)]));
    },
    async purge(shape, now) {
      const rows = await sql<{ caller: string }>`
        DELETE FROM rate_limit_buckets
        WHERE tokens + ${shape.perSecond}::float8 * extract(epoch FROM ${new Date(now)}::timestamptz - refilled_at)::float8 >= ${shape.burst}::float8
        RETURNING caller`;
      return rows.length;
    },
  };
}
