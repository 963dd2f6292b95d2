// Load benchmark for Baton's token endpoint (RFC 8693 token exchange); see bench/README.md.
//
//   npm run bench -- [--setup embedded|postgres|both] [--duration 10] [--connections 32] [--rate 1000] [--cpu-prof DIR]
//
// For each setup it starts Baton as a child process on 127.0.0.1, prepares credentials once so
// every request body is constant, drives POST /oauth2/token with autocannon for a fixed time and
// prints one markdown table. It exits non-zero if any request did not get a 2xx.

// The repo's eslint config declares no runtime globals (it is written for the TypeScript in src/);
// everything importable is imported below, and these two Node 20 globals have no module to import.
/* global fetch, AbortSignal */

import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { URL, URLSearchParams } from 'node:url';
import { demoSecret, mintAgentAssertion, mintUserToken } from '../dist/cli/demo-kit.js';
import { loadRun } from './load.mjs';
import { profileReport, summarizeProfiles } from './profile.mjs';
import { basicAuthorization, benchDatabase, cleanups, idlePercent, integerOption, logTail, print, processMemory, progress, readCommandLine, runCleanups, startBatonSetup } from './harness.mjs';

const root = join(import.meta.dirname, '..');
const database = benchDatabase('baton_bench');

const grants = { tokenExchange: 'urn:ietf:params:oauth:grant-type:token-exchange', clientCredentials: 'client_credentials' };
const tokenTypes = { accessToken: 'urn:ietf:params:oauth:token-type:access_token', jwt: 'urn:ietf:params:oauth:token-type:jwt' };
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

const usage = `usage: npm run bench -- [--setup embedded|postgres|both] [--duration SECONDS] [--connections N] [--rate REQUESTS_PER_SECOND]

  --setup        which database Baton uses: embedded (PGlite), postgres, or both (default both)
  --duration     seconds per measured run, 1 to ${maxDurationSeconds} (default 10)
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
    if (!['embedded', 'postgres', 'both'].includes(values.setup)) throw new Error(`--setup must be embedded, postgres or both (got ${JSON.stringify(values.setup)})`);
    return {
      setups: values.setup === 'both' ? ['embedded', 'postgres'] : [values.setup],
      duration: integerOption('duration', values.duration, 1, maxDurationSeconds),
      connections: integerOption('connections', values.connections, 1, 1024),
      rate: values.rate === undefined ? undefined : integerOption('rate', values.rate, 1, 1_000_000),
      cpuProfDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
      only: values.only,
      workers: integerOption('workers', values.workers, 1, 64),
      json: values.json,
      warmup: values.warmup === undefined ? warmupRequests : integerOption('warmup', values.warmup, 0, 1_000_000),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Credentials, prepared once per scenario so each request body is constant.

async function postToken(baseUrl, path, params, authorization) {
  const response = await fetch(new URL(path, baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization === undefined ? {} : { authorization }) },
    body: new URLSearchParams(params),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${params.grant_type} refused (HTTP ${response.status}): ${text}`);
  return JSON.parse(text);
}

