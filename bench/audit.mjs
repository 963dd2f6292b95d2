// Benchmark for Baton's audit log on PostgreSQL; see bench/README.md ("Audit log benchmark").
//
//   npm run build && node bench/audit.mjs [--entries 1000000] [--appends 50000] [--quick]
//
// Against a fresh database it measures, in this order:
//   1. appends/s through the group-commit writer (createAuditWriter), with a fixed number of
//      appends in flight, and each append's latency until its commit;
//   2. the log brought to --entries with bulk inserts chained by the same formula, then chain
//      verification: createAuditReader().verify() over the whole log, and the offline verifier
//      (verifyExport) over an export built from the rows;
//   3. GET /audit/actions/{id} against Baton started as a child process, sequentially and with a
//      few connections, for random existing action ids.
// It prints one markdown table, drops its database and exits non-zero on any error.

// The repo's eslint config declares no runtime globals (it is written for the TypeScript in src/);
// everything importable is imported below.

import postgres from 'postgres';
import { Buffer } from 'node:buffer';
import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { Agent, request as httpRequest } from 'node:http';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { URLSearchParams } from 'node:url';
import { createAuditReader } from '../dist/adapters/db/audit-reader.js';
import { createAuditWriter } from '../dist/adapters/db/audit-writer.js';
import { migrate } from '../dist/adapters/db/migrations.js';
import { openPostgres } from '../dist/adapters/db/postgres.js';
import { sha256Hex } from '../dist/adapters/node-hash.js';
import { generateSigningKeys, importSigningKeys } from '../dist/adapters/signing-keys.js';
import { verifyExport } from '../dist/cli/audit-verify.js';
import { demoSecret } from '../dist/cli/demo-kit.js';
import { auditEntry, canonicalEntry, entryHash } from '../dist/core/audit/chain.js';
import { signCheckpoint } from '../dist/core/audit/checkpoint.js';
import { basicAuthorization, benchDatabase, cleanups, freePort, host, idlePercent, logTail, print, processMemory, progress, readCommandLine, runCleanups, spawnBaton } from './harness.mjs';

const root = join(import.meta.dirname, '..');
const database = benchDatabase('baton_bench_audit');

const targets = { appendsPerSecond: 20_000, verifyPerSecond: 200_000, trailP99Ms: 5 };
const readyTimeoutMs = 60_000;
const stopTimeoutMs = 5_000;
const requestTimeoutMs = 10_000;
/** Rows per bulk INSERT (one transaction each) while filling the log. */
const fillBatch = 10_000;
/** Action ids kept (uniformly, by reservoir sampling) to pick GET targets from. */
const actionSampleSize = 20_000;
/** Decisions per delegated token in the synthetic workload (see makeWorkload). */
const decisionsPerToken = 8;

const usage = `usage: node bench/audit.mjs [options]      (after npm run build)

  --entries N       total entries in the log for verification and GET /audit/actions (default 1000000)
  --appends N       appends measured through the group-commit writer (default 50000)
  --in-flight N     appends kept in flight, each awaiting its commit (default 512)
  --requests N      GET /audit/actions/{id} requests per run (default 2000)
  --connections N   connections of the concurrent GET run (default 8; the other run uses 1)
  --export N        entries in the export file the offline verifier streams (default min(entries, 100000))
  --settle SECONDS  longest wait, before each measured phase, for the CPUs to be 90% idle (default 30; 0 with --quick)
  --explain         print EXPLAIN ANALYZE of actionTrail's queries even if the p99 target is met
  --quick           smoke run: 20000 entries, 5000 appends, 200 requests (explicit options win)
  --json FILE       also write the main figures to FILE as JSON (for bench/run.mjs)
`;

