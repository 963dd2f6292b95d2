// Load benchmark for Baton's token endpoint (RFC 8693 token exchange); see bench/README.md.
//
//   npm run bench:exchange -- [--setup embedded|postgres|both] [--duration 10] [--connections 32] [--rate 1000] [--cpu-prof DIR]
//
// For each setup it starts Baton as a child process on 127.0.0.1, prepares credentials once so
// every request body is constant, drives POST /oauth2/token with autocannon for a fixed time and
// prints one markdown table. It exits non-zero if any request did not get a 2xx. bench/ratios.mjs
// takes its scenarios (`tokenScenarios`, `tokenTarget`) to measure them in turns with the floor
// and the peer.

// The repo's eslint config declares no runtime globals (it is written for the TypeScript in src/);
// everything importable is imported below.

import { join, resolve } from 'node:path';
import process from 'node:process';
import { URLSearchParams, fileURLToPath } from 'node:url';
import { demoSecret, mintAgentAssertion, mintUserToken } from '../dist/cli/demo-kit.js';
import { loadRun } from './load.mjs';
import { profileReport, summarizeProfiles } from './profile.mjs';
import {
  basicAuthorization,
  benchDatabase,
  fixed,
  integerOption,
  limitRunTime,
  logTail,
  machineAtStart,
  machineLine,
  messageOf,
  print,
  processMemory,
  progress,
  readCommandLine,
  runCleanups,
  secondsOption,
  setupsOption,
  startBatonSetup,
  tokenEndpoint,
  postToken,
  whole,
  withCleanups,
  workFolder,
  writeJson,
} from './harness.mjs';

const root = join(import.meta.dirname, '..');
const database = benchDatabase('baton_bench');

const grants = {
  tokenExchange: 'urn:ietf:params:oauth:grant-type:token-exchange',
  clientCredentials: 'client_credentials',
};
const tokenTypes = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
};
const jwtBearer = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Baton's tokens live at most 300 s and are minted just before each run, so a run must end well before. */
const maxDurationSeconds = 240;
/**
 * Requests sent before each measured run (JIT, connection pools, PGlite caches); not reported. A
 * fresh Baton reaches its steady state (V8 and cedar-wasm compiled to their optimized tiers) only
 * after a few thousand requests: after 500, hop 1's p99 at 1,000/s measured 14–18 ms, after
 * 3,000 10–11 ms.
 */
const warmupRequests = 3000;
const readyTimeoutMs = 60_000;
const stopTimeoutMs = 5_000;

const usage = `usage: npm run bench:exchange -- [--setup embedded|postgres|both] [--duration SECONDS] [--connections N] [--rate REQUESTS_PER_SECOND]

  --setup        which database Baton uses: embedded (PGlite), postgres, or both (default both)
  --duration     seconds per measured run, 0.5 to ${maxDurationSeconds} (default 10)
  --connections  concurrent HTTP/1.1 connections (default 32)
  --rate         fixed overall request rate instead of as fast as possible (optional)
  --workers N    BATON_WORKERS for the postgres setup: N processes behind one port (default 1)
  --only NAME    run only the scenarios whose name contains NAME (exchange hop 1, exchange hop 2, client credentials)
  --json FILE    also write the rows to FILE as JSON (for bench/run.mjs)
  --warmup N     requests before each measured run, not reported (default 3000; at least --connections)
  --cpu-prof DIR run Baton with --cpu-prof, keep its profiles in DIR and print the top
                 self-time functions (the profiler slows Baton: do not report those figures)
`;

