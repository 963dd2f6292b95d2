// Benchmark for Baton's audit log on PostgreSQL; see bench/README.md ("Audit log benchmark").
//
//   npm run build && node bench/audit.mjs [--entries 1000000] [--appends 50000] [--quick]
//
// Against a fresh database it measures, in this order:
//   1. appends/s through the group-commit writer (createAuditWriter), with a fixed number of
//      appends in flight, and each append's latency until its commit;
//   2. the log brought to --entries with bulk inserts chained by the same formula
//      (bench/audit-workload.mjs), then chain verification: createAuditReader().verify() over the
//      whole log, and the offline verifier (verifyExport) over an export built from the rows;
//   3. GET /audit/actions/{id} against Baton started as a child process, sequentially and with a
//      few connections, for random existing action ids (bench/audit-trail.mjs).
// It prints one markdown table, drops its database and exits non-zero on any error.

// The repo's eslint config declares no runtime globals (it is written for the TypeScript in src/);
// everything importable is imported below.

import postgres from 'postgres';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { createAuditReader } from '../dist/adapters/db/audit-reader.js';
import { createAuditWriter } from '../dist/adapters/db/audit-writer.js';
import { migrate } from '../dist/adapters/db/migrations.js';
import { openPostgres } from '../dist/adapters/db/postgres.js';
import { sha256Hex } from '../dist/adapters/node-hash.js';
import { generateSigningKeys, importSigningKeys } from '../dist/adapters/signing-keys.js';
import { verifyExport } from '../dist/cli/audit-verify.js';
import { demoSecret } from '../dist/cli/demo-kit.js';
import { signCheckpoint } from '../dist/core/audit/checkpoint.js';
import { actionSampler, fillLog, makeWorkload } from './audit-workload.mjs';
import { explainTrail, getTrails, measureTrailQueries } from './audit-trail.mjs';
import {
  basicAuthorization,
  benchDatabase,
  cleanups,
  cpuMeter,
  fixed,
  freePort,
  integerOption,
  limitRunTime,
  machineAtStart,
  machineLine,
  percentile,
  postToken,
  present,
  print,
  processMemory,
  progress,
  readCommandLine,
  runCleanups,
  spawnBaton,
  waitForQuiet,
  whole,
  workFolder,
  writeJson,
} from './harness.mjs';

const root = join(import.meta.dirname, '..');
const database = benchDatabase('baton_bench_audit');

const targets = { appendsPerSecond: 20_000, verifyPerSecond: 200_000, trailP99Ms: 5 };
const readyTimeoutMs = 60_000;
const stopTimeoutMs = 5_000;
/** Action ids kept (uniformly, by reservoir sampling) to pick GET targets from. */
const actionSampleSize = 20_000;

const usage = `usage: node bench/audit.mjs [options]      (after npm run build)

  --entries N       total entries in the log for verification and GET /audit/actions (default 1000000)
  --appends N       appends measured through the group-commit writer (default 50000)
  --in-flight N     appends kept in flight, each awaiting its commit (default 512)
  --requests N      GET /audit/actions/{id} requests per run (default 2000)
  --connections N   connections of the concurrent GET run (default 8; the other run uses 1)
  --export N        entries in the export file the offline verifier streams (default min(entries, 100000))
  --settle SECONDS  longest wait, before each measured phase, for the CPUs to be 90% idle (default 30; 0 with --quick)
  --explain         print EXPLAIN ANALYZE of actionTrail's queries even if the p99 target is met
  --quick           smoke run: 10000 entries, 2000 appends, 100 requests (explicit options win)
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
    const quick = values.quick;
    const appends = integerOption('appends', values.appends, 1, 10_000_000, quick ? 2_000 : 50_000);
    const entries = integerOption('entries', values.entries, 1, 50_000_000, quick ? 10_000 : 1_000_000);
    if (entries < appends)
      throw new Error(
        `--entries (${entries}) must be at least --appends (${appends}): the appended entries are part of the log`,
      );
    return {
      quick,
      appends,
      entries,
      inFlight: integerOption('in-flight', values['in-flight'], 1, 10_000, 512),
      requests: integerOption('requests', values.requests, 1, 1_000_000, quick ? 100 : 2_000),
      connections: integerOption('connections', values.connections, 1, 256, 8),
      // The export is a file that verifyExport streams line by line, as `baton audit verify` does.
      exportEntries: integerOption('export', values.export, 1, entries, Math.min(entries, 100_000)),
      settleSeconds: integerOption('settle', values.settle, 0, 600, quick ? 0 : 30),
      explain: values.explain,
      json: values.json,
    };
  });
}

const seconds = (msValue) => `${(msValue / 1000).toFixed(1)} s`;
/** Counts the CPU of a phase: this process, PostgreSQL (this database only), `other`, everything else. */
const meter = (other) => cpuMeter(database.name, other);

// ---------------------------------------------------------------------------------------------
// Setting up: the database, its clients, the workload, and the keys of the Baton to come.

/** A fresh database, migrated, with the writer's client (`db`), a plain one (`raw`), the workload and the sample of its action ids. */
async function openBench(options) {
  const workDir = await workFolder('baton-bench-audit-');
  progress(`creating database ${database.name}`);
  await database.create();
  const db = await openPostgres(database.url);
  cleanups.push(() => db.close());
  const raw = postgres(database.url, { max: 2, connect_timeout: 10, onnotice: () => {} });
  cleanups.push(() => raw.end({ timeout: 5 }));
  await migrate(db.sql);
  return { options, workDir, db, raw, workload: makeWorkload(), sampler: actionSampler(actionSampleSize) };
}

/** The keys and address of the Baton the trail phase starts; the offline export's checkpoint is signed with the same audit key. */
async function batonIdentity() {
  const port = await freePort();
  const auditJwks = await generateSigningKeys('EdDSA');
  return {
    port,
    issuer: `http://localhost:${port}`,
    signingJwks: await generateSigningKeys('EdDSA'),
    auditJwks,
    auditKeys: await importSigningKeys(auditJwks),
  };
}

