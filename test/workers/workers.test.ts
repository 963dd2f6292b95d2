import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import postgres from 'postgres';
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeys } from '../../src/adapters/signing-keys.js';
import { basic, bearerOf, demoChain, postJson, postToken } from '../support/baton.js';
import { testDatabaseUrl } from '../support/database.js';

const skip = testDatabaseUrl === undefined;
const schema = `baton_workers_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
let child: ChildProcess | undefined;
let url = '';
let output = '';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  if (skip) return;
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const keys = JSON.stringify(await generateSigningKeys('EdDSA'));
  // wrangler dev runs the Worker in a local workerd, loopback only; no request leaves the machine.
  child = spawn(
    process.execPath,
    [
      'node_modules/wrangler/bin/wrangler.js',
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--var',
      `BATON_ISSUER:${url}`,
      '--var',
      `BATON_DATABASE_SCHEMA:${schema}`,
      '--var',
      `DATABASE_URL:${testDatabaseUrl}`,
      '--var',
      `BATON_SIGNING_KEYS:${keys}`,
    ],
    {
      env: {
        ...process.env,
        CI: 'true',
        WRANGLER_SEND_METRICS: 'false',
        CLOUDFLARE_CF_FETCH_ENABLED: 'false',
        NO_UPDATE_NOTIFIER: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`wrangler dev did not get ready:\n${output.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}, 120_000);

afterAll(async () => {
  if (child !== undefined && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((resolve) => child?.once('exit', resolve));
  }
  if (!skip) {
    const admin = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {} });
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
});

describe.skipIf(skip)('Baton on Workers (wrangler dev, local workerd)', () => {
  it('runs the exchange chain, a decision and an audit query', async () => {
    const target = { url, issuer: url };
    const [, second] = await demoChain(target, 'payments:read payments:transfer', 'payments:transfer');
    expect(decodeJwt(second).act).toEqual({ sub: 'payments-subagent', act: { sub: 'orchestrator' } });

    const decision = await postJson(
      target,
      '/authorize',
      {
        token: second,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount: 100, currency: 'EUR' },
        action_id: 'workers-1',
      },
      {
        authorization: basic('payments'),
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        'x-request-id': 'workers-req-1',
      },
    );
    // The caller's trace is continued in workerd too (nodejs_compat's AsyncLocalStorage carries it to the entry).
    const answered = /^00-4bf92f3577b34da6a3ce929d0e0e4736-([0-9a-f]{16})-01$/.exec(
      decision.headers.get('traceparent') ?? '',
    );
    expect(answered?.[1]).toMatch(/^[0-9a-f]{16}$/);
    expect(answered?.[1]).not.toBe('00f067aa0ba902b7');
    expect(decision.body).toEqual({ decision: 'allow', action_id: 'workers-1', reasons: ['transfer-up-to-100'] });
    const over = await postJson(
      target,
      '/authorize',
      {
        token: second,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount: 101, currency: 'EUR' },
        action_id: 'workers-2',
      },
      { authorization: basic('payments') },
    );
    expect(over.body).toEqual({ decision: 'deny', action_id: 'workers-2', reasons: [] });

    const auditor = await postToken(
      target,
      { grant_type: 'client_credentials', scope: 'baton:audit' },
      { authorization: basic('ops-console') },
    );
    const headers = { authorization: `Bearer ${auditor.body.access_token as string}` };
    const trail = (await (await fetch(`${url}/audit/actions/workers-1`, { headers })).json()) as {
      entries: { verified: boolean; entry: { type: string } }[];
    };
    expect(trail.entries.map((e) => [e.entry.type, e.verified])).toEqual([
      ['token.exchange', true],
      ['token.exchange', true],
      ['decision', true],
    ]);
    const traced = trail.entries[2]?.entry as { trace_id?: unknown; span_id?: unknown; request_id?: unknown };
    expect([traced.trace_id, traced.span_id, traced.request_id]).toEqual([
      '4bf92f3577b34da6a3ce929d0e0e4736',
      answered?.[1],
      'workers-req-1',
    ]);
    // The bundled set's digest, computed here as the README defines it over the bundle's texts.
    const bundle = Object.fromEntries(
      ['baton.cedarschema', 'delegation.cedar', 'entities.json', 'payments.cedar'].map((n) => {
        const text = readFileSync(join('policies', n), 'utf8');
        return [n, n === 'entities.json' ? JSON.stringify(JSON.parse(text), null, 2) : text];
      }),
    );
    const bundleDigest = createHash('sha256').update(JSON.stringify(bundle)).digest('hex');
    expect(trail.entries.map((e) => (e.entry as { policy_digest?: unknown }).policy_digest)).toEqual([
      bundleDigest,
      bundleDigest,
      bundleDigest,
    ]);
    const admin = { authorization: basic('ops-console') };
    const listed = await fetch(`${url}/admin/policies/versions`, { headers: admin });
    expect(await listed.json()).toEqual({
      versions: [
        {
          version: 1,
          digest: bundleDigest,
          created_by: 'bundle',
          created_at: '1970-01-01T00:00:00.000Z',
          active: true,
          policies: [
            'delegate-within-tenant',
            'max-chain-depth',
            'transfer-up-to-100',
            'transfer-in-account-currency',
            'read-payments',
            'read-calendar',
          ],
        },
      ],
    });
    const rollback = await postJson(target, '/admin/policies/rollback', { version: 1 }, admin);
    expect({ status: rollback.status, body: rollback.body }).toEqual({
      status: 400,
      body: {
        error: 'invalid_request',
        error_description:
          'the policy version was refused; the running set stays: policies are bundled on Workers: deploy to change them',
      },
    });
    expect(((await (await fetch(`${url}/audit/verify`, { headers })).json()) as { valid: boolean }).valid).toBe(true);
  });

  it('keeps the registry in the database, seeded from the bundle, with the admin API', async () => {
    const target = { url, issuer: url };
    const admin = await bearerOf(target, 'ops-console', 'baton:admin');
    const { publicKey } = await generateKeyPair('EdDSA');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'workers-1' };
    const created = await postJson(
      target,
      '/admin/agents',
      { id: 'workers-agent', name: 'W', owner: 'alice', jwks: { keys: [jwk] } },
      admin,
    );
    expect(created).toMatchObject({
      status: 201,
      body: { id: 'workers-agent', name: 'W', owner: 'alice', jwks: { keys: [jwk] } },
    });
    const read = await fetch(`${url}/admin/agents/workers-agent`, { headers: admin });
    expect(read.status).toBe(200);
    const db = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {} });
    try {
      const rows = await db.unsafe(
        `SELECT version::int AS version, changed_by FROM "${schema}".registry_documents ORDER BY version`,
      );
      expect(rows.map((r) => ({ ...r }))).toEqual([
        { version: 1, changed_by: 'seed from the bundled policies/registry.json' },
        { version: 2, changed_by: 'ops-console' },
      ]);
    } finally {
      await db.end();
    }
  });
});