/** The command line, read once (bench/harness.mjs readCommandLine: --help, exit 2 on a bad option). */
function parseOptions() {
  const options = {
    entries: { type: 'string' },
    appends: { type: 'string' },
    'in-flight': { type: 'string' },
    requests: { type: 'string' },
    connections: { type: 'string' },
    export: { type: 'string' },
    settle: { type: 'string' },
    explain: { type: 'boolean', default: false },
    json: { type: 'string' },
    quick: { type: 'boolean', default: false },
  };
  return readCommandLine(usage, options, (values) => {
    const integer = (name, fallback, min, max) => {
      const text = values[name];
      if (text === undefined) return fallback;
      const n = Number(text);
      if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(text)})`);
      return n;
    };
    const quick = values.quick;
    const appends = integer('appends', quick ? 5_000 : 50_000, 1, 10_000_000);
    const entries = integer('entries', quick ? 20_000 : 1_000_000, 1, 50_000_000);
    if (entries < appends) throw new Error(`--entries (${entries}) must be at least --appends (${appends}): the appended entries are part of the log`);
    return {
      quick,
      appends,
      entries,
      inFlight: integer('in-flight', 512, 1, 10_000),
      requests: integer('requests', quick ? 200 : 2_000, 1, 1_000_000),
      connections: integer('connections', 8, 1, 256),
      // The export is a file that verifyExport streams line by line, as `baton audit verify` does.
      exportEntries: integer('export', Math.min(entries, 100_000), 1, entries),
      settleSeconds: integer('settle', quick ? 0 : 30, 0, 600),
      explain: values.explain,
      json: values.json,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Measuring helpers.

/** Nearest-rank percentile of sorted values. */
const percentile = (sorted, q) => (sorted.length === 0 ? NaN : sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]);
const sortedCopy = (values) => Float64Array.from(values).sort();

/** A PostgreSQL backend serving a client of another database (someone else's tests, say). */
function otherDatabaseBackend(pid) {
  try {
    const title = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const backend = /^postgres: [^:]+: \S+ (\S+) (?:[\d.:a-f]+\(\d+\)|\[local\])/.exec(title);
    return backend !== null && backend[1] !== database.name;
  } catch {
    return true;
  }
}

/** CPU time (ms) of this process, of PostgreSQL (its background processes and this database's backends) and of one other pid, from /proc (Linux). */
function cpuTimes(otherPid) {
  const tick = 10; // USER_HZ is 100 on Linux: one tick is 10 ms
  const usage = process.cpuUsage();
  let postgresMs = 0;
  let otherMs = 0;
  let available = true;
  try {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      let stat;
      try {
        stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      } catch {
        continue; // gone meanwhile
      }
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      const ms = (Number(fields[11]) + Number(fields[12])) * tick; // utime, stime
      if (comm === 'postgres' && !otherDatabaseBackend(name)) postgresMs += ms;
      if (otherPid !== undefined && Number(name) === otherPid) otherMs += ms;
    }
  } catch {
    available = false;
  }
  const machineBusyMs = cpus().reduce((sum, cpu) => sum + cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq, 0);
  return { at: performance.now(), selfMs: (usage.user + usage.system) / 1000, postgresMs, otherMs, machineBusyMs, available };
}

/** Average CPU use between two cpuTimes() snapshots, in % of one core. */
function cpuBetween(before, after, otherName) {
  const wall = after.at - before.at;
  const pct = (ms) => `${Math.round((100 * ms) / wall)}%`;
  const parts = [`bench process ${pct(after.selfMs - before.selfMs)}`];
  if (before.available && after.available) {
    parts.push(`PostgreSQL ${pct(after.postgresMs - before.postgresMs)}`);
    if (otherName !== undefined) parts.push(`${otherName} ${pct(after.otherMs - before.otherMs)}`);
    // Whatever else ran on the machine meanwhile (other users' tests, say) skews the figures.
    const ours = after.selfMs - before.selfMs + after.postgresMs - before.postgresMs + after.otherMs - before.otherMs;
    parts.push(`everything else ${pct(Math.max(0, after.machineBusyMs - before.machineBusyMs - ours))}`);
  }
  return `CPU (of one core): ${parts.join(', ')}`;
}

/** How long each measured phase may wait for the machine to be quiet (--settle). */
let settleMs = 0;

/**
 * Waits, at most `settleMs`, until two seconds in a row leave the CPUs at least 90% idle: a phase
 * then does not start in the middle of someone else's burst (tests, another benchmark). The
 * CPU share of everything else during the phase is reported with it either way.
 */
async function settle(phase) {
  const deadline = Date.now() + settleMs;
  let quiet = 0;
  let idle = NaN;
  while (Date.now() < deadline) {
    idle = await idlePercent();
    quiet = idle >= 90 ? quiet + 1 : 0;
    if (quiet >= 2) return;
  }
  if (settleMs > 0) progress(`${phase}: the machine is busy (${idle}% idle); measuring anyway`);
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const ms = (v) => (Number.isNaN(v) ? '-' : v.toFixed(2));
const seconds = (msValue) => `${(msValue / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------
// A synthetic but realistic workload: the demo's delegation chains, many of them.
//
// One session: the orchestrator exchanges a user's token (hop 1, tokens row with no parent), the
// payments sub-agent exchanges that (hop 2, parent = hop 1), then the payments API asks for
// `decisionsPerToken` decisions with the hop-2 token, each with its own action id. Every 5th
// session is globex's (one hop, ledger decisions); every 7th has a refused exchange as well; every
// 9th decision is a deny; half the chains carry a payment_initiation authorization detail. So each
// acme decision's trail is three entries: hop 1, hop 2 and the decision itself.

/** 22-character random ids like Baton's (16 random bytes, base64url), from a pool. */
function idSource() {
  let pool = Buffer.alloc(0);
  let offset = 0;
  return () => {
    if (offset + 16 > pool.length) {
      pool = randomBytes(16 * 4096);
      offset = 0;
    }
    offset += 16;
    return pool.toString('base64url', offset - 16, offset);
  };
}

function makeWorkload() {
  const newId = idSource();
  const tokenLifetimeMs = 300_000;
  let session = 0;
  let decisionCount = 0;
  const paymentDetail = (n) => ({
    type: 'payment_initiation',
    actions: ['initiate', 'status'],
    instructedAmount: { currency: 'EUR', amount: `${(n % 100) + 1}.00` },
    creditorAccount: { iban: 'DE89370400440532013000' },
  });

  function* acmeSession(user, withDetails, now) {
    const t1 = newId();
    const t2 = newId();
    const details = withDetails ? [paymentDetail(session)] : [];
    const expiresAt = new Date(now + tokenLifetimeMs);
    yield {
      event: {
        tenant: 'acme', type: 'token.exchange', decision: 'granted', jti: t1, parent_jti: null, root_grant: t1, user,
        actor_chain: ['orchestrator'], client: 'agent-platform', audience: ['https://payments.example'],
        scope: ['payments:read', 'payments:transfer'], authorization_details: details, policy_ids: ['delegate-within-tenant'], request_id: randomUUID(),
      },
      lineage: { tenant: 'acme', jti: t1, parentJti: null, rootGrant: t1, subject: user, actor: 'orchestrator', clientId: 'agent-platform', expiresAt },
    };
    yield {
      event: {
        tenant: 'acme', type: 'token.exchange', decision: 'granted', jti: t2, parent_jti: t1, root_grant: t1, user,
        actor_chain: ['payments-subagent', 'orchestrator'], client: 'agent-platform', audience: ['https://payments.example'],
        scope: ['payments:transfer'], authorization_details: details, policy_ids: ['delegate-within-tenant'], request_id: randomUUID(),
      },
      lineage: { tenant: 'acme', jti: t2, parentJti: t1, rootGrant: t1, subject: user, actor: 'payments-subagent', clientId: 'agent-platform', expiresAt },
    };
    for (let i = 0; i < decisionsPerToken; i += 1) {
      decisionCount += 1;
      const allow = decisionCount % 9 !== 0;
      const actionId = newId();
      yield {
        actionId,
        event: {
          tenant: 'acme', type: 'decision', decision: allow ? 'allow' : 'deny', action_id: actionId, jti: t2, user,
          actor_chain: ['payments-subagent', 'orchestrator'], client: 'payments', audience: ['https://payments.example'], scope: ['payments:transfer'],
          authorization_details: details.length > 0 ? [details[0]] : [], policy_ids: allow ? ['transfer-up-to-100'] : [],
          reason: `payments:transfer on Account::acct-${(decisionCount * 7919) % 100_000}`, request_id: randomUUID(), trace_id: randomUUID().replaceAll('-', ''),
        },
      };
    }
  }

  function* globexSession(user, now) {
    const t1 = newId();
    yield {
      event: {
        tenant: 'globex', type: 'token.exchange', decision: 'granted', jti: t1, parent_jti: null, root_grant: t1, user,
        actor_chain: ['globex-assistant'], client: 'globex-platform', audience: ['https://ledger.globex.example'], scope: ['ledger:read'],
        policy_ids: ['delegate-within-tenant'], request_id: randomUUID(),
      },
      lineage: { tenant: 'globex', jti: t1, parentJti: null, rootGrant: t1, subject: user, actor: 'globex-assistant', clientId: 'globex-platform', expiresAt: new Date(now + tokenLifetimeMs) },
    };
    for (let i = 0; i < decisionsPerToken; i += 1) {
      yield {
        event: {
          tenant: 'globex', type: 'decision', decision: 'allow', action_id: newId(), jti: t1, user, actor_chain: ['globex-assistant'], client: 'ledger',
          audience: ['https://ledger.globex.example'], scope: ['ledger:read'], policy_ids: ['read-ledger'], reason: `ledger:read on Ledger::l-${i}`, request_id: randomUUID(),
        },
      };
    }
  }

  return (function* () {
    for (;;) {
      session += 1;
      const now = Date.now();
      const user = `user-${String((session * 104_729) % 50_000).padStart(5, '0')}`;
      if (session % 7 === 0) {
        yield {
          event: {
            tenant: 'acme', type: 'token.exchange', decision: 'refused', client: 'agent-platform', user,
            reason: 'invalid_grant: subject_token has expired', request_id: randomUUID(),
          },
        };
      }
      if (session % 5 === 0) yield* globexSession(user, now);
      else yield* acmeSession(user, session % 2 === 0, now);
    }
  })();
}

/** Keeps a uniform sample of the acme action ids seen (reservoir sampling). */
function actionSampler(size) {
  const sample = [];
  let seen = 0;
  return {
    sample,
    offer(actionId) {
      seen += 1;
      if (sample.length < size) sample.push(actionId);
      else {
        const j = Math.floor(Math.random() * seen);
        if (j < size) sample[j] = actionId;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// 1. Appends through the group-commit writer.

async function measureAppends(sql, workload, sampler, options) {
  const batches = [];
  const writer = createAuditWriter(sql, {
    sha256: sha256Hex,
    clock: { now: () => Date.now() },
    onBatch: (size, duration) => batches.push({ size, duration }),
  });
  const run = async (count) => {
    const latencies = new Float64Array(count);
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const i = next;
        next += 1;
        const { value } = workload.next();
        if (value.actionId !== undefined) sampler.offer(value.actionId);
        const started = performance.now();
        await writer.append(value.event, value.lineage);
        latencies[i] = performance.now() - started;
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: Math.min(options.inFlight, count) }, worker));
    await writer.drain();
    return { elapsed: performance.now() - started, latencies };
  };

  const warmup = Math.min(2_000, Math.ceil(options.appends / 10));
  progress(`appends: warm-up, ${fmt(warmup)} appends`);
  await run(warmup);
  batches.length = 0;
  await settle('appends');
  progress(`appends: ${fmt(options.appends)} appends, ${options.inFlight} in flight`);
  const before = cpuTimes();
  const { elapsed, latencies } = await run(options.appends);
  const cpu = cpuBetween(before, cpuTimes());
  const sorted = sortedCopy(latencies);
  const sizes = sortedCopy(batches.map((b) => b.size));
  const durations = sortedCopy(batches.map((b) => b.duration));
  return {
    perSecond: (options.appends * 1000) / elapsed,
    elapsed,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    batches: batches.length,
    batchSizes: { p10: percentile(sizes, 0.1), p50: percentile(sizes, 0.5), p90: percentile(sizes, 0.9), mean: options.appends / Math.max(1, batches.length) },
    batchMs: { p50: percentile(durations, 0.5), p99: percentile(durations, 0.99) },
    cpu,
    warmup,
  };
}

// ---------------------------------------------------------------------------------------------
// 2a. Filling the log: rows chained in JS with Baton's own functions, bulk-inserted.

/** audit_log's columns as the writer (createAuditWriter) fills them: SQL type, value. */
const auditColumns = {
  seq: ['bigint', (r) => r.seq],
  tenant: ['text', (r) => r.entry.tenant],
  type: ['text', (r) => r.entry.type],
  action_id: ['text', (r) => r.entry.action_id],
  jti: ['text', (r) => r.entry.jti],
  root_grant: ['text', (r) => r.entry.root_grant],
  recorded_at: ['timestamptz', (r) => r.recordedAt],
  canonical: ['text', (r) => r.canonical],
  prev_hash: ['text', (r) => r.prevHash],
  hash: ['text', (r) => r.hash],
};

async function fillLog(raw, workload, sampler, total) {
  const [head] = await raw`SELECT seq, hash FROM audit_head WHERE id = 1`;
  let seq = Number(head.seq);
  let prev = head.hash;
  const toInsert = total - seq;
  if (toInsert <= 0) return { inserted: 0, elapsed: 0, vacuum: 0, cpu: '' };
  progress(`fill: ${fmt(toInsert)} entries in batches of ${fmt(fillBatch)} (from seq ${seq + 1})`);

  // The columns are read from the table, so a column the writer fills and this bench does not know
  // stops the run instead of being left empty.
  const present = (await raw`SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'audit_log' ORDER BY ordinal_position`).map((r) => r.column_name);
  const unknown = present.filter((name) => !(name in auditColumns));
  if (unknown.length > 0) throw new Error(`audit_log has columns this bench does not fill: ${unknown.join(', ')}; update auditColumns in bench/audit.mjs`);
  const columns = present.map((name) => [name, ...auditColumns[name]]);
  const insertAudit = `
    INSERT INTO audit_log (${present.join(', ')})
    SELECT ${present.join(', ')} FROM json_to_recordset($1::text::json) AS r(${columns.map(([name, type]) => `${name} ${type}`).join(', ')})`;

  // Each batch goes to PostgreSQL as two JSON parameters (json_to_recordset): the writer's
  // INSERT ... unnest(text[]) makes postgres.js escape every quote of every canonical entry into
  // an array literal, which costs more CPU here than canonicalizing and hashing the entry.
  const build = (n) => {
    const time = new Date();
    const iso = time.toISOString();
    const rows = [];
    const tokens = [];
    for (let i = 0; i < n; i += 1) {
      const { value } = workload.next();
      if (value.actionId !== undefined) sampler.offer(value.actionId);
      seq += 1;
      const entry = auditEntry(value.event, time);
      const canonical = canonicalEntry(entry);
      const hash = entryHash(sha256Hex, seq, prev, canonical);
      const row = {};
      for (const [name, , value] of columns) row[name] = value({ seq, entry, recordedAt: iso, canonical, prevHash: prev, hash });
      rows.push(row);
      prev = hash;
      const l = value.lineage;
      if (l !== undefined) {
        tokens.push({ tenant: l.tenant, jti: l.jti, parent_jti: l.parentJti, root_grant: l.rootGrant, subject: l.subject, actor: l.actor, client_id: l.clientId, expires_at: l.expiresAt.toISOString() });
      }
    }
    return { count: n, rows: JSON.stringify(rows), tokens: tokens.length === 0 ? undefined : JSON.stringify(tokens), lastSeq: seq, lastHash: prev };
  };
  // One transaction per batch, the head moved with it, so the chain is whole after every commit.
  const insert = ({ count, rows, tokens, lastSeq, lastHash }) =>
    raw.begin(async (tx) => {
      if (tokens !== undefined) {
        await tx`
          INSERT INTO tokens (tenant, jti, parent_jti, root_grant, subject, actor, client_id, expires_at)
          SELECT tenant, jti, parent_jti, root_grant, subject, actor, client_id, expires_at FROM json_to_recordset(${tokens}::text::json)
            AS t(tenant text, jti text, parent_jti text, root_grant text, subject text, actor text, client_id text, expires_at timestamptz)`;
      }
      await tx.unsafe(insertAudit, [rows]);
      const [moved] = await tx`UPDATE audit_head SET seq = ${lastSeq}, hash = ${lastHash} WHERE id = 1 AND seq = ${lastSeq - count} RETURNING seq`;
      if (moved === undefined) throw new Error('audit head moved during the fill');
    });

  const before = cpuTimes();
  const started = performance.now();
  let inFlight = Promise.resolve();
  let done = 0;
  let reported = started;
  // The next batch is built (hashing, canonical JSON) while the previous one is being inserted.
  while (done < toInsert) {
    const batch = build(Math.min(fillBatch, toInsert - done));
    await inFlight;
    inFlight = insert(batch);
    done += batch.count;
    if (performance.now() - reported > 10_000) {
      reported = performance.now();
      progress(`fill: ${fmt(done)} of ${fmt(toInsert)}`);
    }
  }
  await inFlight;
  const elapsed = performance.now() - started;
  const cpu = cpuBetween(before, cpuTimes());
  // What autovacuum would do after a bulk load: statistics for the planner, hint bits, the
  // visibility map. Then a checkpoint, so the gigabyte just written is not being flushed (spread
  // over minutes by checkpoint_completion_target) while the later phases are measured.
  progress('fill: VACUUM (ANALYZE), CHECKPOINT');
  const vacuumStarted = performance.now();
  await raw.unsafe('VACUUM (ANALYZE) audit_log, tokens, audit_head');
  await raw.unsafe('CHECKPOINT');
  return { inserted: toInsert, elapsed, vacuum: performance.now() - vacuumStarted, cpu };
}

// ---------------------------------------------------------------------------------------------
// 2b. Verification, in the database (reader.verify) and offline (verifyExport).

async function measureVerify(reader) {
  const head = await reader.head();
  await settle('verify');
  progress(`verify: reader.verify(1, ${head.seq})`);
  const before = cpuTimes();
  const started = performance.now();
  const verdict = await reader.verify(1, head.seq);
  const elapsed = performance.now() - started;
  const cpu = cpuBetween(before, cpuTimes());
  if (!verdict.valid || verdict.entries !== head.seq) throw new Error(`the log does not verify: ${JSON.stringify(verdict)}`);
  return { entries: verdict.entries, elapsed, perSecond: (verdict.entries * 1000) / elapsed, cpu };
}

async function measureOfflineVerify(raw, keys, issuer, count, workDir) {
  progress(`offline verify: writing an export of entries 1–${fmt(count)}`);
  const file = join(workDir, 'export.jsonl');
  const out = createWriteStream(file, { encoding: 'utf8' });
  let written = 0;
  let lastHash;
  for (let from = 1; from <= count; from += 10_000) {
    const rows = await raw`SELECT seq, prev_hash, hash, canonical FROM audit_log WHERE seq >= ${from} AND seq <= ${Math.min(count, from + 9_999)} ORDER BY seq`;
    const text = rows.map((r) => `${JSON.stringify({ seq: Number(r.seq), prev_hash: r.prev_hash, hash: r.hash, canonical: r.canonical })}\n`).join('');
    if (!out.write(text)) await once(out, 'drain');
    written += rows.length;
    lastHash = rows.at(-1)?.hash;
  }
  if (written !== count) throw new Error(`export: expected ${count} lines, got ${written}`);
  // As GET /audit/entries does, checkpoints follow the entries; this one names the last exported entry.
  out.end(`${JSON.stringify({ checkpoint: await signCheckpoint(keys, issuer, { seq: count, hash: lastHash }, new Date()) })}\n`);
  await once(out, 'finish');
  const megabytes = (await stat(file)).size / 1_048_576;
  await settle('offline verify');
  progress(`offline verify: verifyExport streaming ${fmt(count)} lines (${fmt(megabytes)} MiB)`);
  const before = cpuTimes();
  const started = performance.now();
  // Read as `baton audit verify` reads it: a UTF-8 file stream, checked line by line.
  const verdict = await verifyExport(createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 }), keys.publicJwks, sha256Hex);
  const elapsed = performance.now() - started;
  const cpu = cpuBetween(before, cpuTimes());
  await rm(file, { force: true });
  if (!verdict.ok || !verdict.message.startsWith(`${count} entries valid`)) throw new Error(`the export does not verify: ${verdict.message}`);
  return { entries: count, elapsed, perSecond: (count * 1000) / elapsed, megabytes, cpu, message: verdict.message };
}

// ---------------------------------------------------------------------------------------------
// 3. Baton as a child process, and GET /audit/actions/{id}.

/** Starts `node dist/node/main.js` on the bench database and resolves once GET /readyz answers 200. */
async function startBaton(port, privateJwks, auditJwks, workDir) {
  const settings = { DATABASE_URL: database.url, BATON_SIGNING_KEYS: JSON.stringify(privateJwks), BATON_AUDIT_KEYS: JSON.stringify(auditJwks) };
  const baton = await spawnBaton({ root, port, settings, log: join(workDir, 'baton.log'), readyTimeoutMs, stopTimeoutMs });
  return { pid: baton.pid, log: baton.log, exited: baton.exited, alive: baton.alive };
}

/** One HTTP/1.1 request on loopback; `ms` runs from the call until the whole body is in. */
function httpCall({ port, agent, path, method = 'GET', headers = {}, body }) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = httpRequest({ host, port, path, method, agent, headers, timeout: requestTimeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${method} ${path} within ${requestTimeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function auditorToken(port) {
  const authorization = basicAuthorization('ops-console', demoSecret('ops-console'));
  const response = await httpCall({
    port,
    agent: new Agent({ keepAlive: false }),
    path: '/oauth2/token',
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'baton:audit' }).toString(),
  });
  if (response.status !== 200) throw new Error(`client_credentials for ops-console refused (HTTP ${response.status}): ${response.text}`);
  return JSON.parse(response.text).access_token;
}

/**
 * Sends `count` GET /audit/actions/{id} on `connections` keep-alive connections, each connection
 * sending its next request when the previous answer is in. Every answer must be 200 with a
 * verified trail that ends with the action's decision.
 */
async function getTrails(port, token, pick, count, connections, baton) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const headers = { authorization: `Bearer ${token}` };
  const latencies = new Float64Array(count);
  const trailLengths = new Map();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next;
      next += 1;
      const actionId = pick();
      let response;
      try {
        response = await httpCall({ port, agent, path: `/audit/actions/${encodeURIComponent(actionId)}`, headers });
      } catch (error) {
        throw new Error(`GET /audit/actions/${actionId}: ${error instanceof Error ? error.message : String(error)}${baton.alive() ? '' : ' (Baton has exited)'}`);
      }
      if (response.status !== 200) throw new Error(`GET /audit/actions/${actionId}: HTTP ${response.status}: ${response.text.slice(0, 500)}\nBaton's log (warnings and errors):\n${logTail(baton.log, { skipInfo: true })}`);
      const body = JSON.parse(response.text);
      const last = body.entries.at(-1);
      if (body.action_id !== actionId || last?.entry.action_id !== actionId || !body.entries.every((e) => e.verified === true)) {
        throw new Error(`GET /audit/actions/${actionId}: unexpected trail ${response.text.slice(0, 500)}`);
      }
      trailLengths.set(body.entries.length, (trailLengths.get(body.entries.length) ?? 0) + 1);
      latencies[i] = response.ms;
    }
  };
  const before = cpuTimes(baton.pid);
  const started = performance.now();
  try {
    await Promise.all(Array.from({ length: connections }, worker));
  } finally {
    agent.destroy();
  }
  const elapsed = performance.now() - started;
  const cpu = cpuBetween(before, cpuTimes(baton.pid), 'Baton');
  const sorted = sortedCopy(latencies);
  return { count, connections, perSecond: (count * 1000) / elapsed, p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1], trailLengths, cpu };
}

