// The peer of Baton's client-credentials grant (SPEC "Performance targets"): node-oidc-provider
// issuing EdDSA-signed JWT access tokens by client_credentials, on this machine. See
// bench/README.md, "Peer: node-oidc-provider".
//
//   node bench/oidc-provider.mjs [--duration 10] [--connections 32]
//
// `startOidcProvider()` starts bench/oidc-provider-server.mjs as a child process on 127.0.0.1,
// checks once that a token request yields an at+jwt signed with EdDSA that verifies against the
// provider's JWKS and warms it up; each `run()` then drives POST /token with autocannon (closed
// loop, one constant request). The clean-ups stop the child, on success, failure and Ctrl-C.
// bench/ratios.mjs runs it in turns with Baton's client-credentials grant. Run standalone, it
// prints one markdown table and exits non-zero if any request did not get a 2xx.

// The repo's eslint config declares no runtime globals; these two Node 20 globals have no module to import.
/* global fetch, AbortSignal */

import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { URL, URLSearchParams, fileURLToPath } from 'node:url';
import { loadRun } from './load.mjs';
import {
  basicAuthorization,
  cleanEnv,
  fixed,
  freePort,
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
  secondsOption,
  spawnNode,
  whole,
  withCleanups,
  workFolder,
} from './harness.mjs';

const root = join(import.meta.dirname, '..');
// The same resource, scope and client as bench/oidc-provider-server.mjs (which gets the client through its environment).
const resource = 'https://payments.example';
const scope = 'payments:read payments:transfer';
const clientId = 'payments-client';
const readyTimeoutMs = 30_000;
const stopTimeoutMs = 5_000;
/** The provider's tokens live 300 s (its accessTokenTTL); a run never needs one that long, but stay well inside it. */
const maxDurationSeconds = 240;

