import type { AuditSinkStore, SinkKind, StoredSink } from '../../core/audit/sinks.js';
import type { Sql } from './sql.js';

interface SinkRow {
  tenant: string;
  id: string;
  kind: string;
  url: string;
  credential: string | null;
  batch_size: number;
  delivered_seq: string | number;
  failures: number;
  last_error: string | null;
}

const stored = (r: SinkRow): StoredSink => ({
  tenant: r.tenant,
  id: r.id,
  kind: r.kind as SinkKind,
  url: r.url,
  credential: r.credential,
  batchSize: r.batch_size,
  deliveredSeq: Number(r.delivered_seq),
  failures: r.failures,
  lastError: r.last_error,
});

/** The audit sinks, their cursors and leases in SQL. */
export function createAuditSinkStore(sql: Sql): AuditSinkStore {
  return {
    async list(tenant) {
      return (await sql<SinkRow>`SELECT * FROM audit_sinks WHERE tenant = ${tenant} ORDER BY id`).map(stored);
    },
    async put(tenant, id, config, by) {
      const [row] = await sql<{ created: boolean }>`
        INSERT INTO audit_sinks (tenant, id, kind, url, credential, batch_size, created_by)
        VALUES (${tenant}, ${id}, ${config.kind}, ${config.url}, ${config.credential}, ${config.batchSize}, ${by})
        ON CONFLICT (tenant, id) DO UPDATE SET kind = EXCLUDED.kind, url = EXCLUDED.url,
          credential = EXCLUDED.credential, batch_size = EXCLUDED.batch_size,
          failures = 0, next_attempt_at = NULL, last_error = NULL
        RETURNING (xmax = 0) AS created`;
      return row?.created === true;
    },
    async remove(tenant, id) {
      return (await sql`DELETE FROM audit_sinks WHERE tenant = ${tenant} AND id = ${id} RETURNING id`).length > 0;
    },
    async claim(holder, leaseMs) {
      const rows = await sql<SinkRow>`
        UPDATE audit_sinks SET lease_holder = ${holder}, lease_until = now() + ${leaseMs} * interval '1 millisecond'
        WHERE (lease_holder = ${holder} OR lease_until IS NULL OR lease_until < now())
          AND (next_attempt_at IS NULL OR next_attempt_at <= now())
        RETURNING *`;
      return rows.map(stored).sort((a, b) => `${a.tenant}/${a.id}`.localeCompare(`${b.tenant}/${b.id}`));
    },
    async batch(tenant, after, limit) {
      // One statement, one snapshot: the head read with the lines is the one they were read under.
      const rows = await sql<{
        seq: string | number;
        canonical: string;
        prev_hash: string;
        hash: string;
        head: string | number;
      }>`
        SELECT a.seq, a.canonical, a.prev_hash, a.hash, h.seq AS head
        FROM audit_head h LEFT JOIN LATERAL (
          SELECT seq, canonical, prev_hash, hash FROM audit_log
          WHERE seq > ${after} AND (tenant = ${tenant} OR tenant = '*') ORDER BY seq LIMIT ${limit}
        ) a ON true
        WHERE h.id = 1`;
      const head = Number(rows[0]?.head ?? 0);
      return {
        head,
        lines: rows
          .filter((r) => r.seq !== null)
          .map((r) => ({ seq: Number(r.seq), canonical: r.canonical, prev_hash: r.prev_hash, hash: r.hash })),
      };
    },
    async delivered(sink, holder, from, to) {
      const rows = await sql`
        UPDATE audit_sinks SET delivered_seq = ${to}, failures = 0, next_attempt_at = NULL, last_error = NULL
        WHERE tenant = ${sink.tenant} AND id = ${sink.id} AND lease_holder = ${holder} AND delivered_seq = ${from}
        RETURNING id`;
      return rows.length > 0;
    },
    async failed(sink, holder, error, retryInMs) {
      await sql`
        UPDATE audit_sinks SET failures = failures + 1, last_error = ${error.slice(0, 500)},
          next_attempt_at = now() + ${retryInMs} * interval '1 millisecond'
        WHERE tenant = ${sink.tenant} AND id = ${sink.id} AND lease_holder = ${holder}`;
    },
    async release(holder) {
      await sql`UPDATE audit_sinks SET lease_holder = NULL, lease_until = NULL WHERE lease_holder = ${holder}`;
    },
  };
}