async function prepare(baseUrl) {
  const metaResponse = await fetch(new URL('/.well-known/oauth-authorization-server', baseUrl), { signal: AbortSignal.timeout(10_000) });
  if (!metaResponse.ok) throw new Error(`metadata: HTTP ${metaResponse.status}`);
  const meta = await metaResponse.json();
  // The token endpoint is advertised under the issuer (http://localhost:<port>); the load goes to
  // the loopback address Baton listens on, so only the path is kept.
  const tokenPath = new URL(meta.token_endpoint).pathname;
  const issuer = meta.issuer;
  const authorization = basicAuthorization('agent-platform', demoSecret('agent-platform'));
  const post = (params, auth) => postToken(baseUrl, tokenPath, params, auth);

  /** An agent's own token for Baton: client_credentials, the agent authenticating with private_key_jwt. */
  const agentToken = async (agent) => {
    const body = await post({ grant_type: grants.clientCredentials, client_assertion_type: jwtBearer, client_assertion: await mintAgentAssertion(agent, issuer) });
    return body.access_token;
  };
  const aliceToken = () => mintUserToken('alice', { audience: issuer, lifetimeSeconds: 3600, scope: 'payments:read payments:transfer' });

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
      { name: 'client credentials', params: async () => ({ grant_type: grants.clientCredentials, resource: 'https://payments.example', scope: 'payments:read' }) },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Load.

/** One load run against the token endpoint (bench/load.mjs), with Baton's CPU per request. */
async function load(target, options) {
  const run = await loadRun({ ...target, label: 'Baton' }, options);
  return { ...run, batonCpuUs: run.serverCpuUs };
}

async function benchSetup(setup, options, workDir, rows, profiles) {
  progress(`${setup}: starting Baton`);
  const baton = await startBatonSetup({ root, setup, workDir, database, cpuProfDir: options.cpuProfDir, settings: setup === 'postgres' ? { BATON_WORKERS: String(options.workers) } : {}, readyTimeoutMs, stopTimeoutMs });
  const { tokenPath, authorization, scenarios } = await prepare(baton.url);
  for (const scenario of scenarios.filter((s) => options.only === undefined || s.name.includes(options.only))) {
    // Fresh credentials per scenario, so none is older than one run when it is used.
    const target = {
      url: baton.url,
      pid: baton.pid,
      exited: baton.exited,
      path: tokenPath,
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
      body: new URLSearchParams(await scenario.params()).toString(),
    };
    progress(`${setup} / ${scenario.name}: warm-up, ${Math.max(options.warmup, options.connections)} requests`);
    const warmup = await load(target, { connections: options.connections, amount: Math.max(options.warmup, options.connections) });
    if (warmup.failed > 0) throw new Error(`${scenario.name}: warm-up had ${warmup.failed} requests without a 2xx; first: ${warmup.firstFailure}`);
    progress(`${setup} / ${scenario.name}: ${options.duration} s, ${options.connections} connections${options.rate === undefined ? '' : `, ${options.rate} requests/s`}`);
    const run = await load(target, options);
    rows.push({ setup, scenario: scenario.name, ...run, rssMiB: processMemory(baton.pid)?.rss ?? NaN });
    if (run.failed > 0) progress(`${setup} / ${scenario.name}: ${run.failed} requests without a 2xx; first: ${run.firstFailure}\nBaton's log without request lines (tail):\n${logTail(baton.log, { lines: 30, skipInfo: true })}`);
    if (run.failed > 0 && run.firstFailure.startsWith('Baton exited')) throw new Error(`Baton is gone; the remaining scenarios are skipped`);
  }
  if (baton.profDir !== undefined) {
    await baton.stop(); // the profile is written when Baton exits
    profiles.push([setup, summarizeProfiles(baton.profDir)]);
  }
}

function table(rows) {
  const ms = (v) => (Number.isNaN(v) ? '-' : v.toFixed(2));
  const lines = [
    '| setup | scenario | requests/s (mean) | p50 ms | p99 ms | Baton CPU µs per request | Baton RSS MiB | total requests | non-2xx |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.setup} | ${r.scenario} | ${Math.round(r.requestsPerSecond)} | ${ms(r.p50)} | ${ms(r.p99)} | ${Number.isNaN(r.batonCpuUs) ? '-' : Math.round(r.batonCpuUs)} | ${Number.isNaN(r.rssMiB) ? '-' : Math.round(r.rssMiB)} | ${r.total} | ${r.failed} |`),
  ];
  return lines.join('\n');
}

async function main() {
  const options = parseOptions();

  // A bound on the whole harness in case something hangs: start-up, warm-ups, runs, clean-up.
  const budgetMs = options.setups.length * (readyTimeoutMs + 60_000 + 2 * (options.duration * 1000 + 30_000));
  setTimeout(() => {
    progress(`still running after ${Math.round(budgetMs / 1000)} s: giving up`);
    void runCleanups().finally(() => process.exit(1));
  }, budgetMs).unref();

  // Other work on the machine skews every figure; how idle it was just before shows whether there was any.
  const idleAtStart = await idlePercent();
  const workDir = await mkdtemp(join(tmpdir(), 'baton-bench-'));
  cleanups.push(() => rm(workDir, { recursive: true, force: true }));
  const rows = [];
  const profiles = [];
  let setupFailed = false;
  try {
    for (const setup of options.setups) {
      const mark = cleanups.length;
      try {
        await benchSetup(setup, options, workDir, rows, profiles);
      } catch (error) {
        setupFailed = true;
        progress(`${setup}: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        // Stop this setup's Baton (and drop its database) before the next one starts.
        await runCleanups(mark);
      }
    }
  } finally {
    await runCleanups();
  }

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  print(`node ${process.version}, ${availableParallelism()} CPUs (${cpu}), ${process.platform}/${process.arch}, ${idleAtStart}% CPU idle before the start`);
  print(`${options.duration} s per run, ${options.connections} connections, ${options.rate === undefined ? 'unthrottled' : `${options.rate} requests/s overall`}`);
  print();
  print(table(rows));
  for (const [setup, profile] of profiles) {
    print();
    print(profileReport(setup, profile));
  }

  if (options.json !== undefined) writeFileSync(options.json, JSON.stringify({ rows, setupFailed, duration: options.duration, connections: options.connections, rate: options.rate ?? null }));
  const failedRows = rows.filter((r) => r.failed > 0);
  for (const r of failedRows) process.stderr.write(`bench: ${r.setup} / ${r.scenario}: first error: ${r.firstFailure}\n`);
  if (setupFailed || failedRows.length > 0) process.exitCode = 1;
}

await main();
