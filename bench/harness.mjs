// What every benchmark harness needs: progress on stderr, clean-ups that run on success, failure
// and Ctrl-C (so no Baton process or bench database outlives the harness), free loopback ports,
// Baton's log tail, how idle the machine is, and Baton (or a peer server) as a child process.

/* global fetch, AbortSignal */

import postgres from 'postgres';
import { Buffer } from 'node:buffer';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { URLSearchParams } from 'node:url';
import { parseArgs } from 'node:util';
import { generateSigningKeys } from '../dist/adapters/signing-keys.js';

/** Loopback only: every benchmark talks to its own Baton on this machine. */
export const host = '127.0.0.1';

/** A line of progress on stderr (the results table goes to stdout). */
export const progress = (line) => process.stderr.write(`bench: ${line}\n`);

/** A line of the results on stdout. */
export const print = (line = '') => process.stdout.write(`${line}\n`);

/**
 * Reads the command line once: `options` as node:util parseArgs takes them (strict, and --help,
 * which prints `usage` and exits 0), then `interpret(values)`. Any bad option or value prints why
 * and the usage on stderr and exits 2.
 */
export function readCommandLine(usage, options, interpret) {
  try {
    const { values } = parseArgs({ args: process.argv.slice(2), strict: true, options: { ...options, help: { type: 'boolean', short: 'h', default: false } } });
    if (values.help) {
      process.stdout.write(usage);
      process.exit(0);
    }
    return interpret(values);
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n\n${usage}`);
    process.exit(2);
  }
}

/** application/x-www-form-urlencoded, as RFC 6749 §2.3.1 requires for Basic client credentials. */
export const formEncode = (value) => new URLSearchParams({ v: value }).toString().slice('v='.length);

/** An RFC 6749 §2.3.1 `Authorization: Basic` value for a client id and secret. */
export const basicAuthorization = (clientId, secret) => `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(secret)}`).toString('base64')}`;

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
  const drop = () => withDatabase(adminDatabaseUrl, (admin) => admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
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
        progress(`clean-up failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  });
  cleaning = pass;
  return pass;
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

/** An integer command-line option, or an error naming it, its range and what was given. */
export function integerOption(name, text, min, max) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(text)})`);
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
    return (skipInfo ? all.filter((line) => !line.includes('"level":"info"')) : all).slice(-lines).join('\n') || '(nothing)';
  } catch {
    return '(no log)';
  }
}

/** How a child process ended, in words. */
export const describeExit = ({ code, signal }) => (signal === null ? `exit code ${code}` : `signal ${signal}`);

/** The share of all CPUs' time spent idle over the next second. */
export async function idlePercent() {
  const times = () => cpus().reduce((sum, cpu) => ({ idle: sum.idle + cpu.times.idle, all: sum.all + Object.values(cpu.times).reduce((a, b) => a + b, 0) }), { idle: 0, all: 0 });
  const before = times();
  await sleep(1_000);
  const after = times();
  return Math.round((100 * (after.idle - before.idle)) / Math.max(1, after.all - before.all));
}

/** The calling shell's environment without what would change how a child under test behaves: BATON_*, DATABASE_URL, PORT, NODE_OPTIONS. */
export function cleanEnv() {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('BATON_') || name === 'DATABASE_URL' || name === 'PORT' || name === 'NODE_OPTIONS') delete env[name];
  return env;
}

/**
 * Starts `node [nodeArgs] script [args]` in `cwd` with exactly `env`, its stdout and stderr in the
 * file `log`, stopped by the clean-ups (SIGTERM, then SIGKILL after `stopTimeoutMs`). Resolves
 * once GET `readyPath` on http://127.0.0.1:`port` answers 200, with `{ url, log, exited, pid,
 * stop, alive }`; throws (with the log's tail) if the child exits first or is not ready in time.
 */
export async function spawnNode({ cwd, script, args = [], env, port, log, label, readyPath, nodeArgs = [], readyTimeoutMs = 60_000, stopTimeoutMs = 10_000 }) {
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
    child.kill('SIGTERM');
    if ((await Promise.race([exited, sleep(stopTimeoutMs, 'timeout')])) === 'timeout') {
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
    if (early !== undefined) throw new Error(`${label} exited before it was ready (${describeExit(early)}); log:\n${logTail(log)}`);
    if (Date.now() > deadline) throw new Error(`${label} was not ready within ${readyTimeoutMs / 1000} s; log:\n${logTail(log)}`);
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
export async function spawnBaton({ root, port, settings, log, label = 'Baton', nodeArgs = [], readyTimeoutMs = 60_000, stopTimeoutMs = 10_000 }) {
  // Each benchmark drives one client (or resource server) flat out, far over the default
  // per-client rate limit, so the limit is off unless a benchmark sets it.
  const env = { ...cleanEnv(), PORT: String(port), BATON_HOST: host, BATON_RATE_LIMIT: '0', ...settings };
  return spawnNode({ cwd: root, script: 'dist/node/main.js', env, port, log, label, readyPath: '/readyz', nodeArgs, readyTimeoutMs, stopTimeoutMs });
}

/**
 * Baton for one benchmark setup, with fresh signing keys: `embedded` on a new PGlite folder in
 * `workDir`, `postgres` on `database` (a `benchDatabase`, recreated empty). With `cpuProfDir`,
 * Baton runs under --cpu-prof and writes its profile to `<cpuProfDir>/<setup>` when it stops.
 */
export async function startBatonSetup({ root, setup, workDir, database, cpuProfDir, settings = {}, readyTimeoutMs, stopTimeoutMs }) {
  const port = await freePort();
  // The caller's BATON_*, DATABASE_URL and PORT never reach the setup under test (spawnBaton).
  const all = { BATON_SIGNING_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')), BATON_AUDIT_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')), ...settings };
  if (setup === 'postgres') {
    await database.create();
    all.DATABASE_URL = database.url;
  } else {
    all.BATON_DATA_DIR = await mkdtemp(join(workDir, 'data-'));
  }
  const profDir = cpuProfDir === undefined ? undefined : join(cpuProfDir, setup);
  if (profDir !== undefined) mkdirSync(profDir, { recursive: true });
  const nodeArgs = profDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`];
  const baton = await spawnBaton({ root, port, settings: all, log: join(workDir, `baton-${setup}.log`), label: `Baton (${setup})`, nodeArgs, readyTimeoutMs, stopTimeoutMs });
  return { ...baton, profDir };
}

/** CPU time all CPUs have spent busy (not idle, not waiting for I/O) so far, in ms. */
export const machineBusyMs = () => cpus().reduce((sum, cpu) => sum + cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq, 0);

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
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // no children file: count the process alone
  }
  return [pid, ...children];
}

let clockTicks;
/** CPU time (user + system) a process and its children have used so far, in ms; undefined off Linux. */
export function processCpuMs(pid) {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    let ticks = 0;
    for (const one of processTree(pid)) {
      // The command name (field 2) may hold spaces; the fields after it are space-separated.
      const stat = readFileSync(`/proc/${one}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    }
    return (ticks * 1000) / clockTicks;
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
