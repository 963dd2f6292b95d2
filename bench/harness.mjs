// What every benchmark harness needs: progress on stderr, clean-ups that run on success, failure
// and Ctrl-C (so no Baton process or bench database outlives the harness), a bound on the run
// time, free loopback ports, Baton's log tail, how idle the machine is, Baton (or a peer server)
// as a child process, its token endpoint, and the figures' formats.

/* global fetch, AbortSignal */

import postgres from 'postgres';
import { Buffer } from 'node:buffer';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { URL, URLSearchParams } from 'node:url';
import { parseArgs } from 'node:util';
import { generateSigningKeys } from '../dist/adapters/signing-keys.js';

/** Loopback only: every benchmark talks to its own Baton on this machine. */
export const host = '127.0.0.1';

/** A line of progress on stderr (the results table goes to stdout). */
export const progress = (line) => process.stderr.write(`bench: ${line}\n`);

/** A line of the results on stdout. */
export const print = (line = '') => process.stdout.write(`${line}\n`);

/** What a thrown value says. */
export const messageOf = (error) => (error instanceof Error ? error.message : String(error));

/** The machine, as every report's first line gives it. */
export const machineLine = () =>
  `node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown CPU'}), ${process.platform}/${process.arch}`;

/** True for a figure that was measured (not undefined, not NaN). */
export const present = (v) => typeof v === 'number' && Number.isFinite(v);
/** A count or rate in a table: rounded, with thousands separators; `-` if absent. */
export const whole = (v) => (present(v) ? Math.round(v).toLocaleString('en-US') : '-');
/** A figure with `digits` decimals (milliseconds, ratios); `-` if absent. */
export const fixed = (v, digits = 2) => (present(v) ? v.toFixed(digits) : '-');

/** A ratio taken over pairs of runs (bench/ratios.mjs): `2.31 (2.05–2.60, 6 pairs)`, the median, then the least and the greatest. */
export const ratioWithSpread = ({ median, min, max, count }) =>
  `${fixed(median)} (${fixed(min)}–${fixed(max)}, ${count} ${count === 1 ? 'pair' : 'pairs'})`;

/** The median of some values (the mean of the middle two for an even count), with the least, the greatest and how many. */
export function spread(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted.at(-1), count: sorted.length };
}

/** Nearest-rank percentile of sorted values. */
export const percentile = (sorted, q) =>
  sorted.length === 0 ? NaN : sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];

/** Writes a script's figures to the --json file, if one was given (bench/run.mjs reads them). */
export function writeJson(file, data) {
  if (file !== undefined) writeFileSync(file, JSON.stringify(data));
}

/**
 * Reads the command line once: `options` as node:util parseArgs takes them (strict, and --help,
 * which prints `usage` and exits 0), then `interpret(values)`. Any bad option or value prints why
 * and the usage on stderr and exits 2.
 */
export function readCommandLine(usage, options, interpret) {
  try {
    const { values } = parseArgs({
      args: process.argv.slice(2),
      strict: true,
      options: { ...options, help: { type: 'boolean', short: 'h', default: false } },
    });
    if (values.help) {
      process.stdout.write(usage);
      process.exit(0);
    }
    return interpret(values);
  } catch (error) {
    process.stderr.write(`bench: ${messageOf(error)}\n\n${usage}`);
    process.exit(2);
  }
}

/** application/x-www-form-urlencoded, as RFC 6749 §2.3.1 requires for Basic client credentials. */
export const formEncode = (value) => new URLSearchParams({ v: value }).toString().slice('v='.length);

