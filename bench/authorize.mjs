// Decision benchmark for Baton's policy decision point (POST /authorize); see bench/README.md.
//
//   npm run build && node bench/authorize.mjs [--setup embedded|postgres|both] [--duration 10]
//       [--connections 32] [--rate 2000] [--calls 20000] [--quick] [--cpu-prof DIR]
//
// In one run it measures, side by side:
//   1. raw Cedar: the shipped policy set's evaluate() called in this process, no HTTP, with the
//      request POST /authorize builds for the payments sub-agent's transfer, each call with a
//      new amount (so none is answered from the policy set's memory of earlier decisions);
//   2. POST /authorize over HTTP: Baton as a child process on loopback (embedded PGlite and/or
//      PostgreSQL), driven by autocannon flat out and at a fixed rate with the same request,
//      then flat out with a new amount in every request, every decision audited;
// and prints one markdown table. It exits non-zero if any request got no 2xx or any decision
// (HTTP or in-process) was not the expected "allow".

// The repo's eslint config declares no runtime globals (it is written for the TypeScript in src/);
// everything importable is imported below.

import { Buffer } from 'node:buffer';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { loadCedarPolicySet } from '../dist/adapters/cedar/cedar-engine.js';
import { demoSecret, mintAgentAssertion, mintUserToken } from '../dist/cli/demo-kit.js';
import { parseActClaim } from '../dist/core/tokens/act-chain.js';
import { scopeClaim } from '../dist/core/tokens/attenuate.js';
import { agentEntity, entityRef, userEntity } from '../dist/core/decisions/policy.js';
import { readJsonFile, readPolicyFolder } from '../dist/node/files.js';
import { compileRegistry } from '../dist/core/registry/compile.js';
import { loadRun } from './load.mjs';
import { profileReport, summarizeProfiles } from './profile.mjs';
import {
  basicAuthorization,
  benchDatabase,
  fixed,
  integerOption,
  isStopping,
  limitRunTime,
  loadAverage,
  logTail,
  machineAtStart,
  machineBusyMs,
  machineLine,
  messageOf,
  postToken,
  print,
  processMemory,
  progress,
  readCommandLine,
  runCleanups,
  secondsOption,
  setupsOption,
  startBatonSetup,
  tokenEndpoint,
  whole,
  withCleanups,
  withDatabase,
  workFolder,
  writeJson,
} from './harness.mjs';

// Node 20's V8 can abort under load when TurboFan inlines a JS-to-Wasm call into cedar-wasm and
// then deoptimizes (see src/node/v8-flags.ts; Baton's entry point sets the same flag). It must be
// set before any code calling cedar-wasm is optimized, so cedar-wasm is imported only after it.
setFlagsFromString('--no-turbo-inline-js-wasm-calls');
const cedar = await import('@cedar-policy/cedar-wasm/nodejs');

const root = join(import.meta.dirname, '..');
const database = benchDatabase('baton_bench_authz');

const grants = { tokenExchange: 'urn:ietf:params:oauth:grant-type:token-exchange' };
const tokenTypes = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
};

/**
 * The decision every request asks for, and the facts its token carries: alice -> orchestrator ->
 * payments-subagent (current actor first), issued to client agent-platform in tenant acme. The
 * raw Cedar request is built from these; the HTTP token is checked to carry exactly these.
 */
const decision = {
  action: 'payments:transfer',
  resource: { type: 'Account', id: 'acct-1' },
  context: { amount: 50, currency: 'EUR' },
  expectedReasons: ['transfer-up-to-100'],
};
/**
 * Amounts that do not repeat within 9,999 requests, all allowed (0.01 to 99.99 EUR, cents being
 * the most decimals the euro has): each one a new question for Cedar, and more than a policy set
 * remembers (src/adapters/cedar/cedar-engine.ts), so a value comes round only after it is forgotten.
 */
function freshAmounts() {
  let n = 0;
  return () => Number(((1 + (n++ % 9_999)) / 100).toFixed(2));
}
const tokenFacts = {
  tenant: 'acme',
  clientId: 'agent-platform',
  sub: 'alice',
  chain: ['payments-subagent', 'orchestrator'],
  scope: ['payments:read', 'payments:transfer'],
};

