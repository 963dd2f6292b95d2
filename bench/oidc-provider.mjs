// The peer of Baton's client-credentials grant (SPEC "Performance targets"): node-oidc-provider
// issuing EdDSA-signed JWT access tokens by client_credentials, on this machine. See
// bench/README.md, "Peer: node-oidc-provider".
//
//   node bench/oidc-provider.mjs [--duration 10] [--connections 32]
//
// `benchOidcProvider()` starts bench/oidc-provider-server.mjs as a child process on 127.0.0.1,
// checks once that a token request yields an at+jwt signed with EdDSA that verifies against the
// provider's JWKS, then drives POST /token with autocannon (closed loop, one constant request)
// and stops the child again, on success, failure and Ctrl-C. Run standalone, it prints one
// markdown table and exits non-zero if any request did not get a 2xx.

// The repo's eslint config declares no runtime globals; these two Node 20 globals have no module to import.
/* global fetch, AbortSignal */

import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { URL, URLSearchParams, fileURLToPath } from 'node:url';
import { loadRun } from './load.mjs';
import { basicAuthorization, cleanEnv, cleanups, freePort, idlePercent, integerOption, logTail, print, progress, readCommandLine, runCleanups, spawnNode } from './harness.mjs';

const root = join(import.meta.dirname, '..');
// The same resource, scope and client as bench/oidc-provider-server.mjs (which gets the client through its environment).
const resource = 'https://payments.example';
const scope = 'payments:read payments:transfer';
const clientId = 'payments-client';
const readyTimeoutMs = 30_000;
const stopTimeoutMs = 5_000;
/** The provider's tokens live 300 s (its accessTokenTTL); a run never needs one that long, but stay well inside it. */
const maxDurationSeconds = 240;



/** Resident memory of a process in MiB, from /proc/<pid>/status (VmRSS, in kB). */
function rssMiB(pid) {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? NaN : Number(match[1]) / 1024;
  } catch {
    return NaN;
  }
}

/** Starts bench/oidc-provider-server.mjs on a free loopback port; resolves once its discovery document answers 200. */
async function startProvider(workDir, clientSecret) {
  const port = await freePort();
  // DEBUG would turn on the provider's per-request debug output; the rest as for Baton (cleanEnv).
  const env = { ...cleanEnv(), NODE_ENV: 'production', PORT: String(port), BENCH_CLIENT_ID: clientId, BENCH_CLIENT_SECRET: clientSecret };
  delete env.DEBUG;
  return spawnNode({
    cwd: root,
    script: fileURLToPath(new URL('./oidc-provider-server.mjs', import.meta.url)),
    env,
    port,
    log: join(workDir, 'oidc-provider.log'),
    label: 'oidc-provider',
    readyPath: '/.well-known/openid-configuration',
    readyTimeoutMs,
    stopTimeoutMs,
  });
}