/** actionTrail() called in this process: the database part of the endpoint, without HTTP and authentication. */
async function measureTrailQueries(reader, pick, count) {
  const latencies = new Float64Array(count);
  await settle('actionTrail in process');
  const before = cpuTimes();
  for (let i = 0; i < count; i += 1) {
    const started = performance.now();
    const trail = await reader.actionTrail('acme', pick());
    latencies[i] = performance.now() - started;
    if (trail.entries.length === 0) throw new Error('actionTrail found no entries for a sampled action id');
  }
  const cpu = cpuBetween(before, cpuTimes());
  const sorted = sortedCopy(latencies);
  return { count, p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1], cpu };
}

/** A Sql client that remembers every statement it is given, to EXPLAIN them exactly as sent. */
function recordingSql(sql, log) {
  const tag = (strings, ...values) => {
    log.push({ strings, values });
    return sql(strings, ...values);
  };
  tag.script = (text) => sql.script(text);
  tag.begin = (fn) => sql.begin(fn);
  return tag;
}

/**
 * EXPLAIN ANALYZE of the statements actionTrail runs for one action, recorded from the reader
 * itself (so they follow src/), with the generic plan (what a prepared statement may switch to
 * after five runs) and with a custom plan.
 */
async function explainTrail(sql, raw, actionId) {
  const log = [];
  await createAuditReader(recordingSql(sql, log), sha256Hex).actionTrail('acme', actionId);
  const out = [];
  for (const mode of ['force_generic_plan', 'force_custom_plan']) {
    await raw.begin(async (tx) => {
      await tx.unsafe(`SET LOCAL plan_cache_mode = ${mode}`);
      for (const [i, { strings, values }] of log.entries()) {
        const text = strings[0] + strings.slice(1).map((part, k) => `$${k + 1}${part}`).join('');
        const plan = await tx.unsafe(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, values);
        const summary = text.replace(/\s+/g, ' ').trim();
        out.push(`-- query ${i + 1} of ${log.length} (${mode.replace('force_', '').replaceAll('_', ' ')}): ${summary.length > 160 ? `${summary.slice(0, 160)}…` : summary}\n${plan.map((r) => r['QUERY PLAN']).join('\n')}`);
      }
    });
  }
  return out.join('\n\n');
}