/** One Baton token serves a whole setup (warm-up and both runs); Baton tokens live at most 300 s. */
const maxDurationSeconds = 120;
/** Requests sent before the measured runs of a setup (JIT, pools, PGlite caches); not reported. */
const warmupRequests = 1000;
/** In-process calls before the timed ones (as many as are timed, if fewer). */
const cedarWarmup = (calls) => Math.min(2000, calls);
const readyTimeoutMs = 60_000;
/** CPU (in cores) used by processes other than Baton and the harness above which a run is flagged as noisy. */
const noiseCores = 0.25;
const stopTimeoutMs = 10_000;

const usage = `usage: node bench/authorize.mjs [options]   (run npm run build first)

  --setup        embedded (PGlite), postgres, or both (default both)
  --duration     seconds per measured HTTP run, 0.5 to ${maxDurationSeconds} (default 10)
  --connections  concurrent HTTP/1.1 connections (default 32)
  --rate         overall decisions/s of the fixed-rate run (default 2000)
  --calls        timed in-process Cedar evaluations (default 20000)
  --quick        smoke run: --setup embedded --duration 2 --calls 5000 unless given
  --json FILE    also write the results to FILE as JSON (for bench/run.mjs)
  --warmup N     decisions before the measured runs of a setup, not reported (default 1000; at least --connections)
  --revoked N    postgres only: after the two runs, revoke N other tokens (rows in the revocations
                 table, which Baton keeps in memory) and run flat out again (default 0: skipped)
  --cpu-prof DIR run Baton with --cpu-prof, keep its profiles in DIR and print the top
                 self-time functions (the profiler slows Baton: do not report those figures)
`;