/** The command line, read once (bench/harness.mjs readCommandLine: --help, exit 2 on a bad option). */
function parseOptions() {
  const options = {
    setup: { type: 'string', default: 'both' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    rate: { type: 'string' },
    'cpu-prof': { type: 'string' },
    only: { type: 'string' },
    workers: { type: 'string', default: '1' },
    json: { type: 'string' },
    warmup: { type: 'string' },
  };
  return readCommandLine(usage, options, (values) => {
    return {
      setups: setupsOption(values.setup),
      duration: secondsOption('duration', values.duration, maxDurationSeconds),
      connections: integerOption('connections', values.connections, 1, 1024),
      rate: values.rate === undefined ? undefined : integerOption('rate', values.rate, 1, 1_000_000),
      cpuProfDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
      only: values.only,
      workers: integerOption('workers', values.workers, 1, 64),
      json: values.json,
      warmup: integerOption('warmup', values.warmup, 0, 1_000_000, warmupRequests),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Credentials, prepared once per scenario so each request body is constant.

/**
 * The scenarios of Baton's token endpoint at `baseUrl`: each `params()` mints fresh credentials
 * and resolves with the form of its request (client agent-platform authenticates with HTTP Basic).
 */
export async function tokenScenarios(baseUrl) {
  const { issuer, tokenPath } = await tokenEndpoint(baseUrl);
  const authorization = basicAuthorization('agent-platform', demoSecret('agent-platform'));
  const post = (params, auth) => postToken(baseUrl, tokenPath, params, auth);

  /** An agent's own token for Baton: client_credentials, the agent authenticating with private_key_jwt. */
  const agentToken = async (agent) => {
    const body = await post({
      grant_type: grants.clientCredentials,
      client_assertion_type: jwtBearer,
      client_assertion: await mintAgentAssertion(agent, issuer),
    });
    return body.access_token;
  };
  const aliceToken = () =>
    mintUserToken('alice', { audience: issuer, lifetimeSeconds: 3600, scope: 'payments:read payments:transfer' });

  const hop1Params = async () => ({
    grant_type: grants.tokenExchange,
    subject_token: await aliceToken(),
    subject_token_type: tokenTypes.jwt,
    actor_token: await agentToken('orchestrator'),
    actor_token_type: tokenTypes.accessToken,
    audience: 'payments',
    scope: 'payments:read payments:transfer',
  });
  const hop2Params = async () => {
    // One real hop-1 exchange gives the token the payments sub-agent is handed.
    const token1 = (await post(await hop1Params(), authorization)).access_token;
    return {
      grant_type: grants.tokenExchange,
      subject_token: token1,
      subject_token_type: tokenTypes.accessToken,
      actor_token: await agentToken('payments-subagent'),
      actor_token_type: tokenTypes.accessToken,
      scope: 'payments:transfer',
    };
  };

  return {
    tokenPath,
    authorization,
    scenarios: [
      { name: 'exchange hop 1', params: hop1Params },
      { name: 'exchange hop 2', params: hop2Params },
      // The request node-oidc-provider is measured with (bench/oidc-provider.mjs): a confidential
      // client, Basic authentication, one resource, one scope; Baton also audits it.
      {
        name: 'client credentials',
        params: async () => ({
          grant_type: grants.clientCredentials,
          resource: 'https://payments.example',
          scope: 'payments:read',
        }),
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Load.

/** A load target for one scenario on `baton` (from startBatonSetup), with fresh credentials. */
export async function tokenTarget(baton, { tokenPath, authorization }, scenario) {
  return {
    url: baton.url,
    pid: baton.pid,
    exited: baton.exited,
    label: 'Baton',
    path: tokenPath,
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
    body: new URLSearchParams(await scenario.params()).toString(),
  };
}

/** One load run against the token endpoint (bench/load.mjs), with Baton's CPU per request. */
export async function tokenLoad(target, options) {
  const run = await loadRun(target, options);
  return { ...run, batonCpuUs: run.serverCpuUs };
}

async function benchSetup(setup, options, workDir, rows, profiles) {
  progress(`${setup}: starting Baton`);
  const baton = await startBatonSetup({
    root,
    setup,
    workDir,
    database,
    cpuProfDir: options.cpuProfDir,
    settings: setup === 'postgres' ? { BATON_WORKERS: String(options.workers) } : {},
    readyTimeoutMs,
    stopTimeoutMs,
  });
  const endpoint = await tokenScenarios(baton.url);
  for (const scenario of endpoint.scenarios.filter(
    (s) => options.only === undefined || s.name.includes(options.only),
  )) {
    // Fresh credentials per scenario, so none is older than one run when it is used.
    const target = await tokenTarget(baton, endpoint, scenario);
    progress(`${setup} / ${scenario.name}: warm-up, ${Math.max(options.warmup, options.connections)} requests`);
    const warmup = await tokenLoad(target, {
      connections: options.connections,
      amount: Math.max(options.warmup, options.connections),
    });
    if (warmup.failed > 0)
      throw new Error(
        `${scenario.name}: warm-up had ${warmup.failed} requests without a 2xx; first: ${warmup.firstFailure}`,
      );
    progress(
      `${setup} / ${scenario.name}: ${options.duration} s, ${options.connections} connections${options.rate === undefined ? '' : `, ${options.rate} requests/s`}`,
    );
    const run = await tokenLoad(target, options);
    rows.push({ setup, scenario: scenario.name, ...run, rssMiB: processMemory(baton.pid)?.rss ?? NaN });
    if (run.failed > 0)
      progress(
        `${setup} / ${scenario.name}: ${run.failed} requests without a 2xx; first: ${run.firstFailure}\nBaton's log without request lines (tail):\n${logTail(baton.log, { lines: 30, skipInfo: true })}`,
      );
    if (run.failed > 0 && run.firstFailure.startsWith('Baton exited'))
      throw new Error(`Baton is gone; the remaining scenarios are skipped`);
  }
  if (baton.profDir !== undefined) {
    await baton.stop(); // the profile is written when Baton exits
    profiles.push([setup, summarizeProfiles(baton.profDir)]);
  }
}

function table(rows) {
  const lines = [
    '| setup | scenario | requests/s (mean) | p50 ms | p99 ms | Baton CPU µs per request | Baton RSS MiB | total requests | non-2xx |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.setup} | ${r.scenario} | ${Math.round(r.requestsPerSecond)} | ${fixed(r.p50)} | ${fixed(r.p99)} | ${whole(r.batonCpuUs)} | ${whole(r.rssMiB)} | ${r.total} | ${r.failed} |`,
    ),
  ];
  return lines.join('\n');
}

/** Every setup in turn, each one's Baton stopped (and its database dropped) before the next starts; false if any failed. */
async function benchSetups(options, workDir, rows, profiles) {
  let allRan = true;
  for (const setup of options.setups) {
    try {
      await withCleanups(() => benchSetup(setup, options, workDir, rows, profiles));
    } catch (error) {
      allRan = false;
      progress(`${setup}: ${messageOf(error)}`);
    }
  }
  return allRan;
}

function printReport(rows, profiles, options, machine) {
  print(`${machineLine()}, ${machine.idleText}`);
  print(
    `${options.duration} s per run, ${options.connections} connections, ${options.rate === undefined ? 'unthrottled' : `${options.rate} requests/s overall`}`,
  );
  print();
  print(table(rows));
  for (const [setup, profile] of profiles) {
    print();
    print(profileReport(setup, profile));
  }
}

async function main() {
  const options = parseOptions();
  // Start-up, warm-ups, runs, clean-up.
  limitRunTime(options.setups.length * (readyTimeoutMs + 60_000 + 2 * (options.duration * 1000 + 30_000)));

  // Other work on the machine skews every figure; how idle it was just before shows whether there was any.
  const machine = await machineAtStart();
  const rows = [];
  const profiles = [];
  let allRan;
  try {
    allRan = await benchSetups(options, await workFolder('baton-bench-'), rows, profiles);
  } finally {
    await runCleanups();
  }

  printReport(rows, profiles, options, machine);
  writeJson(options.json, {
    rows,
    setupFailed: !allRan,
    duration: options.duration,
    connections: options.connections,
    rate: options.rate ?? null,
  });
  const failedRows = rows.filter((r) => r.failed > 0);
  for (const r of failedRows) progress(`${r.setup} / ${r.scenario}: first error: ${r.firstFailure}`);
  if (!allRan || failedRows.length > 0) process.exitCode = 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
