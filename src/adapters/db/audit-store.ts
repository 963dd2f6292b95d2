import {
  auditEntry,
  canonicalEntry,
  entryHash,
  verifyChain,
  type AuditEvent,
  type AuditLine,
  type AuditLog,
  type AuditQueries,
  type AuditRecord,
  type ChainLine,
  type ChainVerdict,
  type Sha256Hex,
  type TrailEntry,
} from '../../core/audit.js';
import { StorageUnavailableError, withinDeadline } from '../../core/errors.js';
import { inSpan } from '../../core/telemetry.js';
import type { Clock, TokenLineage } from '../../core/ports.js';
import type { Sql } from './sql.js';

interface Pending {
  readonly event: AuditEvent;
  readonly lineage: TokenLineage | undefined;
  readonly resolve: (record: AuditRecord) => void;
  readonly reject: (error: unknown) => void;
}

export interface AuditWriterOptions {
  readonly sha256: Sha256Hex;
  readonly clock: Clock;
  /** Most entries in one transaction. */
  readonly maxBatch?: number;
  /** Called after each committed batch with its size and duration, for metrics. */
  readonly onBatch?: (size: number, milliseconds: number) => void;
  /** How long an append may wait for its commit before it is reported unavailable. */
  readonly deadlineMs?: number;
}

/** An audit log that is also drained on shutdown. */
export interface GroupCommitAuditLog extends AuditLog {
  /** Resolves when every entry appended so far is committed (or failed). */
  drain(): Promise<void>;
}

/**
 * Appends with group commit: entries that arrive while a transaction runs go together in the
 * next one. Each transaction locks the chain head, so any number of instances extend one chain
 * with contiguous sequence numbers; token lineage commits in the same transaction as its entry.
 */
export function createAuditWriter(sql: Sql, options: AuditWriterOptions): GroupCommitAuditLog {
  const maxBatch = options.maxBatch ?? 1000;
  const queue: Pending[] = [];
  let running: Promise<void> | undefined;

  async function commit(batch: readonly Pending[]): Promise<AuditRecord[]> {
    return sql.begin(async (tx) => {
      const [head] = await tx<{ seq: string | number; hash: string }>`SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`;
      if (head === undefined) throw new Error('audit head is missing');
      let seq = Number(head.seq);
      let prev = head.hash;
      const time = new Date(options.clock.now());
      const records: (AuditRecord & { canonical: string })[] = [];
      for (const { event } of batch) {
        seq += 1;
        const entry = auditEntry(event, time);
        const canonical = canonicalEntry(entry);
        const hash = await entryHash(options.sha256, seq, prev, canonical);
        records.push({ seq, prev_hash: prev, hash, entry, canonical });
        prev = hash;
      }
      // Each batch goes as one JSON parameter: far cheaper for the driver than array literals.
      const lineages = batch.map((p) => p.lineage).filter((l): l is TokenLineage => l !== undefined);
      if (lineages.length > 0) {
        const rows = lineages.map((l) => ({ tenant: l.tenant, jti: l.jti, parent_jti: l.parentJti, root_grant: l.rootGrant, subject: l.subject, actor: l.actor, client_id: l.clientId, expires_at: l.expiresAt.toISOString() }));
        await tx`
          INSERT INTO tokens (tenant, jti, parent_jti, root_grant, subject, actor, client_id, expires_at)
          SELECT tenant, jti, parent_jti, root_grant, subject, actor, client_id, expires_at
          FROM json_to_recordset(${JSON.stringify(rows)}::text::json)
            AS r(tenant text, jti text, parent_jti text, root_grant text, subject text, actor text, client_id text, expires_at timestamptz)`;
      }
      const rows = records.map((r) => ({ seq: r.seq, tenant: r.entry.tenant, type: r.entry.type, action_id: r.entry.action_id, jti: r.entry.jti, root_grant: r.entry.root_grant, canonical: r.canonical, prev_hash: r.prev_hash, hash: r.hash }));
      await tx`
        INSERT INTO audit_log (seq, tenant, type, action_id, jti, root_grant, recorded_at, canonical, prev_hash, hash)
        SELECT seq, tenant, type, action_id, jti, root_grant, ${time}, canonical, prev_hash, hash
        FROM json_to_recordset(${JSON.stringify(rows)}::text::json)
          AS r(seq bigint, tenant text, type text, action_id text, jti text, root_grant text, canonical text, prev_hash text, hash text)`;
      await tx`UPDATE audit_head SET seq = ${seq}, hash = ${prev} WHERE id = 1`;
      return records.map(({ canonical: _canonical, ...record }) => record);
    });
  }

  async function run(): Promise<void> {
    while (queue.length > 0) {
      // Let the callers woken by the previous commit queue their next entries first, so the
      // next transaction carries them together rather than one entry ahead of the rest.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const batch = queue.splice(0, maxBatch);
      const started = performance.now();
      try {
        const records = await commit(batch);
        options.onBatch?.(batch.length, performance.now() - started);
        batch.forEach((p, i) => p.resolve(records[i] as AuditRecord));
      } catch (cause) {
        const error = new StorageUnavailableError(cause);
        batch.forEach((p) => p.reject(error));
      }
    }
    running = undefined;
  }

  return {
    append(event, lineage) {
      return inSpan('baton.audit.append', { 'baton.tenant': event.tenant, 'baton.audit.type': event.type, 'baton.decision': event.decision }, () => {
        const committed = new Promise<AuditRecord>((resolve, reject) => {
          queue.push({ event, lineage, resolve, reject });
          running ??= run();
        });
        return withinDeadline(committed, options.deadlineMs ?? 3000);
      });
    },
    async drain() {
      while (running !== undefined) await running;
    },
  };
}

