import {
  chainCheck,
  entryHash,
  genesisHash,
  type AuditGap,
  type AuditLine,
  type ChainLine,
  type ChainVerdict,
  type StoredCheckpoint,
  type TrailEntry,
  rangeVerdict,
} from '../../core/audit/chain.js';
import { entryMatches, type AuditSearch } from '../../core/audit/search.js';
import type { Sql } from './sql.js';
import type { AuditQueries } from '../../core/ports.js';
import type { Sha256 } from '../../core/sha256.js';

interface Row {
  seq: string | number;
  tenant: string;
  canonical: string;
  prev_hash: string;
  hash: string;
}

type ChainRow = Omit<Row, 'tenant'>;
/** A row as verification reads it: the links, and the hash the database recomputed from the content. */
interface VerifyRow {
  seq: string | number;
  prev_hash: string;
  hash: string;
  recomputed: string;
}

/** Rows per page, and pages read ahead, when verifying the chain in the database. */
const verifyPageSize = 5000;
const verifyPagesAhead = 2;

/** Rows read per round when searching; a search examines at most `searchScanRows` rows per page asked. */
const searchBatch = 500;
const searchScanRows = 20_000;

/** The stored entry parsed, or undefined when its text is not JSON (an entry edited past the triggers). */
function parsed(canonical: string): unknown {
  try {
    return JSON.parse(canonical) as unknown;
  } catch {
    return undefined;
  }
}

const visible = (tenant: string, rowTenant: string): boolean => rowTenant === tenant || rowTenant === '*';

/** Stores a checkpoint; resolves true if it was stored, false if one of that size already was (another instance's). */
export type SaveCheckpoint = (seq: number, hash: string, jws: string, signedAt: Date) => Promise<boolean>;