/** The command line, read once (bench/harness.mjs readCommandLine: --help, exit 2 on a bad option). */
function parseOptions() {
  const options = {
    setup: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string', default: '32' },
    rate: { type: 'string', default: '2000' },
    calls: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    json: { type: 'string' },
    warmup: { type: 'string' },
    revoked: { type: 'string', default: '0' },
  };
  return readCommandLine(usage, options, (values) => {
    const quick = values.quick;
    return {
      quick,
      setups: setupsOption(values.setup ?? (quick ? 'embedded' : 'both')),
      duration: secondsOption('duration', values.duration, maxDurationSeconds, quick ? 2 : 10),
      connections: integerOption('connections', values.connections, 1, 1024),
      rate: integerOption('rate', values.rate, 1, 1_000_000),
      calls: integerOption('calls', values.calls, 100, 10_000_000, quick ? 5000 : 20_000),
      cpuProfDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
      json: values.json,
      warmup: integerOption('warmup', values.warmup, 0, 1_000_000, warmupRequests),
      revoked: integerOption('revoked', values.revoked, 0, 10_000_000),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// 1. Raw Cedar evaluation, in this process.

/** The PolicyRequest decisions.ts builds for the payments sub-agent's transfer of `amount` (no authorization_details). */
function decisionRequest(registry, facts, amount) {
  const user = userEntity(facts.tenant, facts.sub);
  const [actor] = facts.chain;
  return {
    principal: actor === undefined ? user : agentEntity(registry, actor),
    action: decision.action,
    resource: { type: decision.resource.type, id: decision.resource.id, attributes: {} },
    context: {
      ...decision.context,
      amount,
      tenant: facts.tenant,
      client: facts.clientId,
      user: entityRef('User', facts.sub),
      chain: facts.chain,
      depth: facts.chain.length,
      scope: facts.scope,
    },
    entities: actor === undefined ? [] : [user],
  };
}

async function benchCedar(calls) {
  const engine = loadCedarPolicySet(cedar, readPolicyFolder(join(root, 'policies')));
  // The issuer only matters for agents' assertion audience, not for the entities built here.
  const registry = await compileRegistry(readJsonFile(join(root, 'policies', 'registry.json')), {
    issuer: 'http://localhost',
    file: 'policies/registry.json',
  });
  // Timed in 10 batches: the mean over all calls is reported, the batch spread shows the noise.
  const batches = 10;
  const perBatch = Math.ceil(calls / batches);
  const timed = perBatch * batches;
  const amount = freshAmounts();
  // Built ahead, so the timed loop measures evaluate() alone.
  const warmup = cedarWarmup(calls);
  const requests = Array.from({ length: warmup + timed + 1 }, () => decisionRequest(registry, tokenFacts, amount()));
  const check = (answer) =>
    answer.allowed && answer.errors.length === 0 && answer.reasons.join(',') === decision.expectedReasons.join(',');
  const first = engine.evaluate(requests[warmup + timed]);
  if (!check(first))
    throw new Error(`expected allow by ${decision.expectedReasons.join(', ')}, got ${JSON.stringify(first)}`);

  let wrong = 0;
  for (let i = 0; i < warmup; i++) if (!engine.evaluate(requests[i]).allowed) wrong++;
  const batchUs = [];
  let total = 0;
  const cpuBefore = process.cpuUsage();
  const machineBefore = machineBusyMs();
  for (let b = 0; b < batches; b++) {
    const started = performance.now();
    for (let i = 0; i < perBatch; i++) if (!engine.evaluate(requests[warmup + b * perBatch + i]).allowed) wrong++;
    const ms = performance.now() - started;
    total += ms;
    batchUs.push((ms * 1000) / perBatch);
  }
  const cpu = process.cpuUsage(cpuBefore);
  const machine = machineBusyMs() - machineBefore;
  const n = timed;
  batchUs.sort((a, b) => a - b);
  return {
    calls: n,
    usPerCall: (total * 1000) / n,
    callsPerSecond: (n * 1000) / total,
    batchMin: batchUs[0],
    batchMax: batchUs.at(-1),
    cpuShare: (cpu.user + cpu.system) / 1000 / total,
    // What the rest of the machine did meanwhile: other processes compete for the second core.
    othersCores: Math.max(0, machine - (cpu.user + cpu.system) / 1000) / total,
    wrong,
  };
}

// ---------------------------------------------------------------------------------------------
// The token under test: alice -> orchestrator -> payments-subagent, two exchanges.

/** Basic credentials of a demo client. */
const basic = (clientId) => basicAuthorization(clientId, demoSecret(clientId));

/** The payments sub-agent's token, as in test/http/authorize.test.ts; checked to carry `tokenFacts`. */
async function subagentToken(baseUrl) {
  const { issuer, tokenPath } = await tokenEndpoint(baseUrl);
  const exchange = async (params) =>
    (await postToken(baseUrl, tokenPath, params, basic('agent-platform'))).access_token;
  const first = await exchange({
    grant_type: grants.tokenExchange,
    subject_token: await mintUserToken('alice', {
      audience: issuer,
      lifetimeSeconds: 3600,
      scope: 'payments:read payments:transfer',
    }),
    subject_token_type: tokenTypes.jwt,
    actor_token: await mintAgentAssertion('orchestrator', issuer),
    actor_token_type: tokenTypes.jwt,
    audience: 'payments',
    scope: 'payments:read payments:transfer',
  });
  const token = await exchange({
    grant_type: grants.tokenExchange,
    subject_token: first,
    subject_token_type: tokenTypes.accessToken,
    actor_token: await mintAgentAssertion('payments-subagent', issuer),
    actor_token_type: tokenTypes.jwt,
  });
  // The raw Cedar figure is only comparable if Baton asks Cedar the same question.
  const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
  const facts = {
    tenant: payload.tenant,
    clientId: payload.client_id,
    sub: payload.sub,
    chain: parseActClaim(payload.act, 'token', 16).chain,
    scope: scopeClaim(payload),
  };
  if (JSON.stringify(facts) !== JSON.stringify(tokenFacts))
    throw new Error(
      `the sub-agent token carries ${JSON.stringify(facts)}, not the ${JSON.stringify(tokenFacts)} the raw Cedar request assumes`,
    );
  if (payload.authorization_details !== undefined)
    throw new Error('the sub-agent token unexpectedly carries authorization_details');
  return { token, lifetimeSeconds: payload.exp - payload.iat };
}

// ---------------------------------------------------------------------------------------------
// Load.

/** Baton's answer to an allowed decision starts like this (action_id and reasons follow). */
const allowPrefix = '{"decision":"allow",';

/** One load run against POST /authorize (bench/load.mjs); a 2xx that is not "allow" counts as not allowed. */
async function load(target, options) {
  const run = await loadRun(
    { ...target, path: '/authorize', label: 'Baton' },
    { ...options, check: (body) => (body.startsWith(allowPrefix) ? undefined : `not allowed: ${body}`) },
  );
  return { ...run, notAllowed: run.wrong, batonCpuUsPerDecision: run.serverCpuUs, batonCores: run.serverCores };
}

async function benchSetup(setup, options, workDir) {
  progress(`${setup}: starting Baton${options.cpuProfDir === undefined ? '' : ' with --cpu-prof'}`);
  const baton = await startBatonSetup({
    root,
    setup,
    workDir,
    database,
    cpuProfDir: options.cpuProfDir,
    readyTimeoutMs,
    stopTimeoutMs,
  });
  const { token, lifetimeSeconds } = await subagentToken(baton.url);
  const needed = 3 * options.duration + 30;
  if (lifetimeSeconds < needed)
    throw new Error(
      `the sub-agent token lives ${lifetimeSeconds} s, less than the ${needed} s this setup needs; lower --duration`,
    );
  const target = {
    url: baton.url,
    exited: baton.exited,
    pid: baton.pid,
    headers: { 'content-type': 'application/json', authorization: basic('payments') },
    body: JSON.stringify({ token, action: decision.action, resource: decision.resource, context: decision.context }),
  };
  const row = { setup };
  const check = (name, run) => {
    if (isStopping()) throw new Error('interrupted');
    if (run.failed > 0 || run.notAllowed > 0) {
      progress(
        `${setup} / ${name}: ${run.failed} requests without a 2xx, ${run.notAllowed} decisions not "allow"; first: ${run.firstFailure}\nBaton's log without request lines (tail):\n${logTail(baton.log, { lines: 30, skipInfo: true })}`,
      );
      row.failed = true;
    }
    if (run.firstFailure?.startsWith('Baton exited')) throw new Error('Baton is gone; the remaining runs are skipped');
  };

  progress(`${setup}: warm-up, ${Math.max(options.warmup, options.connections)} decisions`);
  const warmup = await load(target, {
    connections: options.connections,
    amount: Math.max(options.warmup, options.connections),
  });
  check('warm-up', warmup);
  row.warmupFailures = warmup.failed + warmup.notAllowed;

  progress(
    `${setup}: flat out, ${options.duration} s, ${options.connections} connections (load average ${loadAverage()})`,
  );
  row.flat = await load(target, { connections: options.connections, duration: options.duration });
  check('flat out', row.flat);

  progress(
    `${setup}: ${options.rate} decisions/s, ${options.duration} s, ${options.connections} connections (load average ${loadAverage()})`,
  );
  row.rated = await load(target, { connections: options.connections, duration: options.duration, rate: options.rate });
  check(`${options.rate}/s`, row.rated);

  const amount = freshAmounts();
  const fresh = {
    ...target,
    body: () =>
      JSON.stringify({
        token,
        action: decision.action,
        resource: decision.resource,
        context: { ...decision.context, amount: amount() },
      }),
  };
  progress(`${setup}: flat out, a new amount in every request, ${options.duration} s (load average ${loadAverage()})`);
  row.flatFresh = await load(fresh, { connections: options.connections, duration: options.duration });
  check('flat out, new amounts', row.flatFresh);

  if (options.revoked > 0 && setup === 'postgres') {
    // Other tokens' revocations, made an hour ago (outside the look-back Baton's poll re-reads),
    // still live: Baton loads them into its revocation set at its next polls.
    progress(`${setup}: revoking ${options.revoked} other tokens`);
    await withDatabase(
      database.url,
      (db) => db`
      INSERT INTO revocations (tenant, jti, expires_at, revoked_at)
      SELECT 'acme', 'bench-revoked-' || g, now() + interval '1 hour', now() - interval '1 hour' FROM generate_series(1, ${options.revoked}) g`,
    );
    // Baton polls every 250 ms; 2 s per 100,000 revocations, at least 1 s, lets several polls pass.
    await sleep(Math.max(1000, Math.ceil(options.revoked / 100_000) * 2000));
    progress(
      `${setup}: flat out with ${options.revoked} revoked tokens, ${options.duration} s (load average ${loadAverage()})`,
    );
    row.flatRevoked = await load(target, { connections: options.connections, duration: options.duration });
    check(`flat out, ${options.revoked} revoked`, row.flatRevoked);
  }

  row.memory = processMemory(baton.pid);
  if (baton.profDir !== undefined) {
    await baton.stop();
    row.profile = summarizeProfiles(baton.profDir);
  }
  return row;
}

// ---------------------------------------------------------------------------------------------
// Report.

function table(cedarResult, rows, options) {
  const at = `${options.rate}/s`;
  const lines = [
    `| measured | calls/s or decisions/s | µs per call | Baton CPU µs per decision | p50 ms | p99 ms | at ${at}: achieved/s | at ${at}: p50 ms | at ${at}: p99 ms | ÷ raw Cedar calls/s | Baton RSS MiB (peak) | no 2xx / not allow |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  if (cedarResult !== undefined) {
    lines.push(
      `| raw Cedar \`evaluate()\`, in-process, a new amount in every call | ${whole(cedarResult.callsPerSecond)} | ${fixed(cedarResult.usPerCall, 1)} | - | - | - | - | - | - | 1 | - | 0 / ${cedarResult.wrong} |`,
    );
  }
  for (const r of rows) {
    const ratio =
      cedarResult === undefined || r.flat === undefined
        ? '-'
        : fixed(r.flat.requestsPerSecond / cedarResult.callsPerSecond, 3);
    const memory = r.memory === undefined ? '-' : `${fixed(r.memory.rss, 0)} (${fixed(r.memory.peak, 0)})`;
    const failures = [r.flat, r.rated].filter((x) => x !== undefined);
    const bad = `${failures.reduce((t, x) => t + x.failed, 0)} / ${failures.reduce((t, x) => t + x.notAllowed, 0)}`;
    lines.push(
      `| POST /authorize, ${r.setup} | ${whole(r.flat?.requestsPerSecond)} | - | ${whole(r.flat?.batonCpuUsPerDecision)} | ${fixed(r.flat?.p50)} | ${fixed(r.flat?.p99)} | ${whole(r.rated?.requestsPerSecond)} | ${fixed(r.rated?.p50)} | ${fixed(r.rated?.p99)} | ${ratio} | ${memory} | ${bad} |`,
    );
    if (r.flatFresh !== undefined) {
      const freshRatio =
        cedarResult === undefined ? '-' : fixed(r.flatFresh.requestsPerSecond / cedarResult.callsPerSecond, 3);
      lines.push(
        `| POST /authorize, ${r.setup}, a new amount in every request | ${whole(r.flatFresh.requestsPerSecond)} | - | ${whole(r.flatFresh.batonCpuUsPerDecision)} | ${fixed(r.flatFresh.p50)} | ${fixed(r.flatFresh.p99)} | - | - | - | ${freshRatio} | - | ${r.flatFresh.failed} / ${r.flatFresh.notAllowed} |`,
      );
    }
  }
  return lines.join('\n');
}

function targets(rows, options) {
  const out = [];
  for (const r of rows) {
    if (r.flat !== undefined)
      out.push(
        `${r.setup}: ${whole(r.flat.requestsPerSecond)} decisions/s flat out (target ≥ 4,000: ${r.flat.requestsPerSecond >= 4000 ? 'met' : 'not met'})`,
      );
    if (r.flat !== undefined && r.flatRevoked !== undefined) {
      const ratio = r.flatRevoked.requestsPerSecond / r.flat.requestsPerSecond;
      out.push(
        `${r.setup}: ${whole(r.flatRevoked.requestsPerSecond)} decisions/s flat out with ${whole(options.revoked)} revoked tokens, ${fixed(ratio)} of the rate without (target ≥ 0.90: ${ratio >= 0.9 ? 'met' : 'not met'})`,
      );
    }
    if (r.rated !== undefined) {
      const kept = r.rated.requestsPerSecond >= 0.95 * options.rate;
      const verdict = options.rate < 2000 ? 'not tested at this rate' : r.rated.p99 <= 10 && kept ? 'met' : 'not met';
      out.push(
        `${r.setup}: p99 ${fixed(r.rated.p99)} ms at ${options.rate}/s asked, ${whole(r.rated.requestsPerSecond)}/s achieved (target ≤ 10 ms at 2,000/s: ${verdict}${kept ? '' : '; the rate was not sustained, so this p99 is queueing'})`,
      );
    }
  }
  return out;
}

/** Where the CPUs went during each run: whatever is not Baton or the load generator is PostgreSQL (postgres setup) or other work on the machine, which makes the figures noisy. */
function cpuLines(cedarResult, rows, options) {
  const busy = (cores) => (cores > noiseCores ? ' (other work was running: these figures are low and noisy)' : '');
  const out = [];
  if (cedarResult !== undefined)
    out.push(
      `raw Cedar: the harness used ${fixed(cedarResult.cpuShare)} cores, everything else ${fixed(cedarResult.othersCores)}${busy(cedarResult.othersCores)}; per-batch means ${fixed(cedarResult.batchMin, 1)} to ${fixed(cedarResult.batchMax, 1)} µs`,
    );
  for (const r of rows) {
    for (const [name, run] of [
      ['flat out', r.flat],
      [`at ${options.rate}/s`, r.rated],
      ['flat out, new amounts', r.flatFresh],
    ]) {
      if (run === undefined) continue;
      const rest = run.machineCores - (Number.isNaN(run.batonCores) ? 0 : run.batonCores) - run.harnessCores;
      out.push(
        `${r.setup}, ${name}: Baton used ${fixed(run.batonCores)} cores, the load generator ${fixed(run.harnessCores)}, everything else ${fixed(Math.max(0, rest))}${r.setup === 'postgres' ? ' (PostgreSQL included)' : busy(rest)} of ${availableParallelism()}`,
      );
    }
  }
  return out;
}

function printReport(cedarResult, rows, options, machine) {
  print(machineLine());
  print(`${machine.idleText}, load average ${machine.load}; at the end: load average ${loadAverage()}`);
  print(
    `raw Cedar: ${cedarResult?.calls ?? options.calls} timed calls after ${cedarWarmup(options.calls)} warm-up; HTTP: ${options.duration} s per run, ${options.connections} connections, flat out then ${options.rate} decisions/s${options.cpuProfDir === undefined ? '' : '; Baton under --cpu-prof (slower)'}`,
  );
  print();
  print(table(cedarResult, rows, options));
  print();
  for (const line of [...targets(rows, options), ...cpuLines(cedarResult, rows, options)]) print(`- ${line}`);
  for (const r of rows) {
    if (r.profile === undefined) continue;
    print();
    print(profileReport(r.setup, r.profile));
  }
}

/** Raw Cedar in this process; undefined if it failed. */
async function runCedar(options) {
  try {
    progress(`raw Cedar: ${cedarWarmup(options.calls)} warm-up calls, then ${options.calls} timed`);
    const result = await benchCedar(options.calls);
    progress(
      `raw Cedar: ${fixed(result.usPerCall, 1)} µs per call (batches ${fixed(result.batchMin, 1)} to ${fixed(result.batchMax, 1)} µs), ${Math.round(100 * result.cpuShare)}% of one core`,
    );
    return result;
  } catch (error) {
    progress(`raw Cedar: ${messageOf(error)}`);
    return undefined;
  }
}

/** Every setup in turn, each one's Baton stopped (and its database dropped) before the next starts; a setup that threw gives a row with its name only. */
async function benchSetups(options, workDir) {
  const rows = [];
  for (const setup of options.setups) {
    try {
      rows.push(await withCleanups(() => benchSetup(setup, options, workDir)));
    } catch (error) {
      rows.push({ setup, failed: true });
      progress(`${setup}: ${messageOf(error)}`);
    }
  }
  return rows;
}

async function main() {
  const options = parseOptions();
  // Cedar, start-up, warm-ups, runs, clean-up.
  limitRunTime(120_000 + options.setups.length * (readyTimeoutMs + 60_000 + 4 * (options.duration * 1000 + 30_000)));

  // Other work on the machine skews every figure; how idle it was just before shows whether there was any.
  const machine = await machineAtStart();
  progress(`load average ${machine.load}; ${machine.idleText}`);
  if (machine.idle < 90)
    progress(`warning: the machine is busy (${machine.idle}% idle); figures will be low and noisy`);

  const cedarResult = await runCedar(options);
  let rows;
  try {
    rows = await benchSetups(options, await workFolder('baton-bench-authz-'));
  } finally {
    await runCleanups();
  }
  printReport(cedarResult, rows, options, machine);

  const failed =
    cedarResult === undefined || cedarResult.wrong > 0 || rows.some((r) => r.failed || r.warmupFailures > 0);
  writeJson(options.json, {
    cedar: cedarResult ?? null,
    rows: rows.map(({ profile: _profile, ...r }) => r),
    failed,
    rate: options.rate,
    duration: options.duration,
  });
  if (failed) {
    for (const r of rows)
      for (const run of [r.flat, r.rated, r.flatFresh])
        if (run?.firstFailure !== undefined) progress(`${r.setup}: first error: ${run.firstFailure}`);
    process.exitCode = 1;
  }
}

await main();
