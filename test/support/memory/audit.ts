import {
  auditEntry,
  canonicalEntry,
  chainCheck,
  entryHash,
  genesisHash,
  type AuditGap,
  type AuditLine,
  type StoredCheckpoint,
  type TrailEntry,
  rangeVerdict,
} from '../../../src/core/audit/chain.js';
import { entryMatches } from '../../../src/core/audit/search.js';
import type { AuditLog, AuditQueries, Clock } from '../../../src/core/ports.js';
import type { SaveCheckpoint } from '../../../src/adapters/db/audit-reader.js';
import { writeLineage } from './revocations.js';
import { key, type MemoryState, type StoredEntry } from './state.js';

/** The stored entry parsed, or undefined when its text is not JSON. */
function parsed(canonical: string): unknown {
  try {
    return JSON.parse(canonical) as unknown;
  } catch {
    return undefined;
  }
}

/** SHA-256 hex, synchronous (the runtime's native hash). */
type Sha256Hex = (text: string) => string;

/**
 * The audit log in memory: a real hash chain, each entry chained on the head with the core's
 * functions, and the token's lineage written with its entry, both or neither.
 */
export function memoryAuditLog(state: MemoryState, sha256: Sha256Hex, clock: Clock): AuditLog {
  return {
    async append(event, lineage, request) {
      const entry = auditEntry(event, new Date(clock.now()), request);
      const canonical = canonicalEntry(entry);
      const { seq: last, hash: prev } = state.head;
      const seq = last + 1;
      const hash = entryHash(sha256, seq, prev, canonical) as string;
      if (lineage !== undefined) writeLineage(state, lineage);
      state.entries.set(seq, {
        seq,
        tenant: entry.tenant,
        type: entry.type,
        action_id: entry.action_id,
        jti: entry.jti,
        root_grant: entry.root_grant,
        canonical,
        prev_hash: prev,
        hash,
      });
      state.head = { seq, hash };
      return { seq, prev_hash: prev, hash, entry };
    },
  };
}

/** An auditor sees its tenant's entries and the system's (tenant "*"). */
const visible = (tenant: string, entry: StoredEntry): boolean => entry.tenant === tenant || entry.tenant === '*';

/** The auditors' queries over the in-memory log, answering as the SQL reader does. */
export function memoryAuditQueries(
  state: MemoryState,
  sha256: Sha256Hex,
): AuditQueries & { saveCheckpoint: SaveCheckpoint } {
  const inOrder = (): StoredEntry[] => [...state.entries.values()].sort((a, b) => a.seq - b.seq);
  return {
    async actionTrail(tenant, actionId) {
      const ofTenant = inOrder().filter((e) => e.tenant === tenant);
      const actions = ofTenant.filter((e) => e.action_id === actionId);
      // The tokens the action's entries name, and every token they derive from.
      const lineage = new Map<string, string>();
      for (const { jti } of actions) {
        for (
          let token = jti === null ? undefined : state.tokens.get(key(tenant, jti));
          token !== undefined && !lineage.has(token.jti);
        ) {
          lineage.set(token.jti, token.rootGrant);
          token = token.parentJti === null ? undefined : state.tokens.get(key(tenant, token.parentJti));
        }
      }
      const grants = new Set(lineage.values());
      const trail = ofTenant.filter(
        (e) =>
          e.action_id === actionId ||
          (e.type.startsWith('token.') && e.jti !== null && lineage.has(e.jti)) ||
          (e.type === 'authorization.consent' && e.root_grant !== null && grants.has(e.root_grant)),
      );
      const entries: TrailEntry[] = [];
      const gaps: AuditGap[] = [];
      for (const e of trail) {
        const previous = state.entries.get(e.seq - 1);
        const linked = e.seq === 1 ? e.prev_hash === genesisHash : previous?.hash === e.prev_hash;
        const intact = entryHash(sha256, e.seq, e.prev_hash, e.canonical) === e.hash;
        if (e.seq > 1 && previous === undefined)
          gaps.push({ from: Math.max(0, ...[...state.entries.keys()].filter((s) => s < e.seq)) + 1, to: e.seq - 1 });
        entries.push({
          seq: e.seq,
          hash: e.hash,
          prev_hash: e.prev_hash,
          verified: linked && intact,
          entry: JSON.parse(e.canonical) as unknown,
        });
      }
      return { entries, gaps };
    },

    async gaps(limit) {
      const gaps: AuditGap[] = [];
      let before = 0;
      for (const { seq } of [...inOrder(), { seq: state.head.seq + 1 }]) {
        if (before + 1 <= seq - 1) gaps.push({ from: before + 1, to: seq - 1 });
        before = seq;
      }
      return gaps.slice(0, limit);
    },

    async search(tenant, search) {
      const matching = inOrder()
        .reverse()
        .filter(
          (e) =>
            e.tenant === tenant &&
            e.seq < (search.before ?? Number.MAX_SAFE_INTEGER) &&
            e.seq > (search.after ?? 0) &&
            entryMatches(parsed(e.canonical), search),
        );
      const page = matching.slice(0, search.limit);
      const entries = page.map((e): TrailEntry => {
        const previous = state.entries.get(e.seq - 1);
        const linked = e.seq === 1 ? e.prev_hash === genesisHash : previous?.hash === e.prev_hash;
        const intact = entryHash(sha256, e.seq, e.prev_hash, e.canonical) === e.hash;
        return {
          seq: e.seq,
          hash: e.hash,
          prev_hash: e.prev_hash,
          verified: linked && intact,
          entry: parsed(e.canonical),
        };
      });
      return { entries, next: matching.length > search.limit ? (page.at(-1)?.seq ?? null) : null };
    },

    async exportLines(tenant, from, limit) {
      return inOrder()
        .filter((e) => e.seq >= from)
        .slice(0, limit)
        .map((e): AuditLine =>
          visible(tenant, e)
            ? { seq: e.seq, prev_hash: e.prev_hash, hash: e.hash, canonical: e.canonical }
            : { seq: e.seq, prev_hash: e.prev_hash, hash: e.hash, redacted: true },
        );
    },

    async verify(from, to, anchors) {
      let start = { seq: 0, hash: genesisHash };
      if (from > 1) {
        const before = state.entries.get(from - 1);
        if (before === undefined)
          return { valid: false, entries: 0, seq: from - 1, reason: `entry ${from - 1} is missing` };
        start = { seq: before.seq, hash: before.hash };
      }
      const last = Math.min(to, state.head.seq);
      const check = chainCheck(sha256, start, false, anchors);
      await check.add(
        inOrder()
          .filter((e) => e.seq >= from && e.seq <= last)
          .map((e) => ({ seq: e.seq, prev_hash: e.prev_hash, hash: e.hash, canonical: e.canonical })),
      );
      return rangeVerdict(check.verdict(), from, last);
    },

    async head() {
      return { ...state.head };
    },

    async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
      const latest = state.checkpoints.reduce<StoredCheckpoint | undefined>(
        (found, c) => (found === undefined || c.seq > found.seq ? c : found),
        undefined,
      );
      return latest === undefined ? undefined : { ...latest };
    },

    async checkpointsFrom(from) {
      return state.checkpoints
        .filter((c) => c.seq >= from)
        .sort((a, b) => a.seq - b.seq)
        .map((c) => ({ ...c }));
    },

    async saveCheckpoint(seq, hash, jws) {
      if (state.checkpoints.some((c) => c.seq === seq)) return false;
      state.checkpoints.push({ seq, hash, jws });
      return true;
    },
  };
}