interface Row {
  seq: string | number;
  tenant: string;
  canonical: string;
  prev_hash: string;
  hash: string;
}

const visible = (tenant: string, rowTenant: string): boolean => rowTenant === tenant || rowTenant === '*';

/** Queries auditors need, each scoped to the auditor's tenant (system entries, tenant "*", are shared). */
export function createAuditReader(sql: Sql, sha256: Sha256Hex): AuditQueries & { saveCheckpoint(seq: number, hash: string, jws: string, signedAt: Date): Promise<void> } {
  const line = (r: Row): ChainLine => ({ seq: Number(r.seq), prev_hash: r.prev_hash, hash: r.hash, canonical: r.canonical });

  async function withStatus(rows: readonly Row[]): Promise<TrailEntry[]> {
    const previous = rows.length === 0 ? [] : await sql<{ seq: string | number; hash: string }>`SELECT seq, hash FROM audit_log WHERE seq = ANY(${rows.map((r) => Number(r.seq) - 1)}::bigint[])`;
    const prevHash = new Map(previous.map((p) => [Number(p.seq), p.hash]));
    return Promise.all(
      rows.map(async (r) => {
        const seq = Number(r.seq);
        const linked = seq === 1 ? r.prev_hash === '0'.repeat(64) : prevHash.get(seq - 1) === r.prev_hash;
        const intact = (await entryHash(sha256, seq, r.prev_hash, r.canonical)) === r.hash;
        return { seq, hash: r.hash, prev_hash: r.prev_hash, verified: linked && intact, entry: JSON.parse(r.canonical) as unknown };
      }),
    );
  }

  return {
    /** The action's entries and every delegation hop behind them, in log order (root grant first). */
    async actionTrail(tenant: string, actionId: string): Promise<TrailEntry[]> {
      const actions = await sql<Row & { jti: string | null }>`
        SELECT seq, tenant, jti, canonical, prev_hash, hash FROM audit_log WHERE tenant = ${tenant} AND action_id = ${actionId} ORDER BY seq`;
      if (actions.length === 0) return [];
      const jtis = [...new Set(actions.map((a) => a.jti).filter((j): j is string => j !== null))];
      const hops =
        jtis.length === 0
          ? []
          : await sql<Row>`
        WITH RECURSIVE lineage(jti, parent_jti) AS (
          SELECT jti, parent_jti FROM tokens WHERE tenant = ${tenant} AND jti = ANY(${jtis}::text[])
          UNION
          SELECT t.jti, t.parent_jti FROM tokens t JOIN lineage l ON t.jti = l.parent_jti WHERE t.tenant = ${tenant}
        )
        SELECT a.seq, a.tenant, a.canonical, a.prev_hash, a.hash FROM audit_log a
        WHERE a.tenant = ${tenant} AND a.jti IN (SELECT jti FROM lineage) AND a.type LIKE 'token.%'
        UNION
        SELECT a.seq, a.tenant, a.canonical, a.prev_hash, a.hash FROM audit_log a
        WHERE a.tenant = ${tenant} AND a.type = 'authorization.consent'
          AND a.root_grant IN (SELECT t.root_grant FROM tokens t WHERE t.tenant = ${tenant} AND t.jti IN (SELECT jti FROM lineage))`;
      const all = new Map<number, Row>();
      for (const r of [...hops, ...actions]) all.set(Number(r.seq), r);
      return withStatus([...all.values()].sort((a, b) => Number(a.seq) - Number(b.seq)));
    },

    /** Lines from `from` on: the tenant's entries whole, others' as hashes only, so the chain stays checkable. */
    async exportLines(tenant: string, from: number, limit: number): Promise<AuditLine[]> {
      const rows = await sql<Row>`SELECT seq, tenant, canonical, prev_hash, hash FROM audit_log WHERE seq >= ${from} ORDER BY seq LIMIT ${limit}`;
      return rows.map((r) => (visible(tenant, r.tenant) ? line(r) : { seq: Number(r.seq), prev_hash: r.prev_hash, hash: r.hash, redacted: true }));
    },

    /** Recomputes the chain over [from, to] (whole entries, all tenants) and names the first bad entry. */
    async verify(from: number, to: number): Promise<ChainVerdict> {
      const pageSize = 5000;
      let start: { seq: number; hash: string } | undefined;
      if (from > 1) {
        const [before] = await sql<{ seq: string | number; hash: string }>`SELECT seq, hash FROM audit_log WHERE seq = ${from - 1}`;
        start = before === undefined ? undefined : { seq: Number(before.seq), hash: before.hash };
        if (start === undefined) return { valid: false, entries: 0, seq: from - 1, reason: `entry ${from - 1} is missing` };
      } else start = { seq: 0, hash: '0'.repeat(64) };
      async function* pages(): AsyncGenerator<ChainLine> {
        let next = from;
        for (;;) {
          const rows = await sql<Row>`SELECT seq, tenant, canonical, prev_hash, hash FROM audit_log WHERE seq >= ${next} AND seq <= ${to} ORDER BY seq LIMIT ${pageSize}`;
          for (const r of rows) yield line(r);
          if (rows.length < pageSize) return;
          next = Number((rows.at(-1) as Row).seq) + 1;
        }
      }
      const [head] = await sql<{ seq: string | number }>`SELECT seq FROM audit_head WHERE id = 1`;
      const verdict = await verifyChain(sha256, pages(), start, false);
      const last = Math.min(to, Number(head?.seq ?? 0));
      // Entries missing at the end of the range are a gap too.
      if (verdict.valid && from + verdict.entries - 1 < last) return { valid: false, entries: verdict.entries, seq: from + verdict.entries, reason: `entries ${from + verdict.entries}–${last} are missing` };
      return verdict;
    },

    async head(): Promise<{ seq: number; hash: string }> {
      const [row] = await sql<{ seq: string | number; hash: string }>`SELECT seq, hash FROM audit_head WHERE id = 1`;
      return { seq: Number(row?.seq ?? 0), hash: row?.hash ?? '0'.repeat(64) };
    },

    async latestCheckpoint(): Promise<{ seq: number; hash: string; jws: string } | undefined> {
      const [row] = await sql<{ seq: string | number; hash: string; jws: string }>`SELECT seq, hash, jws FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`;
      return row === undefined ? undefined : { seq: Number(row.seq), hash: row.hash, jws: row.jws };
    },

    async checkpointsFrom(from: number): Promise<string[]> {
      return (await sql<{ jws: string }>`SELECT jws FROM audit_checkpoints WHERE seq >= ${from} ORDER BY seq`).map((r) => r.jws);
    },

    async saveCheckpoint(seq: number, hash: string, jws: string, signedAt: Date): Promise<void> {
      await sql`INSERT INTO audit_checkpoints (seq, hash, signed_at, jws) VALUES (${seq}, ${hash}, ${signedAt}, ${jws}) ON CONFLICT (seq) DO NOTHING`;
    },
  };
}