/** Queries auditors need, each scoped to the auditor's tenant (system entries, tenant "*", are shared). */
export function createAuditReader(sql: Sql, sha256: Sha256): AuditQueries & { saveCheckpoint: SaveCheckpoint } {
  const line = (r: ChainRow): ChainLine => ({
    seq: Number(r.seq),
    prev_hash: r.prev_hash,
    hash: r.hash,
    canonical: r.canonical,
  });

  return {
    /**
     * The action's entries and every delegation hop behind them, in log order (root grant first),
     * each with the hash of the entry before it: one statement, one round trip.
     */
    async actionTrail(tenant: string, actionId: string): Promise<{ entries: TrailEntry[]; gaps: AuditGap[] }> {
      const rows = await sql<{
        seq: string | number;
        canonical: string;
        prev_hash: string;
        hash: string;
        previous_hash: string | null;
        before: string | number | null;
      }>`
        WITH RECURSIVE actions AS (
          SELECT seq, jti FROM audit_log WHERE tenant = ${tenant} AND action_id = ${actionId}
        ), lineage(jti, parent_jti) AS (
          SELECT t.jti, t.parent_jti FROM tokens t WHERE t.tenant = ${tenant} AND t.jti IN (SELECT jti FROM actions)
          UNION
          SELECT t.jti, t.parent_jti FROM tokens t JOIN lineage l ON t.jti = l.parent_jti WHERE t.tenant = ${tenant}
        ), trail(seq) AS (
          SELECT seq FROM actions
          UNION
          SELECT a.seq FROM audit_log a WHERE a.tenant = ${tenant} AND a.jti IN (SELECT jti FROM lineage) AND a.type LIKE 'token.%'
          UNION
          SELECT a.seq FROM audit_log a
          WHERE a.tenant = ${tenant} AND a.type = 'authorization.consent'
            AND a.root_grant IN (SELECT t.root_grant FROM tokens t WHERE t.tenant = ${tenant} AND t.jti IN (SELECT jti FROM lineage))
        )
        SELECT a.seq, a.canonical, a.prev_hash, a.hash, p.hash AS previous_hash,
               -- Only where the entry before is missing: the last one still there, so the gap is named.
               CASE WHEN p.seq IS NULL AND a.seq > 1 THEN (SELECT max(b.seq) FROM audit_log b WHERE b.seq < a.seq) END AS before
        FROM trail JOIN audit_log a ON a.seq = trail.seq LEFT JOIN audit_log p ON p.seq = a.seq - 1
        ORDER BY a.seq`;
      const entries: TrailEntry[] = [];
      const gaps: AuditGap[] = [];
      for (const r of rows) {
        const seq = Number(r.seq);
        const linked = seq === 1 ? r.prev_hash === genesisHash : r.previous_hash === r.prev_hash;
        const intact = entryHash(sha256, seq, r.prev_hash, r.canonical) === r.hash;
        if (seq > 1 && r.previous_hash === null) gaps.push({ from: Number(r.before ?? 0) + 1, to: seq - 1 });
        entries.push({
          seq,
          hash: r.hash,
          prev_hash: r.prev_hash,
          verified: linked && intact,
          entry: JSON.parse(r.canonical) as unknown,
        });
      }
      return { entries, gaps };
    },

    async gaps(limit: number): Promise<AuditGap[]> {
      // Counting first: a log without gaps (the usual case) is answered without walking it.
      const [counted] = await sql<{
        entries: string | number;
        head: string | number | null;
      }>`SELECT count(*) AS entries, (SELECT seq FROM audit_head WHERE id = 1) AS head FROM audit_log`;
      const head = Number(counted?.head ?? 0);
      if (Number(counted?.entries ?? 0) === head) return [];
      const rows = await sql<{ gap_from: string | number; gap_to: string | number }>`
        SELECT gap_from, gap_to FROM (
          SELECT coalesce(lag(seq) OVER (ORDER BY seq), 0) + 1 AS gap_from, seq - 1 AS gap_to FROM audit_log
          UNION ALL
          SELECT coalesce(max(seq), 0) + 1, CAST(${head} AS bigint) FROM audit_log
        ) g WHERE gap_from <= gap_to ORDER BY gap_from LIMIT ${limit}`;
      return rows.map((r) => ({ from: Number(r.gap_from), to: Number(r.gap_to) }));
    },

    /** Lines from `from` on: the tenant's entries whole, others' as hashes only, so the chain stays checkable. */
    async exportLines(tenant: string, from: number, limit: number): Promise<AuditLine[]> {
      const rows =
        await sql<Row>`SELECT seq, tenant, canonical, prev_hash, hash FROM audit_log WHERE seq >= ${from} ORDER BY seq LIMIT ${limit}`;
      return rows.map((r) =>
        visible(tenant, r.tenant)
          ? line(r)
          : { seq: Number(r.seq), prev_hash: r.prev_hash, hash: r.hash, redacted: true },
      );
    },

    /**
     * The tenant's entries matching the search, newest first. The database narrows by tenant,
     * action id, type and sequence numbers (its indexes); the rest of the filter is the core's
     * own test on each parsed entry, so an entry whose text is no longer JSON cannot fail the query.
     */
    async search(tenant: string, search: AuditSearch): Promise<{ entries: TrailEntry[]; next: number | null }> {
      const entries: TrailEntry[] = [];
      let below = search.before ?? Number.MAX_SAFE_INTEGER;
      const above = search.after ?? 0;
      const actionId = search.actionId ?? null;
      const type = search.type ?? null;
      for (let scanned = 0; scanned < searchScanRows;) {
        const rows = await sql<{
          seq: string | number;
          canonical: string;
          prev_hash: string;
          hash: string;
          previous_hash: string | null;
        }>`
          SELECT a.seq, a.canonical, a.prev_hash, a.hash, p.hash AS previous_hash
          FROM audit_log a LEFT JOIN audit_log p ON p.seq = a.seq - 1
          WHERE a.tenant = ${tenant} AND a.seq < ${below} AND a.seq > ${above}
            AND (CAST(${actionId} AS text) IS NULL OR a.action_id = ${actionId})
            AND (CAST(${type} AS text) IS NULL OR a.type = ${type})
          ORDER BY a.seq DESC LIMIT ${searchBatch}`;
        for (const r of rows) {
          const seq = Number(r.seq);
          below = seq;
          scanned += 1;
          const entry = parsed(r.canonical);
          if (!entryMatches(entry, search)) continue;
          const linked = seq === 1 ? r.prev_hash === genesisHash : r.previous_hash === r.prev_hash;
          const intact = entryHash(sha256, seq, r.prev_hash, r.canonical) === r.hash;
          entries.push({ seq, hash: r.hash, prev_hash: r.prev_hash, verified: linked && intact, entry });
          if (entries.length === search.limit) return { entries, next: seq };
        }
        if (rows.length < searchBatch) return { entries, next: null };
      }
      return { entries, next: below };
    },

    /** Recomputes the chain over [from, to] (whole entries, all tenants) and names the first bad entry. */
    async verify(from: number, to: number, anchors?: ReadonlyMap<number, string>): Promise<ChainVerdict> {
      let start: { seq: number; hash: string } | undefined;
      if (from > 1) {
        const [before] = await sql<{
          seq: string | number;
          hash: string;
        }>`SELECT seq, hash FROM audit_log WHERE seq = ${from - 1}`;
        start = before === undefined ? undefined : { seq: Number(before.seq), hash: before.hash };
        if (start === undefined)
          return { valid: false, entries: 0, seq: from - 1, reason: `entry ${from - 1} is missing` };
      } else start = { seq: 0, hash: genesisHash };
      const [head] = await sql<{ seq: string | number }>`SELECT seq FROM audit_head WHERE id = 1`;
      const last = Math.min(to, Number(head?.seq ?? 0));
      const check = chainCheck(sha256, start, false, anchors);
      // Pages are fixed ranges of sequence numbers, so the next ones are already being read while
      // one is checked; a gap shows as numbers missing from a page, which the check names. The
      // database hashes each entry as entryHash does (SHA-256 of the same UTF-8 text, built-in
      // since PostgreSQL 11), on its own core, and only the three hashes travel; Baton checks
      // every link and every recomputed hash against the stored one. Hashing here had held up
      // every request for 10–20 ms per page while the periodic checkpoint verified.
      const page = (low: number) => sql<VerifyRow>`
        SELECT seq, prev_hash, hash,
               encode(pg_catalog.sha256(convert_to('baton.audit.v1' || E'\n' || seq || E'\n' || prev_hash || E'\n' || canonical, 'UTF8')), 'hex') AS recomputed
        FROM audit_log WHERE seq >= ${low} AND seq <= ${Math.min(low + verifyPageSize - 1, last)} ORDER BY seq`;
      const ahead: Promise<VerifyRow[]>[] = [];
      let next = from;
      const readAhead = () => {
        for (; ahead.length < verifyPagesAhead && next <= last; next += verifyPageSize) ahead.push(page(next));
      };
      try {
        readAhead();
        for (let rows = ahead.shift(); rows !== undefined; rows = ahead.shift()) {
          const lines = (await rows).map((r): ChainLine => ({
            seq: Number(r.seq),
            prev_hash: r.prev_hash,
            hash: r.hash,
            recomputed: r.recomputed,
          }));
          readAhead();
          if (!check.add(lines)) break;
        }
      } finally {
        // Pages read ahead of a failure are not needed, but must not be left to reject unobserved.
        await Promise.allSettled(ahead);
      }
      return rangeVerdict(check.verdict(), from, last);
    },

    async head(): Promise<{ seq: number; hash: string }> {
      const [row] = await sql<{ seq: string | number; hash: string }>`SELECT seq, hash FROM audit_head WHERE id = 1`;
      return { seq: Number(row?.seq ?? 0), hash: row?.hash ?? '0'.repeat(64) };
    },

    async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
      const [row] = await sql<{
        seq: string | number;
        hash: string;
        jws: string;
      }>`SELECT seq, hash, jws FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`;
      return row === undefined ? undefined : { seq: Number(row.seq), hash: row.hash, jws: row.jws };
    },

    async checkpointsFrom(from: number): Promise<StoredCheckpoint[]> {
      return (
        await sql<{
          seq: string | number;
          hash: string;
          jws: string;
        }>`SELECT seq, hash, jws FROM audit_checkpoints WHERE seq >= ${from} ORDER BY seq`
      ).map((r) => ({ seq: Number(r.seq), hash: r.hash, jws: r.jws }));
    },

    async saveCheckpoint(seq: number, hash: string, jws: string, signedAt: Date): Promise<boolean> {
      const stored = await sql<{
        seq: string | number;
      }>`INSERT INTO audit_checkpoints (seq, hash, signed_at, jws) VALUES (${seq}, ${hash}, ${signedAt}, ${jws}) ON CONFLICT (seq) DO NOTHING RETURNING seq`;
      return stored.length === 1;
    },
  };
}
