import { auditEntry, canonicalEntry, entryHash, type AuditEntry, type AuditRecord } from '../../core/audit/chain.js';
import { StorageUnavailableError, invalidRequest } from '../../core/errors.js';
import { textProblem } from '../../core/input/storable-text.js';
import { inSpan } from '../../core/telemetry.js';
import type { Clock, TokenLineage, AuditLog } from '../../core/ports.js';
import type { Sha256 } from '../../core/sha256.js';
import { cascadeRevocation } from './revocation-store.js';
import type { Session, Sql } from './sql.js';

/** The columns of an entry's row besides its place in the chain. */
interface EntryColumns {
  readonly tenant: string;
  readonly type: string;
  readonly action_id: string | null;
  readonly jti: string | null;
  readonly root_grant: string | null;
  readonly recorded_at: string;
}

/** A token's lineage row, as `baton_audit_append` reads it. */
interface LineageRow {
  readonly tenant: string;
  readonly jti: string;
  readonly parent_jti: string | null;
  readonly root_grant: string;
  readonly subject: string;
  readonly actor: string | null;
  readonly client_id: string;
  readonly expires_at: string;
}

/**
 * An entry waiting for its batch. Its canonical form and its rows are made at append() and
 * checked there, so an entry that cannot be stored fails only its own caller, never the batch.
 */
interface Pending {
  readonly entry: AuditEntry;
  /** RFC 8785 form: JSON escapes NUL and unpaired surrogates, so it always fits a text column. */
  readonly canonical: string;
  readonly columns: EntryColumns;
  readonly lineage: LineageRow | undefined;
  /** Who waits for the commit; the writer's own notices have nobody and are tried until they commit. */
  readonly caller:
    { readonly resolve: (record: AuditRecord) => void; readonly reject: (error: unknown) => void } | undefined;
  /** Queued, sent in a batch, answered with its record, or answered 503 (at its deadline or as its batch failed). */
  state: 'queued' | 'sent' | 'answered' | 'refused';
  timer?: ReturnType<typeof setTimeout>;
  batch?: Batch;
}

/**
 * An entry's row and lineage row; refuses text PostgreSQL cannot hold in a column (see
 * storable-text.ts) as the caller's `invalid_request`. Every path that carries caller text into
 * a column refuses it before; this keeps one that slips through from failing a whole batch.
 */
function storedRows(
  entry: AuditEntry,
  lineage: TokenLineage | undefined,
): { columns: EntryColumns; lineage: LineageRow | undefined } {
  const columns: EntryColumns = {
    tenant: entry.tenant,
    type: entry.type,
    action_id: entry.action_id,
    jti: entry.jti,
    root_grant: entry.root_grant,
    recorded_at: entry.time,
  };
  const row: LineageRow | undefined =
    lineage === undefined
      ? undefined
      : {
          tenant: lineage.tenant,
          jti: lineage.jti,
          parent_jti: lineage.parentJti,
          root_grant: lineage.rootGrant,
          subject: lineage.subject,
          actor: lineage.actor,
          client_id: lineage.clientId,
          expires_at: lineage.expiresAt.toISOString(),
        };
  // Flat rows of strings and nulls: checked member by member, no walk of nested values.
  for (const [table, values] of [
    ['entry', columns],
    ['lineage', row ?? {}],
  ] as const) {
    for (const [member, value] of Object.entries(values)) {
      const problem = typeof value === 'string' ? textProblem(value) : undefined;
      if (problem !== undefined) throw invalidRequest(unrecordable, `audit ${table}.${member} contains ${problem}`);
    }
  }
  return { columns, lineage: row };
}

/** The refusal of an entry that cannot be stored. */
export const unrecordable =
  'the request carries text that cannot be recorded (a NUL character or an unpaired UTF-16 surrogate)';

/** Whether the database refused a batch for what one of its rows holds (SQLSTATE class 22, data exception, or 23, integrity constraint). */
function refusedForItsData(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^2[23]/.test(code);
}