/** An RFC 6749 §2.3.1 `Authorization: Basic` value for a client id and secret. */
export const basicAuthorization = (clientId, secret) =>
  `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(secret)}`).toString('base64')}`;

/** A length in seconds: a number from 0.5 (a smoke run's) to `max`, or an error; `fallback` if it was not given. */
export function secondsOption(name, text, max, fallback) {
  if (text === undefined && fallback !== undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0.5 || n > max)
    throw new Error(`--${name} must be a number of seconds from 0.5 to ${max} (got ${JSON.stringify(text)})`);
  return n;
}

/** The setups `--setup embedded|postgres|both` names, or an error. */
export function setupsOption(text) {
  if (!['embedded', 'postgres', 'both'].includes(text))
    throw new Error(`--setup must be embedded, postgres or both (got ${JSON.stringify(text)})`);
  return text === 'both' ? ['embedded', 'postgres'] : [text];
}

/** The PostgreSQL every benchmark uses: loopback, trust authentication, an existing `test` database to connect to. */
const adminDatabaseUrl = 'postgres://postgres@127.0.0.1:5432/test';

/** Runs `work` with a one-connection client of `url`, closed afterwards. */
export async function withDatabase(url, work) {
  const db = postgres(url, { max: 1, connect_timeout: 10, onnotice: () => {} });
  try {
    return await work(db);
  } finally {
    await db.end({ timeout: 5 });
  }
}

/**
 * A benchmark's own database, `base` followed by BENCH_DATABASE_SUFFIX (bench/run.mjs sets one per
 * run, so runs sharing a PostgreSQL server never drop each other's). `create()` recreates it empty
 * and registers its drop with the clean-ups.
 */
export function benchDatabase(base) {
  const name = `${base}${/^[a-z0-9_]*$/.exec(process.env.BENCH_DATABASE_SUFFIX ?? '')?.[0] ?? ''}`;
  const drop = () =>
    withDatabase(adminDatabaseUrl, (admin) => admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  return {
    name,
    url: `postgres://postgres@127.0.0.1:5432/${name}`,
    async create() {
      await drop();
      await withDatabase(adminDatabaseUrl, (admin) => admin.unsafe(`CREATE DATABASE ${name}`));
      cleanups.push(drop);
    },
  };
}

/** Undo actions, newest last; `runCleanups` pops them. */
export const cleanups = [];
/** Child processes (Baton, a peer) still running, killed outright if the harness exits without clean-ups. */
export const liveChildren = new Set();
/** Clean-up passes run one after the other, so Ctrl-C during one waits for it instead of exiting halfway. */
let cleaning = Promise.resolve();
let stopping = false;

/** True once Ctrl-C (or SIGTERM) has begun stopping everything: a failing load is then expected. */
export const isStopping = () => stopping;

/** Undoes, newest first, everything registered after the first `keep` clean-ups. */
export function runCleanups(keep = 0) {
  const pass = cleaning.then(async () => {
    while (cleanups.length > keep) {
      const undo = cleanups.pop();
      try {
        await undo();
      } catch (error) {
        progress(`clean-up failed: ${messageOf(error)}`);
      }
    }
  });
  cleaning = pass;
  return pass;
}

/** Runs `work`, then undoes what it registered (its Baton, its database, its folder), whether it succeeded or not. */
export async function withCleanups(work) {
  const mark = cleanups.length;
  try {
    return await work();
  } finally {
    await runCleanups(mark);
  }
}

/** A bound on the whole script in case something hangs: after `budgetMs` it says so, cleans up and exits 1. */
export function limitRunTime(budgetMs) {
  setTimeout(() => {
    progress(`still running after ${Math.round(budgetMs / 1000)} s: giving up`);
    void runCleanups().finally(() => process.exit(1));
  }, budgetMs).unref();
}