/** Starts bench/oidc-provider-server.mjs on a free loopback port; resolves once its discovery document answers 200. */
async function startProvider(workDir, clientSecret) {
  const port = await freePort();
  // DEBUG would turn on the provider's per-request debug output; the rest as for Baton (cleanEnv).
  const env = {
    ...cleanEnv(),
    NODE_ENV: 'production',
    PORT: String(port),
    BENCH_CLIENT_ID: clientId,
    BENCH_CLIENT_SECRET: clientSecret,
  };
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
  const metaResponse = await fetch(new URL('/.well-known/openid-configuration', provider.url), {
    signal: AbortSignal.timeout(10_000),
  });
  if (!metaResponse.ok) throw new Error(`oidc-provider discovery: HTTP ${metaResponse.status}`);
  const meta = await metaResponse.json();
  const response = await fetch(new URL(target.path, provider.url), {
    method: 'POST',
    headers: target.headers,
    body: target.body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`oidc-provider refused client_credentials (HTTP ${response.status}): ${text}`);
  const token = JSON.parse(text).access_token;
  const header = decodeProtectedHeader(token);
  if (header.alg !== 'EdDSA' || header.typ !== 'at+jwt')
    throw new Error(`oidc-provider's access token is not an EdDSA at+jwt: header ${JSON.stringify(header)}`);
  const jwksResponse = await fetch(meta.jwks_uri, { signal: AbortSignal.timeout(10_000) });
  if (!jwksResponse.ok) throw new Error(`oidc-provider JWKS: HTTP ${jwksResponse.status}`);
  const { payload } = await jwtVerify(token, createLocalJWKSet(await jwksResponse.json()), {
    issuer: meta.issuer,
    audience: resource,
    typ: 'at+jwt',
    algorithms: ['EdDSA'],
  });
  if (payload.client_id !== clientId || payload.scope !== scope)
    throw new Error(`unexpected token claims: ${JSON.stringify(payload)}`);
  return { header, payload, bytes: text.length };
}

/**
 * node-oidc-provider ready for its client_credentials grant under load: started in a new folder,
 * its token checked, `warmup` requests sent (not reported). Each `run(duration)` is then
 * `duration` seconds on `connections` connections, closed loop, and resolves with `{
 * requestsPerSecond, p50, p99, total, failed, firstFailure, rssMiB }` (rssMiB: the provider's
 * resident memory at the end of the run). The clean-ups stop the provider and remove its folder.
 */
export async function startOidcProvider({ connections = 32, warmup = 3000 } = {}) {
  const workDir = await workFolder('baton-bench-oidc-');
  const clientSecret = randomBytes(32).toString('base64url');

  progress('oidc-provider: starting');
  const provider = await startProvider(workDir, clientSecret);
  const target = {
    url: provider.url,
    exited: provider.exited,
    path: '/token',
    label: 'oidc-provider',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: basicAuthorization(clientId, clientSecret),
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }).toString(),
  };
  const check = await checkToken(provider, target);
  progress(
    `oidc-provider: token checked (${check.header.alg}, ${check.header.typ}, aud ${check.payload.aud}, verified against its JWKS; ${check.bytes}-byte answer)`,
  );

  const warmupRequests = Math.max(warmup, connections);
  progress(`oidc-provider: warm-up, ${warmupRequests} requests`);
  const warm = await loadRun(target, { connections, amount: warmupRequests });
  if (warm.failed > 0)
    throw new Error(
      `oidc-provider: warm-up had ${warm.failed} requests without a 2xx; first: ${warm.firstFailure}\nlog (tail):\n${logTail(provider.log)}`,
    );

  return {
    log: provider.log,
    async run(duration) {
      if (!(duration >= 0.5 && duration <= maxDurationSeconds))
        throw new Error(`duration must be from 0.5 to ${maxDurationSeconds} s (got ${duration})`);
      progress(`oidc-provider: ${duration} s, ${connections} connections`);
      const run = await loadRun(target, { connections, duration });
      if (run.failed > 0)
        progress(
          `oidc-provider: ${run.failed} requests without a 2xx; first: ${run.firstFailure}\nlog (tail):\n${logTail(provider.log)}`,
        );
      return { ...run, rssMiB: processMemory(provider.pid)?.rss ?? NaN };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Standalone: node bench/oidc-provider.mjs [--duration 10] [--connections 32]

const usage = `usage: node bench/oidc-provider.mjs [--duration SECONDS] [--connections N]

  --duration     seconds of the measured run, 0.5 to ${maxDurationSeconds} (default 10)
  --connections  concurrent HTTP/1.1 connections (default 32)
`;

/** The command line, read once (bench/harness.mjs readCommandLine: --help, exit 2 on a bad option). */
function parseOptions() {
  const options = {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
  };
  return readCommandLine(usage, options, (values) => {
    return {
      duration: secondsOption('duration', values.duration, maxDurationSeconds),
      connections: integerOption('connections', values.connections, 1, 1024),
    };
  });
}

function printTable(row, options, machine) {
  const version = JSON.parse(readFileSync(join(root, 'node_modules/oidc-provider/package.json'), 'utf8')).version;
  print(`${machineLine()}, ${machine.idleText}`);
  print(
    `oidc-provider ${version}, client_credentials, EdDSA at+jwt; ${options.duration} s, ${options.connections} connections, unthrottled`,
  );
  print();
  print('| peer | grant | requests/s (mean) | p50 ms | p99 ms | total requests | non-2xx | RSS MiB at end |');
  print('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  print(
    `| oidc-provider ${version} | client_credentials (EdDSA JWT) | ${Math.round(row.requestsPerSecond)} | ${fixed(row.p50)} | ${fixed(row.p99)} | ${row.total} | ${row.failed} | ${whole(row.rssMiB)} |`,
  );
}

async function main() {
  const options = parseOptions();
  // Start-up, check, warm-up, run, clean-up.
  limitRunTime(readyTimeoutMs + 60_000 + 2 * (options.duration * 1000 + 30_000));
  const machine = await machineAtStart();
  let row;
  try {
    row = await withCleanups(async () => (await startOidcProvider(options)).run(options.duration));
  } catch (error) {
    progress(messageOf(error));
    process.exitCode = 1;
    return;
  }
  printTable(row, options, machine);
  if (row.failed > 0) {
    progress(`oidc-provider: first error: ${row.firstFailure}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
