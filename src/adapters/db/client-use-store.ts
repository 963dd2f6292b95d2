import { throttledClientUses } from '../../core/clients/client-uses.js';
import type { ClientUses } from '../../core/ports.js';
import { withinDeadline } from './deadline.js';
import type { Sql } from './sql.js';

/**
 * The last use of dynamically registered clients over SQL (migration 14), identical on PostgreSQL
 * and PGlite. A use is written at most once an hour per client by this process, and the row moves
 * only when an hour older (so instances, or Workers whose store lives one request, rarely write)
 * and only forward.
 */
export function createClientUseStore(sql: Sql, deadlineMs = 3000): ClientUses {
  const guarded = <T>(query: () => Promise<T>): Promise<T> => withinDeadline(query(), deadlineMs);
  return throttledClientUses({
    async note(clientId, at) {
      const when = new Date(at);
      await guarded(
        () => sql`
        INSERT INTO client_uses (client_id, last_used_at) VALUES (${clientId}, ${when})
        ON CONFLICT (client_id) DO UPDATE SET last_used_at = EXCLUDED.last_used_at
        WHERE client_uses.last_used_at < EXCLUDED.last_used_at - interval '1 hour'`,
      );
    },
    async lastUsed() {
      const rows = await guarded(
        () => sql<{ client_id: string; last_used_at: Date }>`SELECT client_id, last_used_at FROM client_uses`,
      );
      return new Map(rows.map((r) => [r.client_id, new Date(r.last_used_at).getTime()]));
    },
    async forget(clientIds) {
      if (clientIds.length === 0) return;
      await guarded(() => sql`DELETE FROM client_uses WHERE client_id = ANY(${[...clientIds]})`);
    },
  });
}