// ---------------------------------------------------------------------------------------------

function table(rows) {
  return [
    '| measurement | result | target | details |',
    '| --- | ---: | ---: | --- |',
    ...rows.map((r) => `| ${r.name} | ${r.result} | ${r.target ?? '-'} | ${r.details ?? ''} |`),
  ].join('\n');
}

const met = (ok) => (ok ? 'met' : '**missed**');

async function main() {
  const options = parseOptions();
  // A bound on the whole run in case something hangs: generous per entry, append and request.
  const budgetMs = 180_000 + options.entries * 0.5 + options.appends * 2 + options.requests * 2 * 40 + 2_000 * 40 + 7 * (options.settleSeconds * 1000 + 2_000);
  setTimeout(() => {
    progress(`still running after ${Math.round(budgetMs / 1000)} s: giving up`);
    void runCleanups().finally(() => process.exit(1));
  }, budgetMs).unref();

  settleMs = options.settleSeconds * 1000;
  const idleAtStart = await idlePercent();
  const workDir = await mkdtemp(join(tmpdir(), 'baton-bench-audit-'));
  cleanups.push(() => rm(workDir, { recursive: true, force: true }));
  const rows = [];
  const notes = [];
  // The figures bench/run.mjs reads (--json); absent ones were not measured.
  const json = { entries: options.entries };

  try {
    progress(`creating database ${database.name}`);
    await database.create();
    const db = await openPostgres(database.url);
    cleanups.push(() => db.close());
    const raw = postgres(database.url, { max: 2, connect_timeout: 10, onnotice: () => {} });
    cleanups.push(() => raw.end({ timeout: 5 }));
    await migrate(db.sql);

    const workload = makeWorkload();
    const sampler = actionSampler(actionSampleSize);

    // 1. Appends.
    const appends = await measureAppends(db.sql, workload, sampler, options);
    json.appendsPerSecond = appends.perSecond;
    rows.push({
      name: `appends/s (createAuditWriter, ${options.inFlight} in flight)`,
      result: `${fmt(appends.perSecond)}/s`,
      target: `≥ ${fmt(targets.appendsPerSecond)}/s: ${met(appends.perSecond >= targets.appendsPerSecond)}`,
      details: `${fmt(options.appends)} appends in ${seconds(appends.elapsed)} after ${fmt(appends.warmup)} warm-up; ${fmt(appends.batches)} transactions, entries per transaction p10/p50/p90 ${appends.batchSizes.p10}/${appends.batchSizes.p50}/${appends.batchSizes.p90}, transaction p50/p99 ${ms(appends.batchMs.p50)}/${ms(appends.batchMs.p99)} ms; ${appends.cpu}`,
    });
    rows.push({ name: 'append latency p50 / p99 (until committed)', result: `${ms(appends.p50)} / ${ms(appends.p99)} ms`, details: `closed loop: ${options.inFlight} appends wait in the queue or the transaction` });

    // 2. The log at full size, then verification.
    const fill = await fillLog(raw, workload, sampler, options.entries);
    rows.push({
      name: 'fill to full size (bulk INSERT ... json_to_recordset, chained in JS)',
      result: fill.inserted === 0 ? '-' : `${fmt((fill.inserted * 1000) / fill.elapsed)}/s`,
      details: fill.inserted === 0 ? 'nothing to add' : `${fmt(fill.inserted)} entries in ${seconds(fill.elapsed)}, then VACUUM (ANALYZE) and CHECKPOINT ${seconds(fill.vacuum)}; ${fill.cpu}`,
    });

    const verify = await measureVerify(createAuditReader(db.sql, sha256Hex));
    Object.assign(json, { verifyPerSecond: verify.perSecond, verifiedEntries: verify.entries });
    rows.push({
      name: `verification, reader.verify(1, head) over ${fmt(verify.entries)} entries`,
      result: `${fmt(verify.perSecond)}/s`,
      target: `≥ ${fmt(targets.verifyPerSecond)}/s: ${met(verify.perSecond >= targets.verifyPerSecond)}`,
      details: `${seconds(verify.elapsed)}; ${verify.cpu}`,
    });
    const privateJwks = await generateSigningKeys('EdDSA');
    const auditJwks = await generateSigningKeys('EdDSA');
    const auditKeys = await importSigningKeys(auditJwks);
    const port = await freePort();
    const issuer = `http://localhost:${port}`;
    const offline = await measureOfflineVerify(raw, auditKeys, issuer, options.exportEntries, workDir);
    rows.push({
      name: `offline verifyExport over an export of ${fmt(offline.entries)} entries`,
      result: `${fmt(offline.perSecond)}/s`,
      details: `${seconds(offline.elapsed)} for a ${fmt(offline.megabytes)} MiB file of JSON lines + 1 checkpoint, streamed (re-canonicalizes every entry); ${offline.cpu}`,
    });

    // 3. GET /audit/actions/{id}. A checkpoint of the head, signed with Baton's audit key, stands for the
    // checkpoints Baton would have signed every minute while the log grew: without it Baton's
    // first checkpoint would re-verify the whole log during the measurement.
    const reader = createAuditReader(db.sql, sha256Hex);
    const head = await reader.head();
    await reader.saveCheckpoint(head.seq, head.hash, await signCheckpoint(auditKeys, issuer, head, new Date()), new Date());
    const ids = sampler.sample;
    const pick = () => ids[Math.floor(Math.random() * ids.length)];
    const inProcess = await measureTrailQueries(reader, pick, Math.min(1_000, options.requests));

    progress(`starting Baton on port ${port}`);
    const baton = await startBaton(port, privateJwks, auditJwks, workDir);
    const token = await auditorToken(port);
    const warmup = Math.min(500, options.requests);
    progress(`GET /audit/actions/{id}: warm-up, ${warmup} requests`);
    await getTrails(port, token, pick, warmup, options.connections, baton);
    await settle('GET, 1 connection');
    progress(`GET /audit/actions/{id}: ${fmt(options.requests)} requests, 1 connection`);
    const sequential = await getTrails(port, token, pick, options.requests, 1, baton);
    await settle(`GET, ${options.connections} connections`);
    progress(`GET /audit/actions/{id}: ${fmt(options.requests)} requests, ${options.connections} connections`);
    const concurrent = await getTrails(port, token, pick, options.requests, options.connections, baton);
    const total = (await reader.head()).seq;
    Object.assign(json, { trailEntries: total, trailP50Ms: sequential.p50, trailP99Ms: sequential.p99, trailConnections: options.connections, trailConcurrentP99Ms: concurrent.p99, batonRssMiB: processMemory(baton.pid)?.rss });
    for (const run of [sequential, concurrent]) {
      const shapes = [...run.trailLengths].sort((a, b) => a[0] - b[0]).map(([length, n]) => `${fmt(n)}× ${length}`).join(', ');
      rows.push({
        name: `GET /audit/actions/{id} p50 / p99, ${run.connections === 1 ? '1 connection (sequential)' : `${run.connections} connections`}, ${fmt(total)} entries`,
        result: `${ms(run.p50)} / ${ms(run.p99)} ms`,
        target: `p99 ≤ ${targets.trailP99Ms} ms: ${met(run.p99 <= targets.trailP99Ms)}`,
        details: `${fmt(run.count)} requests, ${fmt(run.perSecond)} requests/s, p90 ${ms(run.p90)} ms, max ${ms(run.max)} ms; trail lengths ${shapes}; ${run.cpu}`,
      });
    }
    rows.push({
      name: 'actionTrail() in the bench process, p50 / p99',
      result: `${ms(inProcess.p50)} / ${ms(inProcess.p99)} ms`,
      details: `the endpoint's database queries alone (no HTTP, no token check), ${fmt(inProcess.count)} calls, 1 at a time; p90 ${ms(inProcess.p90)} ms, max ${ms(inProcess.max)} ms; ${inProcess.cpu}`,
    });
    if (options.explain || sequential.p99 > targets.trailP99Ms) {
      const plans = await explainTrail(db.sql, raw, pick());
      process.stderr.write(`bench: EXPLAIN ANALYZE of actionTrail's queries (one sampled action):\n${plans}\n`);
      if (sequential.p99 > targets.trailP99Ms) notes.push('p99 of GET /audit/actions/{id} missed its target: see the EXPLAIN ANALYZE output on stderr');
    }
    const [size] = await raw`SELECT pg_size_pretty(pg_total_relation_size('audit_log')) AS log, pg_size_pretty(pg_total_relation_size('tokens')) AS tokens, (SELECT count(*) FROM tokens)::int AS token_rows`;
    notes.push(`database: audit_log ${size.log} with its indexes, tokens ${size.tokens} (${fmt(size.token_rows)} rows); Baton's RSS at the end ${batonRss(baton.pid)}`);
  } catch (error) {
    process.exitCode = 1;
    progress(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    await runCleanups();
  }

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const memory = process.memoryUsage();
  print(`node ${process.version}, ${availableParallelism()} CPUs (${cpu}), ${process.platform}/${process.arch}, ${idleAtStart}% CPU idle before the start`);
  print(`${fmt(options.entries)} entries, ${fmt(options.appends)} appends measured, ${fmt(options.requests)} requests per GET run${options.quick ? ' (--quick)' : ''}`);
  print();
  print(table(rows));
  print();
  for (const note of notes) print(`- ${note}`);
  print(`- bench process RSS at the end ${fmt(memory.rss / 1_048_576)} MiB (peak ${fmt(process.resourceUsage().maxRSS / 1024)} MiB)`);
  if (options.json !== undefined) writeFileSync(options.json, JSON.stringify(json));
  if (process.exitCode === 1) progress('finished with errors');
}

function batonRss(pid) {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
    return line === undefined ? '-' : `${fmt(Number(line.split(/\s+/)[1]) / 1024)} MiB`;
  } catch {
    return '-';
  }
}

await main();
