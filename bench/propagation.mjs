#!/usr/bin/env node
// How long a change made on one Baton instance takes to be in force on the others: three
// instances on one PostgreSQL; on each trial an operator changes something on one instance, and
// the two others are asked until they answer the new way. Three kinds of change:
//   agent created   a new agent (admin API) until its fresh client assertion is accepted;
//   agent suspended that agent suspended (admin API) until its fresh client assertion is refused;
//   policy set      a policy set uploaded whole (admin API) until an AuthZEN decision flips.
// Milliseconds from the change's answer to the first answer the new way (asked every 5 ms),
// one figure per trial and other instance. The SPEC's bound is one second.
//
//   npm run build && node bench/propagation.mjs [--trials 10]

/* global fetch, AbortSignal */

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import { URL, URLSearchParams, fileURLToPath } from 'node:url';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { generateSigningKeys } from '../dist/adapters/signing-keys.js';
import {
  basicAuthorization,
  benchDatabase,
  fixed,
  freePort,
  integerOption,
  limitRunTime,
  machineLine,
  percentile,
  print,
  progress,
  readCommandLine,
  spawnBaton,
  withCleanups,
  workFolder,
} from './harness.mjs';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const { trials } = readCommandLine(
  'node bench/propagation.mjs [--trials N]',
  { trials: { type: 'string' } },
  (values) => ({ trials: integerOption('trials', values.trials, 1, 200, 10) }),
);
const issuer = 'http://baton.bench';
const assertionType = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Past this a change counts as not propagated, and the run fails. */
const deadlineMs = 5000;