/** A new temporary folder, removed by the clean-ups. */
export async function workFolder(prefix) {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// Last resort if the harness dies without running its clean-ups: never leave a child behind.
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    progress(`${signal}: stopping`);
    stopping = true;
    void runCleanups().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

/** An integer command-line option, or an error naming it, its range and what was given; `fallback` if it was not given. */
export function integerOption(name, text, min, max, fallback) {
  if (text === undefined && fallback !== undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(text)})`);
  return n;
}

/** A port that is free right now: bind port 0 on loopback, read it, release it. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The last lines of Baton's log; `skipInfo` leaves out the per-request access lines. */
export function logTail(file, { lines = 20, skipInfo = false } = {}) {
  try {
    const all = readFileSync(file, 'utf8').trimEnd().split('\n');
    return (
      (skipInfo ? all.filter((line) => !line.includes('"level":"info"')) : all).slice(-lines).join('\n') || '(nothing)'
    );
  } catch {
    return '(no log)';
  }
}

/** How a child process ended, in words. */
export const describeExit = ({ code, signal }) => (signal === null ? `exit code ${code}` : `signal ${signal}`);

/** The share of all CPUs' time spent idle over the next second. */
export async function idlePercent() {
  const times = () =>
    cpus().reduce(
      (sum, cpu) => ({
        idle: sum.idle + cpu.times.idle,
        all: sum.all + Object.values(cpu.times).reduce((a, b) => a + b, 0),
      }),
      { idle: 0, all: 0 },
    );
  const before = times();
  await sleep(1_000);
  const after = times();
  return Math.round((100 * (after.idle - before.idle)) / Math.max(1, after.all - before.all));
}

/**
 * The machine as a script starts: the load average, and how idle the CPUs were over one second
 * (`idle`, with `idleText` for a header). A script bench/run.mjs runs (BENCH_RUNNER set) spends no
 * second on it: the runner sampled the machine before all its parts and reports it in its header.
 */
export async function machineAtStart() {
  const load = loadAverage();
  const idle = process.env.BENCH_RUNNER === undefined ? await idlePercent() : undefined;
  return {
    load,
    idle,
    idleText:
      idle === undefined
        ? "CPU idleness before the start: see npm run bench's header"
        : `${idle}% CPU idle before the start`,
  };
}

/** The calling shell's environment without what would change how a child under test behaves: BATON_*, DATABASE_URL, PORT, NODE_OPTIONS. */
export function cleanEnv() {
  const env = { ...process.env };
  for (const name of Object.keys(env))
    if (name.startsWith('BATON_') || name === 'DATABASE_URL' || name === 'PORT' || name === 'NODE_OPTIONS')
      delete env[name];
  return env;
}

/**
 * Starts `node [nodeArgs] script [args]` in `cwd` with exactly `env`, its stdout and stderr in the
 * file `log`, stopped by the clean-ups (SIGTERM, then SIGKILL after `stopTimeoutMs`). Resolves
 * once GET `readyPath` on http://127.0.0.1:`port` answers 200, with `{ url, log, exited, pid,
 * stop, alive }`; throws (with the log's tail) if the child exits first or is not ready in time.
 */
export async function spawnNode({
  cwd,
  script,
  args = [],
  env,
  port,
  log,
  label,
  readyPath,
  nodeArgs = [],
  readyTimeoutMs = 60_000,
  stopTimeoutMs = 10_000,
}) {
  // A server under load may log per request. A file keeps that off the harness's event loop (a
  // pipe would have to be drained here, competing with the load generator) and is there to show on failure.
  const fd = openSync(log, 'w');
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], { cwd, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  liveChildren.add(child);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  void exited.then(() => liveChildren.delete(child));

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // SIGTERM lets the child close what it holds and exit normally (which is also when --cpu-prof writes).
    // The timer is unref'd: once the child is gone it must not keep this process alive until it fires.
    child.kill('SIGTERM');
    if ((await Promise.race([exited, sleep(stopTimeoutMs, 'timeout', { ref: false })])) === 'timeout') {
      child.kill('SIGKILL');
      await exited;
    }
  };
  cleanups.push(stop);

  const url = `http://${host}:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  let early;
  void exited.then((status) => (early = status));
  for (;;) {
    if (early !== undefined)
      throw new Error(`${label} exited before it was ready (${describeExit(early)}); log:\n${logTail(log)}`);
    if (Date.now() > deadline)
      throw new Error(`${label} was not ready within ${readyTimeoutMs / 1000} s; log:\n${logTail(log)}`);
    try {
      const response = await fetch(`${url}${readyPath}`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return { url, log, exited, pid: child.pid, stop, alive: () => early === undefined };
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
}

/**
 * Starts `node dist/node/main.js` with `settings` (none of the caller's BATON_*, DATABASE_URL,
 * PORT or NODE_OPTIONS leak in), its log in `log`, stopped by the clean-ups (SIGTERM, then SIGKILL
 * after `stopTimeoutMs`). Resolves once GET /readyz answers 200.
 */
export async function spawnBaton({
  root,
  port,
  settings,
  log,
  label = 'Baton',
  nodeArgs = [],
  readyTimeoutMs = 60_000,
  stopTimeoutMs = 10_000,
}) {
  // Each benchmark drives one client (or resource server) flat out, far over the default
  // per-client rate limit, so the limit is off unless a benchmark sets it, or BENCH_RATE_LIMIT
  // does (a limit high enough never to refuse measures what checking it costs).
  const rateLimit = /^[0-9]+$/.exec(process.env.BENCH_RATE_LIMIT ?? '')?.[0] ?? '0';
  const env = { ...cleanEnv(), PORT: String(port), BATON_HOST: host, BATON_RATE_LIMIT: rateLimit, ...settings };
  return spawnNode({
    cwd: root,
    script: 'dist/node/main.js',
    env,
    port,
    log,
    label,
    readyPath: '/readyz',
    nodeArgs,
    readyTimeoutMs,
    stopTimeoutMs,
  });
}

/**
 * Baton for one benchmark setup, with fresh signing keys: `embedded` on a new PGlite folder in
 * `workDir`, `postgres` on `database` (a `benchDatabase`, recreated empty). With `cpuProfDir`,
 * Baton runs under --cpu-prof and writes its profile to `<cpuProfDir>/<setup>` when it stops.
 */
export async function startBatonSetup({
  root,
  setup,
  workDir,
  database,
  cpuProfDir,
  settings = {},
  readyTimeoutMs,
  stopTimeoutMs,
}) {
  const port = await freePort();
  // The caller's BATON_*, DATABASE_URL and PORT never reach the setup under test (spawnBaton).
  const all = {
    BATON_SIGNING_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
    BATON_AUDIT_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
    ...settings,
  };
  if (setup === 'postgres') {
    await database.create();
    all.DATABASE_URL = database.url;
  } else {
    all.BATON_DATA_DIR = await mkdtemp(join(workDir, 'data-'));
  }
  const profDir = cpuProfDir === undefined ? undefined : join(cpuProfDir, setup);
  if (profDir !== undefined) mkdirSync(profDir, { recursive: true });
  const nodeArgs = profDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`];
  const baton = await spawnBaton({
    root,
    port,
    settings: all,
    log: join(workDir, `baton-${setup}.log`),
    label: `Baton (${setup})`,
    nodeArgs,
    readyTimeoutMs,
    stopTimeoutMs,
  });
  return { ...baton, profDir };
}

/**
 * Baton's issuer and the path of its token endpoint, from its metadata. The endpoint is advertised
 * under the issuer (http://localhost:<port>); requests go to the loopback address Baton listens
 * on, so only the path is kept.
 */
export async function tokenEndpoint(baseUrl) {
  const response = await fetch(new URL('/.well-known/oauth-authorization-server', baseUrl), {
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`metadata: HTTP ${response.status}`);
  const meta = await response.json();
  return { issuer: meta.issuer, tokenPath: new URL(meta.token_endpoint).pathname };
}

/** A form POST to Baton's token endpoint (`authorization` optional); resolves with the JSON answer, throws on anything but 2xx. */
export async function postToken(baseUrl, tokenPath, params, authorization) {
  const response = await fetch(new URL(tokenPath, baseUrl), {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(authorization === undefined ? {} : { authorization }),
    },
    body: new URLSearchParams(params),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${params.grant_type} refused (HTTP ${response.status}): ${text}`);
  return JSON.parse(text);
}

/** CPU time all CPUs have spent busy (not idle, not waiting for I/O) so far, in ms. */
export const machineBusyMs = () =>
  cpus().reduce((sum, cpu) => sum + cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq, 0);

/** The 1, 5 and 15 minute load averages, as /proc/loadavg gives them. */
export const loadAverage = () => {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
};

/** A process and its child processes (Baton's workers with BATON_WORKERS), from /proc. */
function processTree(pid) {
  let children = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    // no children file: count the process alone
  }
  return [pid, ...children];
}

let clockTicks;
/** Clock ticks per second, the unit of CPU times in /proc/<pid>/stat. */
const ticksPerSecond = () =>
  (clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100);

/** CPU time (user + system) a process and its children have used so far, in ms; undefined off Linux. */
export function processCpuMs(pid) {
  try {
    const perSecond = ticksPerSecond();
    let ticks = 0;
    for (const one of processTree(pid)) {
      // The command name (field 2) may hold spaces; the fields after it are space-separated.
      const stat = readFileSync(`/proc/${one}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    }
    return (ticks * 1000) / perSecond;
  } catch {
    return undefined;
  }
}

/** VmRSS and VmHWM (peak) in MiB of a process and its children together, from /proc/<pid>/status. */
export function processMemory(pid) {
  try {
    let rss = 0;
    let peak = 0;
    for (const one of processTree(pid)) {
      const status = readFileSync(`/proc/${one}/status`, 'utf8');
      const kib = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
      rss += kib('VmRSS') / 1024;
      peak += kib('VmHWM') / 1024;
    }
    return { rss, peak };
  } catch {
    return undefined;
  }
}

/** A PostgreSQL backend serving a client of a database other than `databaseName` (someone else's tests, say). */
function otherDatabaseBackend(pid, databaseName) {
  try {
    const title = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const backend = /^postgres: [^:]+: \S+ (\S+) (?:[\d.:a-f]+\(\d+\)|\[local\])/.exec(title);
    return backend !== null && backend[1] !== databaseName;
  } catch {
    return true;
  }
}

/** CPU time (ms) so far of this process, of PostgreSQL (its background processes and the backends of `databaseName`) and of `otherPid`, from /proc (Linux). */
function cpuTimes(databaseName, otherPid) {
  const usage = process.cpuUsage();
  let postgresMs = 0;
  let otherMs = 0;
  let available = true;
  try {
    const tickMs = 1000 / ticksPerSecond();
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
      const ms = (Number(fields[11]) + Number(fields[12])) * tickMs; // utime, stime
      if (comm === 'postgres' && !otherDatabaseBackend(name, databaseName)) postgresMs += ms;
      if (otherPid !== undefined && Number(name) === otherPid) otherMs += ms;
    }
  } catch {
    available = false;
  }
  return {
    at: performance.now(),
    selfMs: (usage.user + usage.system) / 1000,
    postgresMs,
    otherMs,
    machineBusyMs: machineBusyMs(),
    available,
  };
}

/**
 * Starts counting the CPU a phase uses. `summary()` then says, in % of one core: this process,
 * PostgreSQL (its background processes and the backends of `databaseName`, not other databases'),
 * the process `other.pid` as `other.name`, and everything else on the machine.
 */
export function cpuMeter(databaseName, other) {
  const before = cpuTimes(databaseName, other?.pid);
  return {
    summary() {
      const after = cpuTimes(databaseName, other?.pid);
      const wall = after.at - before.at;
      const pct = (ms) => `${Math.round((100 * ms) / wall)}%`;
      const parts = [`bench process ${pct(after.selfMs - before.selfMs)}`];
      if (before.available && after.available) {
        parts.push(`PostgreSQL ${pct(after.postgresMs - before.postgresMs)}`);
        if (other !== undefined) parts.push(`${other.name} ${pct(after.otherMs - before.otherMs)}`);
        // Whatever else ran on the machine meanwhile (other users' tests, say) skews the figures.
        const ours =
          after.selfMs - before.selfMs + after.postgresMs - before.postgresMs + after.otherMs - before.otherMs;
        parts.push(`everything else ${pct(Math.max(0, after.machineBusyMs - before.machineBusyMs - ours))}`);
      }
      return `CPU (of one core): ${parts.join(', ')}`;
    },
  };
}

/**
 * Waits, at most `seconds`, until two seconds in a row leave the CPUs at least 90% idle: a phase
 * then does not start in the middle of someone else's burst (tests, another benchmark). The CPU
 * share of everything else during the phase is reported with it either way.
 */
export async function waitForQuiet(phase, seconds) {
  const deadline = Date.now() + seconds * 1000;
  let quiet = 0;
  let idle = NaN;
  while (Date.now() < deadline) {
    idle = await idlePercent();
    quiet = idle >= 90 ? quiet + 1 : 0;
    if (quiet >= 2) return;
  }
  if (seconds > 0) progress(`${phase}: the machine is busy (${idle}% idle); measuring anyway`);
}