// ---------------------------------------------------------------------------------------------
// 1. Appends through the group-commit writer.

async function measureAppends({ db, workload, sampler, options }) {
  const batches = [];
  const writer = createAuditWriter(db.sql, {
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
  progress(`appends: warm-up, ${whole(warmup)} appends`);
  await run(warmup);
  batches.length = 0;
  await waitForQuiet('appends', options.settleSeconds);
  progress(`appends: ${whole(options.appends)} appends, ${options.inFlight} in flight`);
  const cpu = meter();
  const { elapsed, latencies } = await run(options.appends);
  const cpuSummary = cpu.summary();
  const sorted = Float64Array.from(latencies).sort();
  const sizes = Float64Array.from(batches.map((b) => b.size)).sort();
  const durations = Float64Array.from(batches.map((b) => b.duration)).sort();
  return {
    perSecond: (options.appends * 1000) / elapsed,
    elapsed,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    batches: batches.length,
    batchSizes: {
      p10: percentile(sizes, 0.1),
      p50: percentile(sizes, 0.5),
      p90: percentile(sizes, 0.9),
      mean: options.appends / Math.max(1, batches.length),
    },
    batchMs: { p50: percentile(durations, 0.5), p99: percentile(durations, 0.99) },
    cpu: cpuSummary,
    warmup,
  };
}

// ---------------------------------------------------------------------------------------------
// 2. The log at full size, then verification in the database (reader.verify) and offline (verifyExport).

/** The fill (bench/audit-workload.mjs), then VACUUM (ANALYZE) and CHECKPOINT. */
async function fillToSize({ raw, workload, sampler, options }) {
  const cpu = meter();
  const fill = await fillLog(raw, workload, sampler, options.entries);
  if (fill.inserted === 0) return fill;
  const cpuSummary = cpu.summary();
  // What autovacuum would do after a bulk load: statistics for the planner, hint bits, the
  // visibility map. Then a checkpoint, so the gigabyte just written is not being flushed (spread
  // over minutes by checkpoint_completion_target) while the later phases are measured.
  progress('fill: VACUUM (ANALYZE), CHECKPOINT');
  const vacuumStarted = performance.now();
  await raw.unsafe('VACUUM (ANALYZE) audit_log, tokens, audit_head');
  await raw.unsafe('CHECKPOINT');
  return { ...fill, vacuum: performance.now() - vacuumStarted, cpu: cpuSummary };
}

async function measureVerify({ db, options }) {
  const reader = createAuditReader(db.sql, sha256Hex);
  const head = await reader.head();
  await waitForQuiet('verify', options.settleSeconds);
  progress(`verify: reader.verify(1, ${head.seq})`);
  const cpu = meter();
  const started = performance.now();
  const verdict = await reader.verify(1, head.seq);
  const elapsed = performance.now() - started;
  const cpuSummary = cpu.summary();
  if (!verdict.valid || verdict.entries !== head.seq)
    throw new Error(`the log does not verify: ${JSON.stringify(verdict)}`);
  return { entries: verdict.entries, elapsed, perSecond: (verdict.entries * 1000) / elapsed, cpu: cpuSummary };
}

/** Writes entries 1–`count` as `baton audit verify` reads them: JSON lines, then one checkpoint (signed with `keys`) naming the last. */
async function writeExport(raw, keys, issuer, count, file) {
  const out = createWriteStream(file, { encoding: 'utf8' });
  let written = 0;
  let lastHash;
  for (let from = 1; from <= count; from += 10_000) {
    const rows =
      await raw`SELECT seq, prev_hash, hash, canonical FROM audit_log WHERE seq >= ${from} AND seq <= ${Math.min(count, from + 9_999)} ORDER BY seq`;
    const text = rows
      .map(
        (r) =>
          `${JSON.stringify({ seq: Number(r.seq), prev_hash: r.prev_hash, hash: r.hash, canonical: r.canonical })}\n`,
      )
      .join('');
    if (!out.write(text)) await once(out, 'drain');
    written += rows.length;
    lastHash = rows.at(-1)?.hash;
  }
  if (written !== count) throw new Error(`export: expected ${count} lines, got ${written}`);
  // As GET /audit/entries does, checkpoints follow the entries; this one names the last exported entry.
  out.end(
    `${JSON.stringify({ checkpoint: await signCheckpoint(keys, issuer, { seq: count, hash: lastHash }, new Date()) })}\n`,
  );
  await once(out, 'finish');
  return (await stat(file)).size / 1_048_576;
}

async function measureOfflineVerify({ raw, workDir, options }, identity) {
  const count = options.exportEntries;
  const file = join(workDir, 'export.jsonl');
  progress(`offline verify: writing an export of entries 1–${whole(count)}`);
  const megabytes = await writeExport(raw, identity.auditKeys, identity.issuer, count, file);
  await waitForQuiet('offline verify', options.settleSeconds);
  progress(`offline verify: verifyExport streaming ${whole(count)} lines (${whole(megabytes)} MiB)`);
  const cpu = meter();
  const started = performance.now();
  // Read as `baton audit verify` reads it: a UTF-8 file stream, checked line by line.
  const verdict = await verifyExport(
    createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 }),
    identity.auditKeys.publicJwks,
    sha256Hex,
  );
  const elapsed = performance.now() - started;
  const cpuSummary = cpu.summary();
  await rm(file, { force: true });
  if (!verdict.ok || !verdict.message.startsWith(`${count} entries valid`))
    throw new Error(`the export does not verify: ${verdict.message}`);
  return {
    entries: count,
    elapsed,
    perSecond: (count * 1000) / elapsed,
    megabytes,
    cpu: cpuSummary,
    message: verdict.message,
  };
}