export interface AuditWriterOptions {
  readonly sha256: Sha256;
  readonly clock: Clock;
  /** Most entries in one transaction. */
  readonly maxBatch?: number;
  /** Called after each committed batch with its size and duration, for metrics. */
  readonly onBatch?: (size: number, milliseconds: number) => void;
  /** How long an append may wait for its commit before its caller is answered unavailable. Default 3000. */
  readonly deadlineMs?: number;
  /** How long the readiness probe may take. Default 1000. */
  readonly probeMs?: number;
  /**
   * Opens connections of the writer's own (PostgreSQL). With them, a batch that misses its
   * deadline or loses its connection is abandoned with its session; without (PGlite, in this
   * process, where nothing is lost in transit) batches share `sql` and are waited for.
   */
  readonly openSession?: () => Session;
  /** Told of entries committed after their callers were answered 503, once their notice is queued. */
  readonly onUndelivered?: (seqs: readonly number[]) => void;
}

/** An audit log that is also drained on shutdown, and says whether it can commit now. */
export interface GroupCommitAuditLog extends AuditLog {
  /** Resolves when every entry appended so far is committed (or failed), or when the database does not answer. */
  drain(): Promise<void>;
  /**
   * Resolves if an entry could be committed now: nothing left in doubt, and a transaction on the
   * writer's own connection takes the chain head's lock (then rolls back) within the probe time.
   */
  ready(): Promise<void>;
  /** Closes the writer's own connections; call after drain(). */
  close(): Promise<void>;
}

interface Head {
  readonly seq: number;
  readonly hash: string;
}

interface Chained {
  /** The entries as one JSON parameter. */
  readonly rows: string;
  readonly records: AuditRecord[];
  /** The head once they are committed. */
  readonly head: Head;
}

/** Entries sent together in one transaction. */
interface Batch {
  readonly pendings: readonly Pending[];
  /** Each chaining it was sent with: if it committed, it committed as one of these. */
  readonly attempts: Chained[];
  /** The session carrying it (undefined: the shared client). */
  readonly session: Session | undefined;
  /** Given up with its session: its outcome is settled by a later session, not by its own answer. */
  abandoned: boolean;
}

/** Transactions one writer keeps in flight: the next batch is chained and sent while the previous one commits. */
const pipelineDepth = 2;

/** Thrown to roll the readiness probe back. */
const probeDone = new Error('probe done');

/** Whether the database itself answered with this error, which rolls the statement back; anything else (a lost connection) leaves its outcome unknown. */
function answeredByServer(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'PostgresError';
}