/** One token request outside the load: the answer must be an at+jwt, EdDSA, that verifies against the provider's JWKS. */
async function checkToken(provider, target) {
  const metaResponse = await fetch(new URL('/.well-known/openid-configuration', provider.url), { signal: AbortSignal.timeout(10_000) });
  if (!metaResponse.ok) throw new Error(`oidc-provider discovery: HTTP ${metaResponse.status}`);
  const meta = await metaResponse.json();
  const response = await fetch(new URL(target.path, provider.url), { method: 'POST', headers: target.headers, body: target.body, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  if (!response.ok) throw new Error(`oidc-provider refused client_credentials (HTTP ${response.status}): ${text}`);
  const token = JSON.parse(text).access_token;
  const header = decodeProtectedHeader(token);
  if (header.alg !== 'EdDSA' || header.typ !== 'at+jwt') throw new Error(`oidc-provider's access token is not an EdDSA at+jwt: header ${JSON.stringify(header)}`);
  const jwksResponse = await fetch(meta.jwks_uri, { signal: AbortSignal.timeout(10_000) });
  if (!jwksResponse.ok) throw new Error(`oidc-provider JWKS: HTTP ${jwksResponse.status}`);
  const { payload } = await jwtVerify(token, createLocalJWKSet(await jwksResponse.json()), {
    issuer: meta.issuer,
    audience: resource,
    typ: 'at+jwt',
    algorithms: ['EdDSA'],
  });
  if (payload.client_id !== clientId || payload.scope !== scope) throw new Error(`unexpected token claims: ${JSON.stringify(payload)}`);
  return { header, payload, bytes: text.length };
}

/** One load run against the provider's token endpoint (bench/load.mjs). */
function load(target, options) {
  return loadRun({ ...target, label: 'oidc-provider' }, options);
}

/**
 * node-oidc-provider's client_credentials grant under load: `warmup` requests (not reported),
 * then `duration` seconds on `connections` connections, closed loop. Resolves with
 * `{ requestsPerSecond, p50, p99, total, failed, firstFailure, rssMiB }` (rssMiB: the provider's
 * resident memory at the end of the run). The provider is stopped before it resolves or throws.
 */
export async function benchOidcProvider({ connections = 32, duration = 10, warmup = 3000 } = {}) {
  if (!(duration > 0 && duration <= maxDurationSeconds)) throw new Error(`duration must be from 1 to ${maxDurationSeconds} s (got ${duration})`);
  const mark = cleanups.length;
  try {
    const workDir = await mkdtemp(join(tmpdir(), 'baton-bench-oidc-'));
    cleanups.push(() => rm(workDir, { recursive: true, force: true }));
    const clientSecret = randomBytes(32).toString('base64url');

    progress('oidc-provider: starting');
    const provider = await startProvider(workDir, clientSecret);
    const target = {
      url: provider.url,
      exited: provider.exited,
      path: '/token',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basicAuthorization(clientId, clientSecret),
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }).toString(),
    };
    const check = await checkToken(provider, target);
    progress(`oidc-provider: token checked (${check.header.alg}, ${check.header.typ}, aud ${check.payload.aud}, verified against its JWKS; ${check.bytes}-byte answer)`);

    const warmupRequests = Math.max(warmup, connections);
    progress(`oidc-provider: warm-up, ${warmupRequests} requests`);
    const warm = await load(target, { connections, amount: warmupRequests });
    if (warm.failed > 0) throw new Error(`oidc-provider: warm-up had ${warm.failed} requests without a 2xx; first: ${warm.firstFailure}\nlog (tail):\n${logTail(provider.log)}`);

    progress(`oidc-provider: ${duration} s, ${connections} connections`);
    const run = await load(target, { connections, duration });
    const rss = rssMiB(provider.pid);
    if (run.failed > 0) progress(`oidc-provider: ${run.failed} requests without a 2xx; first: ${run.firstFailure}\nlog (tail):\n${logTail(provider.log)}`);
    return { ...run, rssMiB: rss };
  } finally {
    // Stop the provider and remove its folder before returning, whoever called.
    await runCleanups(mark);
  }
}

// ---------------------------------------------------------------------------------------------
// Standalone: node bench/oidc-provider.mjs [--duration 10] [--connections 32]

const usage = `usage: node bench/oidc-provider.mjs [--duration SECONDS] [--connections N]

  --duration     seconds of the measured run, 1 to ${maxDurationSeconds} (default 10)
  --connections  concurrent HTTP/1.1 connections (default 32)
`;

/** The command line, read once (bench/harness.mjs readCommandLine: --help, exit 2 on a bad option). */
function parseOptions() {
  const options = {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
  };
  return readCommandLine(usage, options, (values) => {
    return { duration: integerOption('duration', values.duration, 1, maxDurationSeconds), connections: integerOption('connections', values.connections, 1, 1024) };
  });
}

async function main() {
  const options = parseOptions();
  // A bound on the whole run in case something hangs: start-up, check, warm-up, run, clean-up.
  const budgetMs = readyTimeoutMs + 60_000 + 2 * (options.duration * 1000 + 30_000);
  setTimeout(() => {
    progress(`still running after ${Math.round(budgetMs / 1000)} s: giving up`);
    void runCleanups().finally(() => process.exit(1));
  }, budgetMs).unref();

  const idleAtStart = await idlePercent();
  let row;
  try {
    row = await benchOidcProvider(options);
  } catch (error) {
    progress(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
    return;
  }
  const version = JSON.parse(readFileSync(join(root, 'node_modules/oidc-provider/package.json'), 'utf8')).version;
  const ms = (v) => (Number.isNaN(v) ? '-' : v.toFixed(2));
  print(`node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown CPU'}), ${process.platform}/${process.arch}, ${idleAtStart}% CPU idle before the start`);
  print(`oidc-provider ${version}, client_credentials, EdDSA at+jwt; ${options.duration} s, ${options.connections} connections, unthrottled`);
  print();
  print('| peer | grant | requests/s (mean) | p50 ms | p99 ms | total requests | non-2xx | RSS MiB at end |');
  print('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  print(`| oidc-provider ${version} | client_credentials (EdDSA JWT) | ${Math.round(row.requestsPerSecond)} | ${ms(row.p50)} | ${ms(row.p99)} | ${row.total} | ${row.failed} | ${Number.isNaN(row.rssMiB) ? '-' : Math.round(row.rssMiB)} |`);
  if (row.failed > 0) {
    process.stderr.write(`bench: oidc-provider: first error: ${row.firstFailure}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