// ---------------------------------------------------------------------------------------------
// 3. GET /audit/actions/{id}, Baton as a child process.

/** Starts `node dist/node/main.js` on the bench database with the identity's keys; resolves once GET /readyz answers 200. */
function startBaton(identity, workDir) {
  const settings = {
    DATABASE_URL: database.url,
    BATON_SIGNING_KEYS: JSON.stringify(identity.signingJwks),
    BATON_AUDIT_KEYS: JSON.stringify(identity.auditJwks),
  };
  return spawnBaton({
    root,
    port: identity.port,
    settings,
    log: join(workDir, 'baton.log'),
    readyTimeoutMs,
    stopTimeoutMs,
  });
}

/** ops-console's token for the audit endpoints (client_credentials, scope baton:audit). */
async function auditorToken(baton) {
  const body = await postToken(
    baton.url,
    '/oauth2/token',
    { grant_type: 'client_credentials', scope: 'baton:audit' },
    basicAuthorization('ops-console', demoSecret('ops-console')),
  );
  return body.access_token;
}

/**
 * The trail of random sampled actions: actionTrail() in this process, then over HTTP from Baton,
 * one connection and then --connections; with the query plans when the p99 misses its target (or
 * --explain), and the sizes the log reached.
 */
async function measureTrails({ db, raw, sampler, workDir, options }, identity) {
  // A checkpoint of the head, signed with Baton's audit key, stands for the checkpoints Baton
  // would have signed every minute while the log grew: without it Baton's first checkpoint would
  // re-verify the whole log during the measurement.
  const reader = createAuditReader(db.sql, sha256Hex);
  const head = await reader.head();
  await reader.saveCheckpoint(
    head.seq,
    head.hash,
    await signCheckpoint(identity.auditKeys, identity.issuer, head, new Date()),
    new Date(),
  );
  const ids = sampler.sample;
  const pick = () => ids[Math.floor(Math.random() * ids.length)];
  await waitForQuiet('actionTrail in process', options.settleSeconds);
  const inProcess = await measureTrailQueries({
    reader,
    pick,
    count: Math.min(1_000, options.requests),
    databaseName: database.name,
  });

  progress(`starting Baton on port ${identity.port}`);
  const baton = await startBaton(identity, workDir);
  const get = { port: identity.port, token: await auditorToken(baton), pick, baton, databaseName: database.name };
  const warmup = Math.min(500, options.requests);
  progress(`GET /audit/actions/{id}: warm-up, ${warmup} requests`);
  await getTrails({ ...get, count: warmup, connections: options.connections });
  await waitForQuiet('GET, 1 connection', options.settleSeconds);
  progress(`GET /audit/actions/{id}: ${whole(options.requests)} requests, 1 connection`);
  const sequential = await getTrails({ ...get, count: options.requests, connections: 1 });
  await waitForQuiet(`GET, ${options.connections} connections`, options.settleSeconds);
  progress(`GET /audit/actions/{id}: ${whole(options.requests)} requests, ${options.connections} connections`);
  const concurrent = await getTrails({ ...get, count: options.requests, connections: options.connections });

  const plans =
    options.explain || sequential.p99 > targets.trailP99Ms ? await explainTrail(db.sql, raw, pick()) : undefined;
  const [size] =
    await raw`SELECT pg_size_pretty(pg_total_relation_size('audit_log')) AS log, pg_size_pretty(pg_total_relation_size('tokens')) AS tokens, (SELECT count(*) FROM tokens)::int AS token_rows`;
  return {
    inProcess,
    sequential,
    concurrent,
    plans,
    total: (await reader.head()).seq,
    size,
    batonRssMiB: processMemory(baton.pid)?.rss,
  };
}

