// The one benchmark command: `npm run bench` (builds, then runs this). See bench/README.md.
//
//   npm run bench -- [--quick] [--duration 10] [--entries 1000000] [--setup both] [--only PARTS]
//
// Runs every part one after another, never two loads at once (the machine has 2 cores):
//   floor          the in-process floor of an exchange (bench/floor.mjs, in this process)
//   exchange       POST /oauth2/token flat out: exchange hop 1, hop 2, client credentials (bench/token-exchange.mjs)
//   peer           node-oidc-provider's client-credentials grant (bench/oidc-provider.mjs, from this process)
//   exchange-rate  exchange hop 1 and hop 2 at a fixed 1,000/s (bench/token-exchange.mjs --rate 1000)
//   authorize      POST /authorize flat out and at 2,000/s (bench/authorize.mjs)
//   audit          appends, verification, GET /audit/actions/{id} (bench/audit.mjs, PostgreSQL only)
// Each script runs as a child process and writes its figures to a JSON file (--json); their own
// tables and progress go to stderr. This prints one markdown table on stdout, with every SPEC
// target met or not, and exits 1 if any part failed (not for a missed target), 2 on bad options.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanups, idlePercent, integerOption, isStopping, loadAverage, print, progress, readCommandLine, runCleanups } from './harness.mjs';

const root = join(import.meta.dirname, '..');
const allParts = ['floor', 'exchange', 'peer', 'exchange-rate', 'authorize', 'audit'];
const connections = 32;
const exchangeRate = 1000;
const authorizeRate = 2000;
const millionEntries = 1_000_000;

const usage = `usage: npm run bench -- [options]      (or node bench/run.mjs after npm run build)

  --quick          smoke run, a minute or two in all: 1 s runs, 20000 audit entries, few calls
  --duration N     seconds per measured HTTP run, 1 to 120 (default 10; 1 with --quick)
  --entries N      audit log size for verification and GET /audit/actions (default 1000000; 20000 with --quick)
  --setup S        embedded, postgres or both (default both); the audit part needs postgres
  --only PARTS     comma-separated subset of: ${allParts.join(', ')}
`;

