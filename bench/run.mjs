// The one benchmark command: `npm run bench` (builds, then runs this). See bench/README.md.
//
//   npm run bench -- [--quick] [--duration 10] [--entries 1000000] [--setup both] [--only PARTS] [--pairs 6] [--pair-duration 5]
//
// Runs every part one after another, never two loads at once (the machine has 2 cores):
//   floor          the in-process floor of an exchange, in turns with Baton's exchange hop 1 (bench/ratios.mjs)
//   peer           node-oidc-provider's client-credentials grant, in turns with Baton's (bench/ratios.mjs)
//   exchange       POST /oauth2/token flat out: exchange hop 1, hop 2, client credentials (bench/token-exchange.mjs)
//   exchange-rate  exchange hop 1 and hop 2 at a fixed 1,000/s (bench/token-exchange.mjs --rate 1000)
//   authorize      POST /authorize flat out and at 2,000/s (bench/authorize.mjs)
//   audit          appends, verification, GET /audit/actions/{id} (bench/audit.mjs, PostgreSQL only)
// Each script runs as a child process and writes its figures to a JSON file (--json); their own
// tables and progress go to stderr. This prints one markdown table on stdout, with every SPEC
// target met or not, and exits 1 if any part failed (not for a missed target), 2 on bad options.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  cleanups,
  fixed,
  idlePercent,
  integerOption,
  isStopping,
  limitRunTime,
  loadAverage,
  machineLine,
  messageOf,
  present,
  print,
  progress,
  ratioWithSpread,
  readCommandLine,
  runCleanups,
  secondsOption,
  setupsOption,
  whole,
  workFolder,
} from './harness.mjs';

const root = join(import.meta.dirname, '..');
const allParts = ['floor', 'exchange', 'peer', 'exchange-rate', 'authorize', 'audit'];
const connections = 32;
const exchangeRate = 1000;
const authorizeRate = 2000;
const millionEntries = 1_000_000;

const usage = `usage: npm run bench -- [options]      (or node bench/run.mjs after npm run build)

  --quick            smoke run: 0.5 s runs, 2 pairs, 10000 audit entries, few calls
  --duration N       seconds per measured HTTP run, 0.5 to 120 (default 10; 0.5 with --quick)
  --pairs N          pairs of runs behind each ratio, 1 to 50 (default 6; 2 with --quick)
  --pair-duration N  seconds of each run of a pair, 0.5 to 120 (default 5; 0.5 with --quick)
  --entries N        audit log size for verification and GET /audit/actions (default 1000000; 10000 with --quick)
  --setup S          embedded, postgres or both (default both); the audit part and the ratios need postgres
  --only PARTS       comma-separated subset of: ${allParts.join(', ')}
`;