// ---------------------------------------------------------------------------------------------
// Report: a row per measurement, notes below it, and the figures bench/run.mjs reads (--json).

const met = (ok) => (ok ? 'met' : '**missed**');

function appendRows(report, appends, options) {
  report.json.appendsPerSecond = appends.perSecond;
  report.rows.push(
    {
      name: `appends/s (createAuditWriter, ${options.inFlight} in flight)`,
      result: `${whole(appends.perSecond)}/s`,
      target: `≥ ${whole(targets.appendsPerSecond)}/s: ${met(appends.perSecond >= targets.appendsPerSecond)}`,
      details: `${whole(options.appends)} appends in ${seconds(appends.elapsed)} after ${whole(appends.warmup)} warm-up; ${whole(appends.batches)} transactions, entries per transaction p10/p50/p90 ${appends.batchSizes.p10}/${appends.batchSizes.p50}/${appends.batchSizes.p90}, transaction p50/p99 ${fixed(appends.batchMs.p50)}/${fixed(appends.batchMs.p99)} ms; ${appends.cpu}`,
    },
    {
      name: 'append latency p50 / p99 (until committed)',
      result: `${fixed(appends.p50)} / ${fixed(appends.p99)} ms`,
      details: `closed loop: ${options.inFlight} appends wait in the queue or the transaction`,
    },
  );
}

function fillRow(report, fill) {
  report.rows.push({
    name: 'fill to full size (bulk INSERT ... json_to_recordset, chained in JS)',
    result: fill.inserted === 0 ? '-' : `${whole((fill.inserted * 1000) / fill.elapsed)}/s`,
    details:
      fill.inserted === 0
        ? 'nothing to add'
        : `${whole(fill.inserted)} entries in ${seconds(fill.elapsed)}, then VACUUM (ANALYZE) and CHECKPOINT ${seconds(fill.vacuum)}; ${fill.cpu}`,
  });
}

function verifyRow(report, verify) {
  Object.assign(report.json, { verifyPerSecond: verify.perSecond, verifiedEntries: verify.entries });
  report.rows.push({
    name: `verification, reader.verify(1, head) over ${whole(verify.entries)} entries`,
    result: `${whole(verify.perSecond)}/s`,
    target: `≥ ${whole(targets.verifyPerSecond)}/s: ${met(verify.perSecond >= targets.verifyPerSecond)}`,
    details: `${seconds(verify.elapsed)}; ${verify.cpu}`,
  });
}

function offlineRow(report, offline) {
  report.rows.push({
    name: `offline verifyExport over an export of ${whole(offline.entries)} entries`,
    result: `${whole(offline.perSecond)}/s`,
    details: `${seconds(offline.elapsed)} for a ${whole(offline.megabytes)} MiB file of JSON lines + 1 checkpoint, streamed (re-canonicalizes every entry); ${offline.cpu}`,
  });
}