/** The command line, read once (bench/harness.mjs readCommandLine: --help, exit 2 on a bad option). */
function parseOptions() {
  const options = {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    entries: { type: 'string' },
    setup: { type: 'string', default: 'both' },
    only: { type: 'string' },
  };
  return readCommandLine(usage, options, (values) => {
    if (!['embedded', 'postgres', 'both'].includes(values.setup)) throw new Error(`--setup must be embedded, postgres or both (got ${JSON.stringify(values.setup)})`);
    const only = values.only === undefined ? allParts : values.only.split(',').map((part) => part.trim()).filter((part) => part !== '');
    for (const part of only) if (!allParts.includes(part)) throw new Error(`--only: unknown part ${JSON.stringify(part)} (parts: ${allParts.join(', ')})`);
    const quick = values.quick;
    return {
      quick,
      duration: integerOption('duration', values.duration ?? (quick ? '1' : '10'), 1, 120),
      entries: integerOption('entries', values.entries ?? (quick ? '20000' : String(millionEntries)), 10_000, 50_000_000),
      setup: values.setup,
      setups: values.setup === 'both' ? ['embedded', 'postgres'] : [values.setup],
      parts: allParts.filter((part) => only.includes(part) && !(part === 'audit' && values.setup === 'embedded')),
      floorExchanges: quick ? 500 : 5000,
      // Requests before each measured HTTP run (the scripts' own defaults unless --quick).
      warmup: quick ? ['--warmup', '100'] : [],
      // The same warm-up as Baton's runs (bench/token-exchange.mjs).
      peerWarmup: quick ? 100 : 3000,
      // Other tokens revoked before /authorize runs flat out once more (issue: at most 10 % slower).
      revoked: quick ? 1000 : 100_000,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Running the parts.

/** The scripts' bench databases get a suffix of this run's own, so runs sharing a PostgreSQL server never drop each other's. */
const childEnv = { ...process.env, BENCH_DATABASE_SUFFIX: `_run${process.pid}` };

/**
 * Runs `node bench/<script> ...args --json FILE` and resolves with `{ ok, data, error }` once it
 * has exited. Its stdout (its own table) and stderr (progress) both go to this process's stderr;
 * it is stopped (SIGTERM, then SIGKILL 30 s later) after `timeoutMs`, or on Ctrl-C.
 */
async function runScript(name, script, args, workDir, timeoutMs) {
  const file = join(workDir, `${name}.json`);
  progress(`${name}: node bench/${script} ${args.join(' ')}`);
  const child = spawn(process.execPath, [join(root, 'bench', script), ...args, '--json', file], { cwd: root, env: childEnv, stdio: ['ignore', 2, 2] });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // The script cleans up on SIGTERM (its Baton, its database) and exits.
    child.kill('SIGTERM');
    if ((await Promise.race([exited, sleep(30_000, 'timeout')])) === 'timeout') {
      child.kill('SIGKILL');
      await exited;
    }
  };
  cleanups.push(stop);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    progress(`${name}: still running after ${Math.round(timeoutMs / 1000)} s: stopping it`);
    void stop();
  }, timeoutMs);
  const { code, signal } = await exited;
  clearTimeout(timer);
  cleanups.splice(cleanups.indexOf(stop), 1);
  let data;
  try {
    data = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
  } catch (error) {
    progress(`${name}: unreadable results: ${error instanceof Error ? error.message : String(error)}`);
  }
  const ok = code === 0 && data !== undefined;
  const error = timedOut ? 'timed out' : code !== 0 ? (signal === null ? `exit code ${code}` : `signal ${signal}`) : data === undefined ? 'wrote no results' : undefined;
  return { ok, data, error };
}

/** Runs an in-process part; a throw makes it a failed part. */
async function runInProcess(name, work) {
  try {
    const data = await work();
    return { ok: true, data };
  } catch (error) {
    progress(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/** The setup of the fixed-rate exchange run. */
const rateSetup = (options) => (options.setups.includes('postgres') ? 'postgres' : 'embedded');

async function runPart(part, options, workDir) {
  const setup = ['--setup', options.setup];
  const duration = ['--duration', String(options.duration)];
  const setupCount = options.setups.length;
  switch (part) {
    case 'floor':
      return runInProcess(part, async () => {
        progress(`floor: ${options.floorExchanges} exchanges in this process, one at a time`);
        const { measureFloor } = await import('./floor.mjs');
        return measureFloor({ exchanges: options.floorExchanges });
      });
    case 'exchange':
      return runScript(part, 'token-exchange.mjs', [...setup, ...duration, ...options.warmup], workDir, setupCount * (90_000 + 3 * (options.duration * 1000 + 60_000)));
    case 'exchange-rate':
      // On PostgreSQL only, the SPEC's setup (unless --setup embedded): the embedded setup does not reach 1,000 exchanges/s, so its p99 there would be queueing.
      return runScript(part, 'token-exchange.mjs', ['--setup', rateSetup(options), ...duration, ...options.warmup, '--rate', String(exchangeRate), '--only', 'exchange hop'], workDir, 90_000 + 2 * (options.duration * 1000 + 60_000));
    case 'peer':
      return runInProcess(part, async () => {
        const { benchOidcProvider } = await import('./oidc-provider.mjs');
        const result = await benchOidcProvider({ connections, duration: options.duration, warmup: options.peerWarmup });
        if (result.failed > 0) throw new Error(`${result.failed} requests without a 2xx; first: ${result.firstFailure}`);
        return result;
      });
    case 'authorize':
      return runScript(
        part,
        'authorize.mjs',
        [...setup, ...duration, ...options.warmup, '--rate', String(authorizeRate), '--revoked', String(options.revoked), ...(options.quick ? ['--calls', '2000'] : [])],
        workDir,
        120_000 + setupCount * (90_000 + 3 * (options.duration * 1000 + 60_000)),
      );
    case 'audit':
      return runScript(part, 'audit.mjs', [...(options.quick ? ['--quick'] : []), '--entries', String(options.entries)], workDir, (options.quick ? 300_000 : 600_000) + options.entries * 0.6);
    default:
      throw new Error(`unknown part ${part}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The table.

const present = (v) => typeof v === 'number' && Number.isFinite(v);
const whole = (v) => (present(v) ? Math.round(v).toLocaleString('en-US') : '-');
const ms = (v) => (present(v) ? v.toFixed(2) : '-');
const ratio = (v) => (present(v) ? v.toFixed(2) : '-');
const verdict = (ok) => (ok === undefined ? '-' : ok ? 'met' : '**not met**');

function buildRows(results, options) {
  const { exchange, peer, floor, authorize, audit } = results;
  const rate = results['exchange-rate'];
  /** What a cell says when its part did not give the figure: not run, or failed. */
  const missing = (partResult) => (partResult === undefined ? 'not run' : partResult.ok ? '-' : 'failed');
  const exchangeRow = (partResult, setup, scenario) => partResult?.data?.rows?.find((r) => r.setup === setup && r.scenario === scenario);
  const lastRow = (partResult, setup) => partResult?.data?.rows?.filter((r) => r.setup === setup).at(-1);
  const authorizeRow = (setup) => authorize?.data?.rows?.find((r) => r.setup === setup);
  const bySetup = (partResult, cell, setups = options.setups) => Object.fromEntries(['embedded', 'postgres'].map((setup) => [setup, setups.includes(setup) ? (cell(setup) ?? missing(partResult)) : 'not run']));
  const sustained = (run, asked) => present(run?.requestsPerSecond) && run.requestsPerSecond >= 0.95 * asked;

  const rows = [];
  const add = (measure, cells, target = '-', ok = undefined, note = '') => rows.push({ measure, ...cells, target, verdict: `${verdict(ok)}${note}` });
  const postgresOnly = (value) => ({ embedded: 'n/a', postgres: value });

  for (const [hop, scenario] of [['hop 1', 'exchange hop 1'], ['hop 2', 'exchange hop 2']]) {
    const flat = (setup) => exchangeRow(exchange, setup, scenario);
    const fixed = (setup) => exchangeRow(rate, setup, scenario);
    const pg = flat('postgres');
    add(`token exchange ${hop}: exchanges/s (flat out)`, bySetup(exchange, (s) => flat(s) && `${whole(flat(s).requestsPerSecond)}/s`), '≥ 2,000/s', present(pg?.requestsPerSecond) ? pg.requestsPerSecond >= 2000 : undefined);
    add(`token exchange ${hop}: p50 / p99 ms (flat out)`, bySetup(exchange, (s) => flat(s) && `${ms(flat(s).p50)} / ${ms(flat(s).p99)}`));
    const pgFixed = fixed('postgres');
    add(
      `token exchange ${hop}: p99 ms at ${whole(exchangeRate)}/s (achieved/s)`,
      bySetup(rate, (s) => fixed(s) && `${ms(fixed(s).p99)} (${whole(fixed(s).requestsPerSecond)}/s)`, [rateSetup(options)]),
      `p99 ≤ 25 ms at ${whole(exchangeRate)}/s`,
      pgFixed === undefined ? undefined : pgFixed.p99 <= 25 && sustained(pgFixed, exchangeRate),
      pgFixed !== undefined && !sustained(pgFixed, exchangeRate) ? ' (rate not sustained: p99 is queueing)' : '',
    );
  }
  const cc = (setup) => exchangeRow(exchange, setup, 'client credentials');
  add('client-credentials grant: grants/s (flat out)', bySetup(exchange, (s) => cc(s) && `${whole(cc(s).requestsPerSecond)}/s`), '≥ 1.2× peer (ratio below)');
  add('client-credentials grant: p50 / p99 ms (flat out)', bySetup(exchange, (s) => cc(s) && `${ms(cc(s).p50)} / ${ms(cc(s).p99)}`));
  add(
    'token endpoint: Baton CPU µs per request (hop 1 / hop 2 / client credentials)',
    bySetup(exchange, (s) => (lastRow(exchange, s) === undefined ? undefined : ['exchange hop 1', 'exchange hop 2', 'client credentials'].map((n) => whole(exchangeRow(exchange, s, n)?.batonCpuUs)).join(' / '))),
  );
  add(
    `token endpoint: Baton RSS MiB at the end (flat-out run / ${whole(exchangeRate)}/s run)`,
    bySetup(exchange ?? rate, (s) => {
      const flatRss = lastRow(exchange, s)?.rssMiB;
      const fixedRss = lastRow(rate, s)?.rssMiB;
      return flatRss === undefined && fixedRss === undefined ? undefined : `${whole(flatRss)} / ${whole(fixedRss)}`;
    }),
  );

  const auth = (s) => authorizeRow(s);
  const pgAuth = auth('postgres');
  add('/authorize: decisions/s (flat out)', bySetup(authorize, (s) => auth(s)?.flat && `${whole(auth(s).flat.requestsPerSecond)}/s`), '≥ 4,000/s', present(pgAuth?.flat?.requestsPerSecond) ? pgAuth.flat.requestsPerSecond >= 4000 : undefined);
  add('/authorize: p50 / p99 ms (flat out)', bySetup(authorize, (s) => auth(s)?.flat && `${ms(auth(s).flat.p50)} / ${ms(auth(s).flat.p99)}`));
  add(
    `/authorize: p99 ms at ${whole(authorizeRate)}/s (achieved/s)`,
    bySetup(authorize, (s) => auth(s)?.rated && `${ms(auth(s).rated.p99)} (${whole(auth(s).rated.requestsPerSecond)}/s)`),
    `p99 ≤ 10 ms at ${whole(authorizeRate)}/s`,
    pgAuth?.rated === undefined ? undefined : pgAuth.rated.p99 <= 10 && sustained(pgAuth.rated, authorizeRate),
    pgAuth?.rated !== undefined && !sustained(pgAuth.rated, authorizeRate) ? ' (rate not sustained: p99 is queueing)' : '',
  );
  const revokedRatio = present(pgAuth?.flatRevoked?.requestsPerSecond) && present(pgAuth?.flat?.requestsPerSecond) ? pgAuth.flatRevoked.requestsPerSecond / pgAuth.flat.requestsPerSecond : undefined;
  add(
    `/authorize: decisions/s with ${whole(options.revoked)} other tokens revoked (÷ without)`,
    { embedded: 'n/a', postgres: pgAuth?.flatRevoked === undefined ? missing(authorize) : `${whole(pgAuth.flatRevoked.requestsPerSecond)}/s (${ratio(revokedRatio)})` },
    '≥ 0.90 of the rate without',
    revokedRatio === undefined ? undefined : revokedRatio >= 0.9,
  );
  add('/authorize: decisions/s, a new amount in every request (flat out)', bySetup(authorize, (s) => auth(s)?.flatFresh && `${whole(auth(s).flatFresh.requestsPerSecond)}/s`));
  add(
    '/authorize: Baton CPU µs per decision (flat out: same request / a new amount in each)',
    bySetup(authorize, (s) => auth(s)?.flat && `${whole(auth(s).flat.batonCpuUsPerDecision)} / ${whole(auth(s).flatFresh?.batonCpuUsPerDecision)}`),
  );
  add('/authorize: Baton RSS MiB at the end (peak)', bySetup(authorize, (s) => auth(s)?.memory && `${whole(auth(s).memory.rss)} (${whole(auth(s).memory.peak)})`));

  const a = audit?.data;
  const auditCell = (value) => postgresOnly(value ?? missing(audit));
  add('audit: appends/s (group-commit writer, 512 in flight)', auditCell(present(a?.appendsPerSecond) ? `${whole(a.appendsPerSecond)}/s` : undefined), '≥ 20,000/s', present(a?.appendsPerSecond) ? a.appendsPerSecond >= 20_000 : undefined);
  add('audit: verification entries/s (reader.verify over the whole log)', auditCell(present(a?.verifyPerSecond) ? `${whole(a.verifyPerSecond)}/s over ${whole(a.verifiedEntries)}` : undefined), '≥ 200,000/s', present(a?.verifyPerSecond) ? a.verifyPerSecond >= 200_000 : undefined);
  const small = present(a?.trailEntries) && a.trailEntries < millionEntries;
  add(
    'audit: GET /audit/actions/{id} p50 / p99 ms (1 connection)',
    auditCell(present(a?.trailP99Ms) ? `${ms(a.trailP50Ms)} / ${ms(a.trailP99Ms)} at ${whole(a.trailEntries)} entries` : undefined),
    'p99 ≤ 5 ms at 1,000,000 entries',
    present(a?.trailP99Ms) ? a.trailP99Ms <= 5 : undefined,
    small ? ' (fewer entries than the target asks)' : '',
  );
  add(`audit: GET /audit/actions/{id} p99 ms (${a?.trailConnections ?? 8} connections)`, auditCell(present(a?.trailConcurrentP99Ms) ? ms(a.trailConcurrentP99Ms) : undefined));
  add('audit: Baton RSS MiB at the end', auditCell(present(a?.batonRssMiB) ? whole(a.batonRssMiB) : undefined));

  const f = floor?.data;
  const noSetup = (partResult, value) => ({ embedded: 'n/a', postgres: value ?? missing(partResult) });
  add('in-process floor: exchanges/s on one event loop (µs per exchange)', noSetup(floor, f && `${whole(f.perSecond)}/s (${f.usPerExchange.toFixed(0)} µs)`));
  const hop1 = exchangeRow(exchange, 'postgres', 'exchange hop 1');
  const floorRatio = present(hop1?.requestsPerSecond) && present(f?.perSecond) ? hop1.requestsPerSecond / f.perSecond : undefined;
  add('exchange hop 1 (postgres) ÷ in-process floor', noSetup(floorRatio === undefined ? undefined : floor, floorRatio === undefined ? undefined : ratio(floorRatio)), '≥ 0.60', floorRatio === undefined ? undefined : floorRatio >= 0.6);
  const p = peer?.data;
  add('node-oidc-provider client credentials: grants/s, p50 / p99 ms, RSS MiB (peer)', noSetup(peer, p && `${whole(p.requestsPerSecond)}/s, ${ms(p.p50)} / ${ms(p.p99)}, ${whole(p.rssMiB)}`));
  const ccPg = cc('postgres');
  const peerRatio = present(ccPg?.requestsPerSecond) && present(p?.requestsPerSecond) && p.requestsPerSecond > 0 ? ccPg.requestsPerSecond / p.requestsPerSecond : undefined;
  add('client credentials (postgres) ÷ node-oidc-provider', noSetup(peerRatio === undefined ? undefined : peer, peerRatio === undefined ? undefined : ratio(peerRatio)), '≥ 1.2', peerRatio === undefined ? undefined : peerRatio >= 1.2);
  return rows;
}

function table(rows) {
  return [
    '| measure | embedded | postgres | SPEC target | verdict (postgres) |',
    '| --- | ---: | ---: | --- | --- |',
    ...rows.map((r) => `| ${r.measure} | ${r.embedded} | ${r.postgres} | ${r.target} | ${r.verdict} |`),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const options = parseOptions();

  // Every part has its own time limit; this one bounds the whole in case this process itself hangs.
  const budgetMs = (options.quick ? 600_000 : 1_200_000) + options.entries * 0.6 + 12 * options.duration * 1000 * options.setups.length;
  setTimeout(() => {
    progress(`still running after ${Math.round(budgetMs / 1000)} s: giving up`);
    void runCleanups().finally(() => process.exit(1));
  }, budgetMs).unref();

  const started = performance.now();
  const loadAtStart = loadAverage();
  const idleAtStart = await idlePercent();
  progress(`load average ${loadAtStart}, ${idleAtStart}% CPU idle; parts: ${options.parts.join(', ')}`);
  if (idleAtStart < 90) progress(`warning: the machine is busy (${idleAtStart}% idle); figures will be low and noisy`);

  const workDir = await mkdtemp(join(tmpdir(), 'baton-bench-run-'));
  cleanups.push(() => rm(workDir, { recursive: true, force: true }));
  const results = {};
  try {
    for (const part of options.parts) {
      if (isStopping()) break;
      const partStarted = performance.now();
      results[part] = await runPart(part, options, workDir);
      progress(`${part}: ${results[part].ok ? 'done' : `FAILED (${results[part].error})`} in ${Math.round((performance.now() - partStarted) / 1000)} s`);
    }
  } finally {
    await runCleanups();
  }
  const loadAtEnd = loadAverage();

  print(`node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown CPU'}), ${process.platform}/${process.arch}`);
  print(`before the start: ${idleAtStart}% CPU idle, load average ${loadAtStart}; at the end: load average ${loadAtEnd}; ${Math.round((performance.now() - started) / 1000)} s in all`);
  print(
    `${options.quick ? '--quick (smoke run: the figures are not measurements); ' : ''}${options.duration} s per HTTP run, ${connections} connections, closed loop unless a rate is given; ` +
      `audit log of ${options.entries.toLocaleString('en-US')} entries; parts run one after another`,
  );
  print();
  print(table(buildRows(results, options)));
  print();
  print('- verdicts are on the postgres setup (the SPEC\'s: audit durable in a local PostgreSQL); embedded is for comparison');
  const failed = Object.entries(results).filter(([, r]) => !r.ok);
  for (const [part, r] of failed) print(`- part ${part} failed: ${r.error} (its output on stderr says why)`);
  if (failed.length > 0) process.exitCode = 1;
}

await main();