function settleWithin<T>(work: Promise<T>, ms: number, missed: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  work.catch(() => undefined);
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        missed();
        reject(new StorageUnavailableError(new Error(`no answer from the database within ${ms} ms`)));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Appends with group commit: entries that arrive while a transaction runs go together in the
 * next one. Every batch is written by `baton_audit_append`, which locks the chain head and checks
 * that the batch continues it, so any number of instances extend one chain with contiguous
 * sequence numbers; token lineage commits in the same transaction as its entry, and a caller is
 * answered only once its batch has committed. A batch is chained on the head this writer expects
 * (the one its previous batch leaves) and sent as one statement while that batch still commits;
 * if the head is not that one (another instance appended, a batch failed), nothing is written and
 * the batch is chained again, after the previous one, in a transaction that holds the head's lock.
 * One writer's entries keep the order they were appended in.
 *
 * Every caller is answered by its deadline. An entry still queued then is dropped, never written.
 * A batch that was sent but not answered in time (or whose connection was lost) is abandoned with
 * its session: its callers are answered 503, the connections are destroyed and later batches go
 * on a new session. Its outcome is unknown (the commit may have reached the server, the answer
 * not), so before anything else is written the new session ends the old one's server processes
 * (nothing of it can commit later) and looks the batch up in the chain. An entry that committed
 * for a caller answered 503 — found so, or committed late where nothing is abandoned — is
 * followed by an `audit.undelivered` entry naming its sequence number, and the token it
 * records is revoked, since its holder never got it.
 */
export function createAuditWriter(sql: Sql, options: AuditWriterOptions): GroupCommitAuditLog {
  const maxBatch = options.maxBatch ?? 1000;
  const deadlineMs = options.deadlineMs ?? 3000;
  const probeMs = options.probeMs ?? 1000;
  const queue: Pending[] = [];
  const flying = new Set<Batch>();
  let session = options.openSession?.();
  /** Sessions given up whose server processes may still run. */
  const deadSessions: string[] = [];
  /** Abandoned batches whose outcome is not yet known. */
  const inDoubt: Batch[] = [];
  /** Committed entries whose callers were answered 503 and have no notice yet. */
  const undelivered: AuditRecord[] = [];
  let settling: Promise<void> | undefined;
  /** Whether the last attempt to reach the database failed: drain() then stops waiting for the writer's own notices. */
  let failing = false;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let scheduled = false;
  let pumping = false;
  /** The head once every batch sent so far has committed; undefined when unknown. */
  let expected: Head | undefined;
  let sent = 0;
  /** Settles when the last batch sent has committed or failed. */
  let lastSent: Promise<void> = Promise.resolve();
  let settled: (() => void)[] = [];

  const dbOf = (s: Session | undefined): Sql => s?.sql ?? sql;
  const unavailable = (cause: unknown) =>
    cause instanceof StorageUnavailableError ? cause : new StorageUnavailableError(cause);
  const needsSettling = () => deadSessions.length > 0 || inDoubt.length > 0 || undelivered.length > 0;

  function wake(): void {
    const waiting = settled;
    settled = [];
    waiting.forEach((w) => w());
  }

  function answer(p: Pending, record: AuditRecord): void {
    clearTimeout(p.timer);
    if (p.state === 'refused') undelivered.push(record);
    else {
      p.state = 'answered';
      p.caller?.resolve(record);
    }
  }

  /** A batch rolled back for sure: callers answered 503, the writer's notices queued again. */
  function fail(p: Pending, cause: unknown): void {
    if (p.caller === undefined) {
      p.state = 'queued';
      queue.unshift(p);
      return;
    }
    clearTimeout(p.timer);
    if (p.state === 'sent') p.caller.reject(unavailable(cause));
    p.state = 'refused';
  }

  function expire(p: Pending): void {
    const error = new StorageUnavailableError(new Error(`audit entry not committed within ${deadlineMs} ms`));
    if (p.state === 'queued') {
      queue.splice(queue.indexOf(p), 1);
      p.state = 'refused';
      p.caller?.reject(error);
    } else if (p.state === 'sent') {
      p.caller?.reject(error);
      p.state = 'refused';
      abandon(p.batch?.session);
    }
  }

  /** Gives up a session and every batch on it; the next batches go on a new one once their outcome is known. */
  function abandon(s: Session | undefined): void {
    if (s === undefined || s !== session) return;
    deadSessions.push(s.name);
    for (const batch of flying) {
      if (batch.session !== s) continue;
      batch.abandoned = true;
      flying.delete(batch);
      inDoubt.push(batch);
      for (const p of batch.pendings) {
        if (p.caller === undefined || p.state !== 'sent') continue;
        clearTimeout(p.timer);
        p.caller.reject(new StorageUnavailableError(new Error('the audit batch was abandoned with its connection')));
        p.state = 'refused';
      }
    }
    session = options.openSession?.();
    expected = undefined;
    lastSent = Promise.resolve();
    void s.destroy().catch(() => undefined);
    schedule();
  }

  async function chain(batch: readonly Pending[], after: Head): Promise<Chained> {
    let seq = after.seq;
    let prev = after.hash;
    const rows: object[] = [];
    const records: AuditRecord[] = [];
    for (const { entry, canonical, columns } of batch) {
      seq += 1;
      const hash = entryHash(options.sha256, seq, prev, canonical);
      rows.push({ seq, ...columns, canonical, prev_hash: prev, hash });
      records.push({ seq, prev_hash: prev, hash, entry });
      prev = hash;
    }
    // One JSON parameter per table: far cheaper for the driver than array literals.
    return { rows: JSON.stringify(rows), records, head: { seq, hash: prev } };
  }

  function lineageRows(batch: readonly Pending[]): string | null {
    const lineages = batch.map((p) => p.lineage).filter((l): l is LineageRow => l !== undefined);
    return lineages.length === 0 ? null : JSON.stringify(lineages);
  }

  const appendStatement = (db: Sql, after: Head, head: Head, rows: string, tokens: string | null) =>
    db<{ appended: boolean; head_seq: string | number; head_hash: string }>`
      SELECT appended, head_seq, head_hash FROM baton_audit_append(${after.seq}, ${after.hash}, ${head.seq}, ${head.hash}, ${rows}, ${tokens})`;

  /**
   * Commits a batch: as one statement if it was chained on the head as it still is, else (the head
   * unknown, or moved by another instance or a failed batch) chained again under the head's lock.
   */
  async function commit(
    batch: Batch,
    guess: Head | undefined,
    chained: Chained | undefined,
    previous: Promise<void>,
  ): Promise<Chained> {
    const db = dbOf(batch.session);
    const tokens = lineageRows(batch.pendings);
    if (guess !== undefined && chained !== undefined) {
      let [result] = await appendStatement(db, guess, chained.head, chained.rows, tokens);
      if (result?.appended === false && Number(result.head_seq) < guess.seq) {
        // It reached the head before the batch it follows (another connection): once that one
        // has committed, the batch is still chained right.
        await previous;
        [result] = await appendStatement(db, guess, chained.head, chained.rows, tokens);
      }
      if (result?.appended === true) return chained;
    }
    // Entries keep the order they were appended in: never ahead of the batch before.
    await previous;
    return db.begin(async (tx) => {
      const [row] = await tx<{
        seq: string | number;
        hash: string;
      }>`SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`;
      if (row === undefined) throw new Error('audit head is missing');
      const head = { seq: Number(row.seq), hash: row.hash };
      const locked = await chain(batch.pendings, head);
      batch.attempts.push(locked);
      const [result] = await appendStatement(tx, head, locked.head, locked.rows, tokens);
      if (result?.appended !== true) throw new Error('audit head moved while locked');
      return locked;
    });
  }

  /** Commits a batch and answers its callers; returns the head it leaves, or undefined if unknown. */
  async function write(
    batch: Batch,
    guess: Head | undefined,
    chained: Chained | undefined,
    previous: Promise<void>,
  ): Promise<Head | undefined> {
    const started = performance.now();
    try {
      const committed = await commit(batch, guess, chained, previous);
      if (batch.abandoned) return undefined;
      failing = false;
      options.onBatch?.(batch.pendings.length, performance.now() - started);
      batch.pendings.forEach((p, i) => answer(p, committed.records[i] as AuditRecord));
      return committed.head;
    } catch (cause) {
      if (batch.abandoned) return undefined;
      if (batch.session !== undefined && !answeredByServer(cause)) {
        // The connection went before the answer: the commit may or may not have happened.
        abandon(batch.session);
      } else if (batch.pendings.length > 1 && refusedForItsData(cause)) {
        // One row the database refused must not fail the callers it shares a batch with: each
        // entry goes again alone, in order, before any later batch (which waits for this one).
        flying.delete(batch);
        for (const pending of batch.pendings) {
          const alone: Batch = { pendings: [pending], attempts: [], session: batch.session, abandoned: false };
          flying.add(alone);
          await write(alone, undefined, undefined, Promise.resolve());
          flying.delete(alone);
        }
      } else {
        failing = true;
        batch.pendings.forEach((p) => fail(p, cause));
      }
      return undefined;
    }
  }

  async function send(
    batch: Batch,
    id: number,
    guess: Head | undefined,
    chained: Chained | undefined,
    previous: Promise<void>,
  ): Promise<void> {
    try {
      const head = await write(batch, guess, chained, previous);
      if (id === sent && !batch.abandoned) expected = head;
    } finally {
      flying.delete(batch);
      wake();
      schedule();
    }
  }

  /** The entry that says which committed entries' answers were not delivered, one per tenant. */
  function notices(records: readonly AuditRecord[], revoked: ReadonlySet<string>): Pending[] {
    const byTenant = new Map<string, AuditRecord[]>();
    for (const r of records) byTenant.set(r.entry.tenant, [...(byTenant.get(r.entry.tenant) ?? []), r]);
    return [...byTenant].map(([tenant, rs]) => {
      const jtis = rs.map((r) => r.entry.jti).filter((j): j is string => j !== null && revoked.has(j));
      const entry = auditEntry(
        {
          tenant,
          type: 'audit.undelivered',
          decision: 'applied',
          jti: jtis.length === 1 ? (jtis[0] as string) : null,
          reason: `answer not delivered: the caller was answered 503 before entries ${rs.map((r) => r.seq).join(', ')} committed${jtis.length === 0 ? '' : `; tokens revoked: ${jtis.join(', ')}`}`,
        },
        new Date(options.clock.now()),
      );
      const rows = storedRows(entry, undefined);
      return { entry, canonical: canonicalEntry(entry), ...rows, caller: undefined, state: 'queued' as const };
    });
  }

  /**
   * Settles what abandoned sessions left: ends their server processes (waiting until they are
   * gone, so nothing of theirs commits later), looks their batches up in the chain, revokes the
   * tokens of entries committed for callers answered 503, and queues the notices, ahead of
   * everything else. Nothing changes unless all of it succeeds; it is tried again otherwise.
   */
  async function settle(): Promise<void> {
    const s = session;
    const db = dbOf(s);
    const names = deadSessions.slice();
    const doubtful = inDoubt.slice();
    const late = undelivered.slice();
    const work = async () => {
      if (names.length > 0)
        await db`SELECT pg_terminate_backend(pid, 1000) FROM pg_stat_activity WHERE application_name = ANY(${names})`;
      const lasts = doubtful.flatMap((b) => b.attempts.map((a) => a.head.seq));
      const rows =
        lasts.length === 0
          ? []
          : await db<{ seq: string | number; hash: string }>`SELECT seq, hash FROM audit_log WHERE seq = ANY(${lasts})`;
      const found = new Set(rows.map((r) => `${Number(r.seq)}:${r.hash}`));
      const outcome = doubtful.map((b) => ({
        batch: b,
        committed: b.attempts.find((a) => found.has(`${a.head.seq}:${a.head.hash}`)),
      }));
      const records = [...late];
      for (const { batch, committed } of outcome)
        if (committed !== undefined)
          batch.pendings.forEach((p, i) => p.caller !== undefined && records.push(committed.records[i] as AuditRecord));
      const revoked = new Set<string>();
      for (const r of records) {
        if (r.entry.jti === null || !r.entry.type.startsWith('token.') || r.entry.decision !== 'granted') continue;
        await cascadeRevocation(db, r.entry.tenant, { kind: 'token', jti: r.entry.jti });
        revoked.add(r.entry.jti);
      }
      return { outcome, records, revoked };
    };
    const { outcome, records, revoked } = await settleWithin(work(), deadlineMs, () => abandon(s));
    deadSessions.splice(0, names.length);
    inDoubt.splice(0, doubtful.length);
    undelivered.splice(0, late.length);
    // The writer's own notices in a batch that did not commit go again, in their order.
    const again = outcome
      .filter((o) => o.committed === undefined)
      .flatMap((o) => o.batch.pendings.filter((p) => p.caller === undefined));
    again.forEach((p) => (p.state = 'queued'));
    queue.unshift(...again, ...notices(records, revoked));
    if (records.length > 0) options.onUndelivered?.(records.map((r) => r.seq));
  }

  function startSettling(): Promise<void> {
    settling ??= settle()
      .then(
        () => {
          failing = false;
        },
        () => {
          failing = true;
          // Tried again shortly, with load or without.
          retry ??= setTimeout(
            () => {
              retry = undefined;
              schedule();
            },
            100 + Math.random() * 200,
          );
          retry.unref?.();
        },
      )
      .finally(() => {
        settling = undefined;
        wake();
        schedule();
      });
    return settling;
  }

  async function pump(): Promise<void> {
    scheduled = false;
    pumping = true;
    try {
      while (flying.size < pipelineDepth && queue.length > 0 && settling === undefined) {
        if (needsSettling()) {
          void startSettling();
          break;
        }
        // Spread what is waiting over the free transactions, so the next batch is chained and on
        // its way while this one commits.
        const pendings = queue.splice(0, Math.min(maxBatch, Math.ceil(queue.length / (pipelineDepth - flying.size))));
        const batch: Batch = { pendings, attempts: [], session, abandoned: false };
        for (const p of pendings) {
          p.state = 'sent';
          p.batch = batch;
        }
        flying.add(batch);
        sent += 1;
        const id = sent;
        const guess = expected;
        // A hash that fails here is tried again under the lock, where its failure fails the batch.
        const chained = guess === undefined ? undefined : await chain(pendings, guess).catch(() => undefined);
        if (batch.abandoned) continue;
        if (chained !== undefined) batch.attempts.push(chained);
        // The next batch goes on the head this one will leave, or waits for the lock if unknown.
        expected = chained?.head;
        lastSent = send(batch, id, guess, chained, lastSent);
      }
    } finally {
      pumping = false;
    }
    if (needsSettling() && settling === undefined && queue.length === 0 && flying.size === 0) void startSettling();
    schedule();
  }

  // Let the callers woken by a commit (or appending in the same turn) queue their entries first,
  // so they go together rather than one entry ahead of the rest.
  function schedule(): void {
    if (
      scheduled ||
      pumping ||
      settling !== undefined ||
      flying.size >= pipelineDepth ||
      (queue.length === 0 && !needsSettling())
    )
      return;
    scheduled = true;
    setImmediate(() => void pump());
  }

  return {
    append(event, lineage, request) {
      return inSpan(
        'baton.audit.append',
        { 'baton.tenant': event.tenant, 'baton.audit.type': event.type, 'baton.decision': event.decision },
        () => {
          // Made before the entry is queued: one that cannot be stored is refused to its caller alone.
          const entry = auditEntry(event, new Date(options.clock.now()), request);
          const rows = storedRows(entry, lineage);
          const canonical = canonicalEntry(entry);
          return new Promise<AuditRecord>((resolve, reject) => {
            const pending: Pending = { entry, canonical, ...rows, caller: { resolve, reject }, state: 'queued' };
            pending.timer = setTimeout(() => expire(pending), deadlineMs);
            queue.push(pending);
            schedule();
          });
        },
      );
    },
    async drain() {
      // The writer's own notices are not waited for while the database does not answer.
      const busy = () =>
        flying.size > 0 ||
        settling !== undefined ||
        (queue.length > 0 && !(failing && queue.every((p) => p.caller === undefined)));
      while (busy()) await new Promise<void>((resolve) => settled.push(resolve));
    },
    async ready() {
      if (needsSettling()) await settleWithin(startSettling(), probeMs, () => undefined);
      if (needsSettling())
        throw new StorageUnavailableError(new Error('audit entries of a lost connection are not settled yet'));
      const s = session;
      const probe = dbOf(s)
        .begin(async (tx) => {
          await tx`SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE`;
          throw probeDone;
        })
        .catch((error: unknown) => {
          if (error !== probeDone) throw error;
        });
      await settleWithin(probe, probeMs, () => abandon(s));
    },
    async close() {
      clearTimeout(retry);
      await session?.destroy();
    },
  };
}