function trailRows(report, trails, options) {
  const { inProcess, sequential, concurrent, total } = trails;
  Object.assign(report.json, {
    trailEntries: total,
    trailP50Ms: sequential.p50,
    trailP99Ms: sequential.p99,
    trailConnections: options.connections,
    trailConcurrentP99Ms: concurrent.p99,
    batonRssMiB: trails.batonRssMiB,
  });
  for (const run of [sequential, concurrent]) {
    const shapes = [...run.trailLengths]
      .sort((a, b) => a[0] - b[0])
      .map(([length, n]) => `${whole(n)}× ${length}`)
      .join(', ');
    report.rows.push({
      name: `GET /audit/actions/{id} p50 / p99, ${run.connections === 1 ? '1 connection (sequential)' : `${run.connections} connections`}, ${whole(total)} entries`,
      result: `${fixed(run.p50)} / ${fixed(run.p99)} ms`,
      target: `p99 ≤ ${targets.trailP99Ms} ms: ${met(run.p99 <= targets.trailP99Ms)}`,
      details: `${whole(run.count)} requests, ${whole(run.perSecond)} requests/s, p90 ${fixed(run.p90)} ms, max ${fixed(run.max)} ms; trail lengths ${shapes}; ${run.cpu}`,
    });
  }
  report.rows.push({
    name: 'actionTrail() in the bench process, p50 / p99',
    result: `${fixed(inProcess.p50)} / ${fixed(inProcess.p99)} ms`,
    details: `the endpoint's database queries alone (no HTTP, no token check), ${whole(inProcess.count)} calls, 1 at a time; p90 ${fixed(inProcess.p90)} ms, max ${fixed(inProcess.max)} ms; ${inProcess.cpu}`,
  });
  if (trails.plans !== undefined) {
    process.stderr.write(`bench: EXPLAIN ANALYZE of actionTrail's queries (one sampled action):\n${trails.plans}\n`);
    if (sequential.p99 > targets.trailP99Ms)
      report.notes.push('p99 of GET /audit/actions/{id} missed its target: see the EXPLAIN ANALYZE output on stderr');
  }
  report.notes.push(
    `database: audit_log ${trails.size.log} with its indexes, tokens ${trails.size.tokens} (${whole(trails.size.token_rows)} rows); Baton's RSS at the end ${present(trails.batonRssMiB) ? `${whole(trails.batonRssMiB)} MiB` : '-'}`,
  );
}

function printReport(report, options, machine) {
  const memory = process.memoryUsage();
  print(`${machineLine()}, ${machine.idleText}`);
  print(
    `${whole(options.entries)} entries, ${whole(options.appends)} appends measured, ${whole(options.requests)} requests per GET run${options.quick ? ' (--quick)' : ''}`,
  );
  print();
  print(
    [
      '| measurement | result | target | details |',
      '| --- | ---: | ---: | --- |',
      ...report.rows.map((r) => `| ${r.name} | ${r.result} | ${r.target ?? '-'} | ${r.details ?? ''} |`),
    ].join('\n'),
  );
  print();
  for (const note of report.notes) print(`- ${note}`);
  print(
    `- bench process RSS at the end ${whole(memory.rss / 1_048_576)} MiB (peak ${whole(process.resourceUsage().maxRSS / 1024)} MiB)`,
  );
}

// ---------------------------------------------------------------------------------------------

/** A bound on the whole run in case something hangs: generous per entry, append and request. */
const runBudgetMs = (options) =>
  180_000 +
  options.entries * 0.5 +
  options.appends * 2 +
  options.requests * 2 * 40 +
  2_000 * 40 +
  7 * (options.settleSeconds * 1000 + 2_000);

async function main() {
  const options = parseOptions();
  limitRunTime(runBudgetMs(options));
  const machine = await machineAtStart();
  // The figures bench/run.mjs reads (--json); absent ones were not measured.
  const report = { rows: [], notes: [], json: { entries: options.entries } };
  try {
    const bench = await openBench(options);
    appendRows(report, await measureAppends(bench), options);
    fillRow(report, await fillToSize(bench));
    verifyRow(report, await measureVerify(bench));
    const identity = await batonIdentity();
    offlineRow(report, await measureOfflineVerify(bench, identity));
    trailRows(report, await measureTrails(bench, identity), options);
  } catch (error) {
    process.exitCode = 1;
    progress(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    await runCleanups();
  }
  printReport(report, options, machine);
  writeJson(options.json, report.json);
  if (process.exitCode === 1) progress('finished with errors');
}

await main();
