// The two relative targets of the SPEC, each from its two sides measured in turns: Baton's
// exchange hop 1 ÷ the in-process floor of an exchange, and Baton's client-credentials grant ÷
// node-oidc-provider's. See bench/README.md ("Ratios, in turns").
//
//   npm run build && node bench/ratios.mjs [--ratios floor,peer] [--pairs 6] [--duration 5]
//
// Baton (on PostgreSQL), the floor's parts and the peer are started and warmed up once. Then, pair
// after pair, each ratio runs Baton's side and straight after it the other side, --duration
// seconds each (A B A B …). Each pair gives one ratio of two runs seconds apart; the report is the
// median of the pairs' ratios with the least and the greatest, so a swing in the machine's load
// moves a pair, not the verdict. It prints one markdown table, and exits non-zero if a request got
// no 2xx or a side failed.

import { join } from 'node:path';
import process from 'node:process';
import { prepareFloor } from './floor.mjs';
import { startOidcProvider } from './oidc-provider.mjs';
import { tokenLoad, tokenScenarios, tokenTarget } from './token-exchange.mjs';
import {
  benchDatabase,
  fixed,
  integerOption,
  limitRunTime,
  loadAverage,
  logTail,
  machineAtStart,
  machineLine,
  messageOf,
  print,
  progress,
  ratioWithSpread,
  readCommandLine,
  runCleanups,
  secondsOption,
  spread,
  startBatonSetup,
  whole,
  workFolder,
  writeJson,
} from './harness.mjs';

const root = join(import.meta.dirname, '..');
const database = benchDatabase('baton_bench_ratios');

/** Each ratio: Baton's scenario (bench/token-exchange.mjs) over the other side. */
const ratioSides = {
  floor: { baton: 'exchange hop 1', other: 'in-process floor' },
  peer: { baton: 'client credentials', other: 'node-oidc-provider' },
};
/** Baton's credentials are minted afresh for each run, but one run must stay well inside their 300 s. */
const maxDurationSeconds = 120;
const readyTimeoutMs = 60_000;
const stopTimeoutMs = 5_000;

const usage = `usage: node bench/ratios.mjs [options]      (after npm run build)

  --ratios LIST     floor, peer, or floor,peer (default): which ratios to take
  --pairs N         pairs of runs per ratio, 1 to 50 (default 6)
  --duration S      seconds of each run of each side, 0.5 to ${maxDurationSeconds} (default 5)
  --connections N   concurrent HTTP/1.1 connections of Baton's and the peer's runs (default 32)
  --warmup N        requests to Baton and to the peer before the first pair, not reported
                    (default 3000; at least --connections)
  --floor-warmup N  floor exchanges before the first pair, not timed (default 1000)
  --setup S         postgres (default), or none: the floor and the peer alone, no Baton, no ratio
  --json FILE       also write the figures to FILE as JSON (for bench/run.mjs)
`;