/** The command line, read once (bench/harness.mjs readCommandLine: --help, exit 2 on a bad option). */
function parseOptions() {
  const options = {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    pairs: { type: 'string' },
    'pair-duration': { type: 'string' },
    entries: { type: 'string' },
    setup: { type: 'string', default: 'both' },
    only: { type: 'string' },
  };
  return readCommandLine(usage, options, (values) => {
    const setups = setupsOption(values.setup);
    const only =
      values.only === undefined
        ? allParts
        : values.only
            .split(',')
            .map((part) => part.trim())
            .filter((part) => part !== '');
    for (const part of only)
      if (!allParts.includes(part))
        throw new Error(`--only: unknown part ${JSON.stringify(part)} (parts: ${allParts.join(', ')})`);
    const quick = values.quick;
    return {
      quick,
      duration: secondsOption('duration', values.duration, 120, quick ? 0.5 : 10),
      pairs: integerOption('pairs', values.pairs, 1, 50, quick ? 2 : 6),
      pairDuration: secondsOption('pair-duration', values['pair-duration'], 120, quick ? 0.5 : 5),
      entries: integerOption('entries', values.entries, 10_000, 50_000_000, quick ? 10_000 : millionEntries),
      setup: values.setup,
      setups,
      parts: allParts.filter((part) => only.includes(part) && !(part === 'audit' && values.setup === 'embedded')),
      // Requests before each measured HTTP run (the scripts' own defaults unless --quick).
      warmup: quick ? ['--warmup', '100'] : [],
      // Other tokens revoked before /authorize runs flat out once more (issue: at most 10 % slower).
      revoked: quick ? 1000 : 100_000,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Running the parts.

/**
 * The scripts' bench databases get a suffix of this run's own, so runs sharing a PostgreSQL server
 * never drop each other's; BENCH_RUNNER tells them the machine's state before the start is this
 * run's (harness.mjs machineAtStart), so they spend no second sampling it again.
 */
const childEnv = { ...process.env, BENCH_DATABASE_SUFFIX: `_run${process.pid}`, BENCH_RUNNER: String(process.pid) };

/**
 * Runs `node bench/<script> ...args --json FILE` and resolves with `{ ok, data, error }` once it
 * has exited. Its stdout (its own table) and stderr (progress) both go to this process's stderr;
 * it is stopped (SIGTERM, then SIGKILL 30 s later) after `timeoutMs`, or on Ctrl-C.
 */
async function runScript(name, script, args, workDir, timeoutMs) {
  const file = join(workDir, `${name.replaceAll(/[^a-z]+/g, '-')}.json`);
  progress(`${name}: node bench/${script} ${args.join(' ')}`);
  const child = spawn(process.execPath, [join(root, 'bench', script), ...args, '--json', file], {
    cwd: root,
    env: childEnv,
    stdio: ['ignore', 2, 2],
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // The script cleans up on SIGTERM (its Baton, its database) and exits. The timer is unref'd, so
    // it does not keep this process alive once the script is gone.
    child.kill('SIGTERM');
    if ((await Promise.race([exited, sleep(30_000, 'timeout', { ref: false })])) === 'timeout') {
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
    progress(`${name}: unreadable results: ${messageOf(error)}`);
  }
  const ok = code === 0 && data !== undefined;
  const error = timedOut
    ? 'timed out'
    : code !== 0
      ? signal === null
        ? `exit code ${code}`
        : `signal ${signal}`
      : data === undefined
        ? 'wrote no results'
        : undefined;
  return { ok, data, error };
}

/** The setup of the fixed-rate exchange run. */
const rateSetup = (options) => (options.setups.includes('postgres') ? 'postgres' : 'embedded');

/**
 * The steps, in the order they run, each measuring one or more parts. The ratios come first, the
 * floor's and the peer's in one script, which starts one Baton on PostgreSQL for both; without
 * PostgreSQL (--setup embedded) it measures the floor and the peer alone.
 */
const steps = [
  {
    parts: ['floor', 'peer'],
    run: (parts, options, workDir) => {
      const args = [
        '--ratios',
        parts.join(','),
        '--pairs',
        String(options.pairs),
        '--duration',
        String(options.pairDuration),
        '--setup',
        options.setups.includes('postgres') ? 'postgres' : 'none',
        ...options.warmup,
        ...(options.quick ? ['--floor-warmup', '200'] : []),
      ];
      return runScript(
        parts.join(', '),
        'ratios.mjs',
        args,
        workDir,
        300_000 + options.pairs * parts.length * 2 * (options.pairDuration * 1000 + 20_000),
      );
    },
  },
  {
    parts: ['exchange'],
    run: (parts, options, workDir) =>
      runScript(
        'exchange',
        'token-exchange.mjs',
        ['--setup', options.setup, '--duration', String(options.duration), ...options.warmup],
        workDir,
        options.setups.length * (90_000 + 3 * (options.duration * 1000 + 60_000)),
      ),
  },
  {
    parts: ['exchange-rate'],
    // On PostgreSQL only, the SPEC's setup (unless --setup embedded): the embedded setup does not reach 1,000 exchanges/s, so its p99 there would be queueing.
    run: (parts, options, workDir) =>
      runScript(
        'exchange-rate',
        'token-exchange.mjs',
        [
          '--setup',
          rateSetup(options),
          '--duration',
          String(options.duration),
          ...options.warmup,
          '--rate',
          String(exchangeRate),
          '--only',
          'exchange hop',
        ],
        workDir,
        90_000 + 2 * (options.duration * 1000 + 60_000),
      ),
  },
  {
    parts: ['authorize'],
    run: (parts, options, workDir) =>
      runScript(
        'authorize',
        'authorize.mjs',
        [
          '--setup',
          options.setup,
          '--duration',
          String(options.duration),
          ...options.warmup,
          '--rate',
          String(authorizeRate),
          '--revoked',
          String(options.revoked),
          ...(options.quick ? ['--calls', '500'] : []),
        ],
        workDir,
        120_000 + options.setups.length * (90_000 + 3 * (options.duration * 1000 + 60_000)),
      ),
  },
  {
    parts: ['audit'],
    run: (parts, options, workDir) =>
      runScript(
        'audit',
        'audit.mjs',
        [...(options.quick ? ['--quick'] : []), '--entries', String(options.entries)],
        workDir,
        (options.quick ? 300_000 : 600_000) + options.entries * 0.6,
      ),
  },
];

/** Runs the steps that measure a part asked for, one after another; resolves with each part's `{ ok, data, error }`. */
async function runSteps(options, workDir) {
  const results = {};
  for (const step of steps) {
    const parts = step.parts.filter((part) => options.parts.includes(part));
    if (parts.length === 0) continue;
    if (isStopping()) break;
    const started = performance.now();
    const result = await step.run(parts, options, workDir);
    for (const part of parts) results[part] = result;
    progress(
      `${parts.join(', ')}: ${result.ok ? 'done' : `FAILED (${result.error})`} in ${Math.round((performance.now() - started) / 1000)} s`,
    );
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// The table: one row per measure, a column per setup, the SPEC target and the verdict on postgres.

const verdict = (ok) => (ok === undefined ? '-' : ok ? 'met' : '**not met**');
/** What a cell says when its part gave no figure: not run, failed, or `-` if it ran and gave none. */
const missing = (partResult) => (partResult === undefined ? 'not run' : partResult.ok ? '-' : 'failed');
/** One row of the table. */
const row = (measure, cells, target = '-', ok = undefined, note = '') => ({
  measure,
  ...cells,
  target,
  verdict: `${verdict(ok)}${note}`,
});
/** A cell per setup: `cell(setup)`, or why there is none; `not run` for a setup left out. */
const bySetup = (partResult, cell, setups) =>
  Object.fromEntries(
    ['embedded', 'postgres'].map((setup) => [
      setup,
      setups.includes(setup) ? (cell(setup) ?? missing(partResult)) : 'not run',
    ]),
  );
/** The cells of a measure without an embedded figure (the audit part, the floor, the peer, the ratios). */
const postgresOnly = (partResult, value) => ({ embedded: 'n/a', postgres: value ?? missing(partResult) });
/** Whether a fixed-rate run achieved at least 95 % of the rate asked (otherwise its p99 is queueing). */
const sustained = (run, asked) => present(run?.requestsPerSecond) && run.requestsPerSecond >= 0.95 * asked;

/** Token exchange hop 1 and hop 2, flat out and at a fixed rate; the client-credentials grant; Baton's CPU and RSS. */
function tokenEndpointRows({ exchange, 'exchange-rate': rate }, options) {
  const scenarioRow = (partResult, setup, scenario) =>
    partResult?.data?.rows?.find((r) => r.setup === setup && r.scenario === scenario);
  const lastRow = (partResult, setup) => partResult?.data?.rows?.filter((r) => r.setup === setup).at(-1);
  const rows = [];
  for (const [hop, scenario] of [
    ['hop 1', 'exchange hop 1'],
    ['hop 2', 'exchange hop 2'],
  ]) {
    const flat = (setup) => scenarioRow(exchange, setup, scenario);
    const fixedRate = (setup) => scenarioRow(rate, setup, scenario);
    const pg = flat('postgres');
    const pgFixed = fixedRate('postgres');
    rows.push(
      row(
        `token exchange ${hop}: exchanges/s (flat out)`,
        bySetup(exchange, (s) => flat(s) && `${whole(flat(s).requestsPerSecond)}/s`, options.setups),
        '≥ 2,000/s',
        present(pg?.requestsPerSecond) ? pg.requestsPerSecond >= 2000 : undefined,
      ),
      row(
        `token exchange ${hop}: p50 / p99 ms (flat out)`,
        bySetup(exchange, (s) => flat(s) && `${fixed(flat(s).p50)} / ${fixed(flat(s).p99)}`, options.setups),
      ),
      row(
        `token exchange ${hop}: p99 ms at ${whole(exchangeRate)}/s (achieved/s)`,
        bySetup(
          rate,
          (s) => fixedRate(s) && `${fixed(fixedRate(s).p99)} (${whole(fixedRate(s).requestsPerSecond)}/s)`,
          [rateSetup(options)],
        ),
        `p99 ≤ 25 ms at ${whole(exchangeRate)}/s`,
        pgFixed === undefined ? undefined : pgFixed.p99 <= 25 && sustained(pgFixed, exchangeRate),
        pgFixed !== undefined && !sustained(pgFixed, exchangeRate) ? ' (rate not sustained: p99 is queueing)' : '',
      ),
    );
  }
  const cc = (setup) => scenarioRow(exchange, setup, 'client credentials');
  rows.push(
    row(
      'client-credentials grant: grants/s (flat out)',
      bySetup(exchange, (s) => cc(s) && `${whole(cc(s).requestsPerSecond)}/s`, options.setups),
      '≥ 1.2× peer (ratio below)',
    ),
    row(
      'client-credentials grant: p50 / p99 ms (flat out)',
      bySetup(exchange, (s) => cc(s) && `${fixed(cc(s).p50)} / ${fixed(cc(s).p99)}`, options.setups),
    ),
    row(
      'token endpoint: Baton CPU µs per request (hop 1 / hop 2 / client credentials)',
      bySetup(
        exchange,
        (s) =>
          lastRow(exchange, s) === undefined
            ? undefined
            : ['exchange hop 1', 'exchange hop 2', 'client credentials']
                .map((n) => whole(scenarioRow(exchange, s, n)?.batonCpuUs))
                .join(' / '),
        options.setups,
      ),
    ),
    row(
      `token endpoint: Baton RSS MiB at the end (flat-out run / ${whole(exchangeRate)}/s run)`,
      bySetup(
        exchange ?? rate,
        (s) => {
          const flatRss = lastRow(exchange, s)?.rssMiB;
          const fixedRss = lastRow(rate, s)?.rssMiB;
          return flatRss === undefined && fixedRss === undefined ? undefined : `${whole(flatRss)} / ${whole(fixedRss)}`;
        },
        options.setups,
      ),
    ),
  );
  return rows;
}

/** POST /authorize: flat out, at a fixed rate, with other tokens revoked, with a new amount each time; CPU and RSS. */
function authorizeRows({ authorize }, options) {
  const auth = (setup) => authorize?.data?.rows?.find((r) => r.setup === setup);
  const cells = (cell) => bySetup(authorize, cell, options.setups);
  const pgAuth = auth('postgres');
  const revokedRatio =
    present(pgAuth?.flatRevoked?.requestsPerSecond) && present(pgAuth?.flat?.requestsPerSecond)
      ? pgAuth.flatRevoked.requestsPerSecond / pgAuth.flat.requestsPerSecond
      : undefined;
  return [
    row(
      '/authorize: decisions/s (flat out)',
      cells((s) => auth(s)?.flat && `${whole(auth(s).flat.requestsPerSecond)}/s`),
      '≥ 4,000/s',
      present(pgAuth?.flat?.requestsPerSecond) ? pgAuth.flat.requestsPerSecond >= 4000 : undefined,
    ),
    row(
      '/authorize: p50 / p99 ms (flat out)',
      cells((s) => auth(s)?.flat && `${fixed(auth(s).flat.p50)} / ${fixed(auth(s).flat.p99)}`),
    ),
    row(
      `/authorize: p99 ms at ${whole(authorizeRate)}/s (achieved/s)`,
      cells((s) => auth(s)?.rated && `${fixed(auth(s).rated.p99)} (${whole(auth(s).rated.requestsPerSecond)}/s)`),
      `p99 ≤ 10 ms at ${whole(authorizeRate)}/s`,
      pgAuth?.rated === undefined ? undefined : pgAuth.rated.p99 <= 10 && sustained(pgAuth.rated, authorizeRate),
      pgAuth?.rated !== undefined && !sustained(pgAuth.rated, authorizeRate)
        ? ' (rate not sustained: p99 is queueing)'
        : '',
    ),
    row(
      `/authorize: decisions/s with ${whole(options.revoked)} other tokens revoked (÷ without)`,
      postgresOnly(
        authorize,
        pgAuth?.flatRevoked && `${whole(pgAuth.flatRevoked.requestsPerSecond)}/s (${fixed(revokedRatio)})`,
      ),
      '≥ 0.90 of the rate without',
      revokedRatio === undefined ? undefined : revokedRatio >= 0.9,
    ),
    row(
      '/authorize: decisions/s, a new amount in every request (flat out)',
      cells((s) => auth(s)?.flatFresh && `${whole(auth(s).flatFresh.requestsPerSecond)}/s`),
    ),
    row(
      '/authorize: Baton CPU µs per decision (flat out: same request / a new amount in each)',
      cells(
        (s) =>
          auth(s)?.flat &&
          `${whole(auth(s).flat.batonCpuUsPerDecision)} / ${whole(auth(s).flatFresh?.batonCpuUsPerDecision)}`,
      ),
    ),
    row(
      '/authorize: Baton RSS MiB at the end (peak)',
      cells((s) => auth(s)?.memory && `${whole(auth(s).memory.rss)} (${whole(auth(s).memory.peak)})`),
    ),
  ];
}

/** The audit log on PostgreSQL: appends, verification, the action trail at the log size reached, Baton's RSS. */
function auditRows({ audit }) {
  const a = audit?.data;
  const cell = (value) => postgresOnly(audit, value);
  const small = present(a?.trailEntries) && a.trailEntries < millionEntries;
  return [
    row(
      'audit: appends/s (group-commit writer, 512 in flight)',
      cell(present(a?.appendsPerSecond) ? `${whole(a.appendsPerSecond)}/s` : undefined),
      '≥ 20,000/s',
      present(a?.appendsPerSecond) ? a.appendsPerSecond >= 20_000 : undefined,
    ),
    row(
      'audit: verification entries/s (reader.verify over the whole log)',
      cell(present(a?.verifyPerSecond) ? `${whole(a.verifyPerSecond)}/s over ${whole(a.verifiedEntries)}` : undefined),
      '≥ 200,000/s',
      present(a?.verifyPerSecond) ? a.verifyPerSecond >= 200_000 : undefined,
    ),
    row(
      'audit: GET /audit/actions/{id} p50 / p99 ms (1 connection)',
      cell(
        present(a?.trailP99Ms)
          ? `${fixed(a.trailP50Ms)} / ${fixed(a.trailP99Ms)} at ${whole(a.trailEntries)} entries`
          : undefined,
      ),
      'p99 ≤ 5 ms at 1,000,000 entries',
      present(a?.trailP99Ms) ? a.trailP99Ms <= 5 : undefined,
      small ? ' (fewer entries than the target asks)' : '',
    ),
    row(
      `audit: GET /audit/actions/{id} p99 ms (${a?.trailConnections ?? 8} connections)`,
      cell(present(a?.trailConcurrentP99Ms) ? fixed(a.trailConcurrentP99Ms) : undefined),
    ),
    row('audit: Baton RSS MiB at the end', cell(present(a?.batonRssMiB) ? whole(a.batonRssMiB) : undefined)),
  ];
}

/**
 * The floor and the peer, each with its ratio (bench/ratios.mjs): the median of the pairs' ratios
 * with the least and the greatest; the verdict is on the median. Without PostgreSQL there is no
 * ratio (the floor and the peer are measured alone).
 */
function ratioRows({ floor, peer }, options) {
  const f = floor?.data?.ratios?.floor;
  const p = peer?.data?.ratios?.peer;
  const ratioCell = (partResult, r) => ({
    embedded: 'n/a',
    postgres: r?.ratio
      ? ratioWithSpread(r.ratio)
      : options.setups.includes('postgres')
        ? missing(partResult)
        : 'not run',
  });
  return [
    row(
      'in-process floor: exchanges/s on one event loop (µs per exchange)',
      postgresOnly(
        floor,
        f?.other && `${whole(f.other.perSecond.median)}/s (${fixed(1e6 / f.other.perSecond.median, 0)} µs)`,
      ),
    ),
    row(
      'exchange hop 1 (postgres) ÷ in-process floor',
      ratioCell(floor, f),
      '≥ 0.60',
      f?.ratio ? f.ratio.median >= 0.6 : undefined,
    ),
    row(
      'node-oidc-provider client credentials: grants/s, p50 / p99 ms, RSS MiB (peer)',
      postgresOnly(
        peer,
        p?.other &&
          `${whole(p.other.perSecond.median)}/s, ${fixed(p.other.p50)} / ${fixed(p.other.p99)}, ${whole(p.other.rssMiB)}`,
      ),
    ),
    row(
      'client credentials (postgres) ÷ node-oidc-provider',
      ratioCell(peer, p),
      '≥ 1.2',
      p?.ratio ? p.ratio.median >= 1.2 : undefined,
    ),
  ];
}

function table(rows) {
  return [
    '| measure | embedded | postgres | SPEC target | verdict (postgres) |',
    '| --- | ---: | ---: | --- | --- |',
    ...rows.map((r) => `| ${r.measure} | ${r.embedded} | ${r.postgres} | ${r.target} | ${r.verdict} |`),
  ].join('\n');
}

function printReport(results, options, machine) {
  print(machineLine());
  print(
    `before the start: ${machine.idleAtStart}% CPU idle, load average ${machine.loadAtStart}; at the end: load average ${loadAverage()}; ${Math.round((performance.now() - machine.started) / 1000)} s in all`,
  );
  print(
    `${options.quick ? '--quick (smoke run: the figures are not measurements); ' : ''}${options.duration} s per HTTP run, ${connections} connections, closed loop unless a rate is given; ` +
      `ratios over ${options.pairs} pairs of ${options.pairDuration} s runs, the two sides in turns; audit log of ${whole(options.entries)} entries; parts run one after another`,
  );
  print();
  print(
    table([
      ...tokenEndpointRows(results, options),
      ...authorizeRows(results, options),
      ...auditRows(results),
      ...ratioRows(results, options),
    ]),
  );
  print();
  print(
    "- verdicts are on the postgres setup (the SPEC's: audit durable in a local PostgreSQL); embedded is for comparison",
  );
  print(
    '- a ratio is the median of its pairs (least–greatest): in each pair Baton ran, then straight after it the floor or the peer',
  );
  for (const [part, r] of Object.entries(results))
    if (!r.ok) print(`- part ${part} failed: ${r.error} (its output on stderr says why)`);
}

// ---------------------------------------------------------------------------------------------

/** The bound on the whole run, in case this process itself hangs (each part has its own). */
const runBudgetMs = (options) =>
  (options.quick ? 600_000 : 1_200_000) +
  options.entries * 0.6 +
  12 * options.duration * 1000 * options.setups.length +
  options.pairs * 4 * (options.pairDuration * 1000 + 20_000);

async function main() {
  const options = parseOptions();
  limitRunTime(runBudgetMs(options));

  const machine = { started: performance.now(), loadAtStart: loadAverage(), idleAtStart: await idlePercent() };
  progress(`load average ${machine.loadAtStart}, ${machine.idleAtStart}% CPU idle; parts: ${options.parts.join(', ')}`);
  if (machine.idleAtStart < 90)
    progress(`warning: the machine is busy (${machine.idleAtStart}% idle); figures will be low and noisy`);

  let results;
  try {
    results = await runSteps(options, await workFolder('baton-bench-run-'));
  } finally {
    await runCleanups();
  }
  printReport(results, options, machine);
  if (Object.values(results).some((r) => !r.ok)) process.exitCode = 1;
}

await main();