async function call(url, path, { method = 'POST', body, form, authorization } = {}) {
  const headers = authorization === undefined ? {} : { authorization };
  let payload;
  if (form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    payload = new URLSearchParams(form);
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const response = await fetch(new URL(path, url), {
    method,
    headers,
    body: payload,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
}

/** Milliseconds from `since` until `ask()` is true on every one of `urls`, asked every 5 ms. */
async function until(urls, since, ask, what) {
  return Promise.all(
    urls.map(async (url) => {
      for (;;) {
        if (await ask(url)) return performance.now() - since;
        if (performance.now() - since > deadlineMs)
          throw new Error(`${what}: not in force at ${url} after ${deadlineMs} ms`);
        await sleep(5);
      }
    }),
  );
}

function summary(label, figures) {
  const sorted = [...figures].sort((a, b) => a - b);
  const over = sorted.filter((ms) => ms > 1000).length;
  print(
    `| ${label} | ${sorted.length} | ${fixed(percentile(sorted, 0.5), 1)} | ${fixed(percentile(sorted, 0.95), 1)} | ${fixed(sorted.at(-1), 1)} | ${over} |`,
  );
}

await withCleanups(async () => {
  limitRunTime(10 * 60_000);
  const work = await workFolder('baton-propagation-');
  const database = benchDatabase('baton_bench_propagation');
  await database.create();
  const settings = {
    DATABASE_URL: database.url,
    BATON_ISSUER: issuer,
    BATON_SIGNING_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
    BATON_AUDIT_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
  };
  progress('starting three instances on one PostgreSQL');
  const instances = [];
  // The first migrates and seeds; the others find it done.
  for (let i = 0; i < 3; i++)
    instances.push(
      await spawnBaton({
        root,
        port: await freePort(),
        settings,
        log: join(work, `baton-${i}.log`),
        label: `Baton ${i}`,
      }),
    );
  const urls = instances.map((b) => b.url);
  const admin = await call(urls[0], '/oauth2/token', {
    form: { grant_type: 'client_credentials', scope: 'baton:admin' },
    authorization: basicAuthorization('ops-console', 'demo-only-ops-console-secret-3b7c9d1e58'),
  });
  if (admin.status !== 200) throw new Error(`operator token: ${JSON.stringify(admin.body)}`);
  const operator = `Bearer ${admin.body.access_token}`;
  const resourceServer = basicAuthorization('payments', 'demo-only-payments-rs-secret-52a9e07d13');

  const folder = Object.fromEntries(
    readdirSync(join(root, 'policies'))
      .filter((n) => /\.cedar(schema)?$/.test(n) || n === 'entities.json')
      .map((n) => [n, readFileSync(join(root, 'policies', n), 'utf8')]),
  );
  const sets = [
    folder,
    { ...folder, 'no-reads.cedar': 'forbid (principal, action == Action::"payments:read", resource);\n' },
  ];
  const evaluation = {
    subject: { type: 'User', id: 'alice' },
    action: { name: 'payments:read' },
    resource: { type: 'Account', id: 'acct-1' },
    context: { scope: ['payments:read'] },
  };
  const decides = async (url) =>
    (await call(url, '/access/v1/evaluation', { body: evaluation, authorization: resourceServer })).body?.decision;

  const created = [];
  const suspended = [];
  const policies = [];
  for (let trial = 0; trial < trials; trial++) {
    const writer = urls[trial % 3];
    const others = urls.filter((u) => u !== writer);
    const id = `bench-agent-${trial}`;
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const jwk = { ...(await exportJWK(publicKey)), kid: `${id}-1`, alg: 'EdDSA' };
    const assertion = () =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid })
        .setIssuer(id)
        .setSubject(id)
        .setAudience(issuer)
        .setJti(randomUUID())
        .setIssuedAt()
        .setExpirationTime('60s')
        .sign(privateKey);
    const authenticates = async (url) =>
      (
        await call(url, '/oauth2/token', {
          form: {
            grant_type: 'client_credentials',
            client_id: id,
            client_assertion_type: assertionType,
            client_assertion: await assertion(),
          },
        })
      ).status === 200;

    const create = await call(writer, '/admin/agents', {
      body: { id, name: `Bench agent ${trial}`, owner: 'alice', jwks: { keys: [jwk] } },
      authorization: operator,
    });
    if (create.status !== 201) throw new Error(`create agent: ${create.status} ${JSON.stringify(create.body)}`);
    created.push(...(await until(others, performance.now(), authenticates, 'agent created')));

    const suspend = await call(writer, '/admin/suspensions', {
      body: { kind: 'agent', id, reason: 'bench' },
      authorization: operator,
    });
    if (suspend.status !== 200 && suspend.status !== 201)
      throw new Error(`suspend agent: ${suspend.status} ${JSON.stringify(suspend.body)}`);
    suspended.push(
      ...(await until(others, performance.now(), async (url) => !(await authenticates(url)), 'agent suspended')),
    );

    // Alternates between the folder's set (reads allowed) and one that forbids reads.
    const next = sets[(trial + 1) % 2];
    const upload = await call(writer, '/admin/policies', { body: { files: next }, authorization: operator });
    if (upload.status !== 200) throw new Error(`upload policies: ${upload.status} ${JSON.stringify(upload.body)}`);
    const expected = next === folder;
    if ((await decides(writer)) !== expected) throw new Error('the writer does not decide with the set it activated');
    policies.push(
      ...(await until(others, performance.now(), async (url) => (await decides(url)) === expected, 'policy set')),
    );
    progress(`trial ${trial + 1} of ${trials} done`);
  }

  print(machineLine());
  print(
    `three Baton instances on one PostgreSQL; ${trials} trials, each change made on one instance in turn and asked of the two others every 5 ms`,
  );
  print();
  print('| change (in force on the other instances after, ms) | figures | p50 | p95 | max | over 1 s |');
  print('| --- | ---: | ---: | ---: | ---: | ---: |');
  summary('agent created: its fresh assertion accepted', created);
  summary('agent suspended: its fresh assertion refused', suspended);
  summary('policy set uploaded: an AuthZEN decision flipped', policies);
});