/** The command line, read once (bench/harness.mjs readCommandLine: --help, exit 2 on a bad option). */
function parseOptions() {
  const options = {
    ratios: { type: 'string', default: 'floor,peer' },
    pairs: { type: 'string', default: '6' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    warmup: { type: 'string', default: '3000' },
    'floor-warmup': { type: 'string', default: '1000' },
    setup: { type: 'string', default: 'postgres' },
    json: { type: 'string' },
  };
  return readCommandLine(usage, options, (values) => {
    const ratios = values.ratios
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name !== '');
    for (const name of ratios)
      if (!(name in ratioSides))
        throw new Error(
          `--ratios: unknown ratio ${JSON.stringify(name)} (ratios: ${Object.keys(ratioSides).join(', ')})`,
        );
    if (ratios.length === 0) throw new Error('--ratios names no ratio');
    if (!['postgres', 'none'].includes(values.setup))
      throw new Error(`--setup must be postgres or none (got ${JSON.stringify(values.setup)})`);
    return {
      ratios: Object.keys(ratioSides).filter((name) => ratios.includes(name)),
      pairs: integerOption('pairs', values.pairs, 1, 50),
      duration: secondsOption('duration', values.duration, maxDurationSeconds),
      connections: integerOption('connections', values.connections, 1, 1024),
      warmup: integerOption('warmup', values.warmup, 0, 1_000_000),
      floorWarmup: integerOption('floor-warmup', values['floor-warmup'], 0, 1_000_000),
      withBaton: values.setup === 'postgres',
      json: values.json,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// The sides. Each has `run()`, which measures it once and resolves with its figures, `perSecond`
// among them, and `warmUp()` unless it was warmed up as it started.

/** Baton's side: one scenario of its token endpoint flat out, with fresh credentials for each run. */
function batonSide(baton, endpoint, name, options) {
  const scenario = endpoint.scenarios.find((s) => s.name === name);
  const load = async (settings) => {
    const run = await tokenLoad(await tokenTarget(baton, endpoint, scenario), {
      connections: options.connections,
      ...settings,
    });
    if (run.failed > 0)
      throw new Error(
        `Baton ${name}: ${run.failed} requests without a 2xx; first: ${run.firstFailure}\nBaton's log without request lines (tail):\n${logTail(baton.log, { lines: 30, skipInfo: true })}`,
      );
    return { ...run, perSecond: run.requestsPerSecond };
  };
  return {
    label: `Baton ${name}`,
    warmUp: () => load({ amount: Math.max(options.warmup, options.connections) }),
    run: () => load({ duration: options.duration }),
  };
}

/** The in-process floor (bench/floor.mjs), in this process, for --duration seconds each run. */
async function floorSide(options) {
  const floor = await prepareFloor();
  return {
    label: 'in-process floor',
    warmUp: () => floor.run({ exchanges: options.floorWarmup }),
    run: () => floor.run({ seconds: options.duration }),
  };
}

/** node-oidc-provider (bench/oidc-provider.mjs), warmed up as it starts. */
async function peerSide(options) {
  const peer = await startOidcProvider({ connections: options.connections, warmup: options.warmup });
  return {
    label: 'node-oidc-provider',
    async run() {
      const run = await peer.run(options.duration);
      if (run.failed > 0)
        throw new Error(
          `node-oidc-provider: ${run.failed} requests without a 2xx; first: ${run.firstFailure}\nlog (tail):\n${logTail(peer.log)}`,
        );
      return { ...run, perSecond: run.requestsPerSecond };
    },
  };
}

/** Baton (unless --setup none) and the other side of each ratio, started and warmed up. */
async function startSides(options, workDir) {
  let baton;
  let endpoint;
  if (options.withBaton) {
    progress('starting Baton (postgres)');
    baton = await startBatonSetup({ root, setup: 'postgres', workDir, database, readyTimeoutMs, stopTimeoutMs });
    endpoint = await tokenScenarios(baton.url);
  }
  const ratios = [];
  for (const name of options.ratios) {
    const other = name === 'floor' ? await floorSide(options) : await peerSide(options);
    ratios.push({
      name,
      baton: baton === undefined ? undefined : batonSide(baton, endpoint, ratioSides[name].baton, options),
      other,
      pairs: [],
    });
  }
  for (const ratio of ratios) {
    for (const side of [ratio.baton, ratio.other]) {
      if (side?.warmUp === undefined) continue;
      progress(`${side.label}: warm-up`);
      await side.warmUp();
    }
  }
  return ratios;
}

// ---------------------------------------------------------------------------------------------
// In turns.

/** Pair after pair, each ratio's Baton side and straight after it its other side (A B A B …); each pair's ratio is A's rate ÷ B's. */
async function alternate(ratios, options) {
  for (let pair = 1; pair <= options.pairs; pair += 1) {
    for (const ratio of ratios) {
      progress(
        `${ratio.name}, pair ${pair} of ${options.pairs}: ${ratio.baton === undefined ? '' : `${ratio.baton.label}, then `}${ratio.other.label}, ${options.duration} s each (load average ${loadAverage()})`,
      );
      const baton = await ratio.baton?.run();
      const other = await ratio.other.run();
      ratio.pairs.push({ baton, other, ratio: baton === undefined ? undefined : baton.perSecond / other.perSecond });
    }
  }
}

/** A side's figures over its runs: the median of each, and the last run's memory. */
function sideSummary(runs) {
  const median = (name) =>
    runs.every((run) => typeof run[name] === 'number') ? spread(runs.map((run) => run[name])).median : undefined;
  return {
    perSecond: spread(runs.map((run) => run.perSecond)),
    p50: median('p50'),
    p99: median('p99'),
    batonCpuUs: median('batonCpuUs'),
    usPerExchange: median('usPerExchange'),
    rssMiB: runs.at(-1)?.rssMiB,
  };
}

/** One ratio as bench/run.mjs reads it. */
function summary(ratio) {
  const done = ratio.pairs;
  return {
    baton:
      ratio.baton === undefined || done.length === 0
        ? null
        : { scenario: ratioSides[ratio.name].baton, ...sideSummary(done.map((p) => p.baton)) },
    other: done.length === 0 ? null : { label: ratio.other.label, ...sideSummary(done.map((p) => p.other)) },
    ratio: ratio.baton === undefined || done.length === 0 ? null : spread(done.map((p) => p.ratio)),
    pairs: done.map((p) => ({ baton: p.baton?.perSecond ?? null, other: p.other.perSecond, ratio: p.ratio ?? null })),
  };
}

// ---------------------------------------------------------------------------------------------
// Report.

/** One row per pair, a column for each side's rate and each ratio, then the medians. */
function table(ratios, summaries, options) {
  const columns = ratios.flatMap((ratio) => [
    ...(ratio.baton === undefined ? [] : [`${ratio.baton.label} (/s)`]),
    `${ratio.other.label} (/s)`,
    ...(ratio.baton === undefined ? [] : ['÷']),
  ]);
  const cells = (pair) =>
    ratios.flatMap((ratio) => {
      const p = summaries[ratio.name].pairs[pair];
      return [
        ...(ratio.baton === undefined ? [] : [whole(p?.baton)]),
        whole(p?.other),
        ...(ratio.baton === undefined ? [] : [fixed(p?.ratio ?? undefined)]),
      ];
    });
  const medians = ratios.flatMap((ratio) => {
    const s = summaries[ratio.name];
    return [
      ...(ratio.baton === undefined ? [] : [whole(s.baton?.perSecond.median)]),
      whole(s.other?.perSecond.median),
      ...(ratio.baton === undefined ? [] : [s.ratio === null ? '-' : ratioWithSpread(s.ratio)]),
    ];
  });
  return [
    `| pair | ${columns.join(' | ')} |`,
    `| --- | ${columns.map(() => '---:').join(' | ')} |`,
    ...Array.from({ length: options.pairs }, (_, pair) => `| ${pair + 1} | ${cells(pair).join(' | ')} |`),
    `| median | ${medians.join(' | ')} |`,
  ].join('\n');
}

function printReport(ratios, summaries, options, machine) {
  print(machineLine());
  print(`${machine.idleText}, load average ${machine.load}; at the end: load average ${loadAverage()}`);
  print(
    `${options.pairs} pairs, ${options.duration} s per run of each side, Baton's side first; ${options.connections} connections, closed loop${options.withBaton ? '; Baton on PostgreSQL' : '; no Baton (--setup none)'}`,
  );
  print();
  print(table(ratios, summaries, options));
  print();
  for (const ratio of ratios) {
    const s = summaries[ratio.name].ratio;
    if (s !== null) print(`- ${ratioSides[ratio.name].baton} ÷ ${ratio.other.label}: ${ratioWithSpread(s)}`);
  }
}

async function main() {
  const options = parseOptions();
  // Start-up of Baton and the peer, warm-ups, every run, clean-up.
  limitRunTime(
    2 * readyTimeoutMs + 120_000 + options.pairs * options.ratios.length * 2 * (options.duration * 1000 + 20_000),
  );

  const machine = await machineAtStart();
  progress(`load average ${machine.load}; ${machine.idleText}`);
  let ratios = [];
  try {
    ratios = await startSides(options, await workFolder('baton-bench-ratios-'));
    await alternate(ratios, options);
  } catch (error) {
    process.exitCode = 1;
    progress(`failed: ${messageOf(error)}`);
  } finally {
    await runCleanups();
  }

  const summaries = Object.fromEntries(ratios.map((ratio) => [ratio.name, summary(ratio)]));
  if (ratios.length > 0) printReport(ratios, summaries, options, machine);
  writeJson(options.json, {
    pairs: options.pairs,
    duration: options.duration,
    withBaton: options.withBaton,
    ratios: summaries,
  });
}

await main();
