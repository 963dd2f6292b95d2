import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../../src/adapters/db/postgres.js';
import type { Database } from '../../src/adapters/db/sql.js';
import { generateSigningKeys } from '../../src/adapters/signing-keys.js';
import type { RegistryDocument } from '../../src/core/registry/document.js';
import { loadConfig } from '../../src/node/config.js';
import { startBaton, type RunningBaton } from '../../src/node/server.js';
import { captureLogger, postJson, postToken, startTestBaton, type TestBaton } from '../support/baton.js';
import { consentedCode } from '../support/consent.js';
import { testDatabaseUrl } from '../support/database.js';

// Registration on the real server and PostgreSQL: the client is in the stored registry, its use is
// recorded in client_uses (migration 14), and the running sweep removes it once unused.

const redirectUri = 'http://localhost:3000/callback';
let baton: TestBaton;
/** The service clock runs `offset` ms ahead of the wall clock. */
let offset = 0;

/** The demo registry with acme open to registration (unused clients kept an hour), as a file. */
function openRegistryFile(): string {
  const registry = JSON.parse(readFileSync('policies/registry.json', 'utf8')) as RegistryDocument;
  registry.tenants = registry.tenants.map((t) =>
    t.id === 'acme' ? { ...t, dynamic_client_registration: { mode: 'open', unused_client_ttl_seconds: 3600 } } : t,
  );
  const file = join(mkdtempSync(join(tmpdir(), 'baton-registration-')), 'registry.json');
  writeFileSync(file, JSON.stringify(registry));
  return file;
}

beforeAll(async () => {
  const file = openRegistryFile();
  baton = await startTestBaton(
    { BATON_REGISTRY: file, BATON_AGENT_SWEEP_INTERVAL: '1' },
    { clock: { now: () => Date.now() + offset } },
  );
});
afterAll(async () => {
  await baton?.close();
});

/** The client ids of the newest stored registry version. */
async function storedClients(): Promise<string[]> {
  const [row] = await baton.database.sql<{ document: string }>`
    SELECT document FROM registry_documents ORDER BY version DESC LIMIT 1`;
  return (JSON.parse((row as { document: string }).document) as RegistryDocument).clients.map((c) => c.client_id);
}

async function until(done: () => Promise<boolean>, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await done()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
}

describe('registration on PostgreSQL', () => {
  it('stores the client, records its use once, and the sweep removes the unused one, audited', async () => {
    const register = (name: string) =>
      postJson(baton, '/oauth2/register', {
        redirect_uris: [redirectUri],
        token_endpoint_auth_method: 'none',
        client_name: name,
      });
    const [used, idle] = await Promise.all([register('Used'), register('Idle')]);
    expect([used.status, idle.status]).toEqual([201, 201]);
    const usedId = used.body.client_id as string;
    const idleId = idle.body.client_id as string;
    expect(await storedClients()).toEqual(expect.arrayContaining([usedId, idleId]));

    offset += 1_800_000;
    const { code, verifier } = await consentedCode(baton, {
      clientId: usedId,
      redirectUri,
      scope: 'payments:read',
      agent: null,
    });
    const token = await postToken(
      baton,
      { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: usedId },
      {},
    );
    expect(token.status, JSON.stringify(token.body)).toBe(200);
    const uses = await baton.database.sql<{ client_id: string }>`SELECT client_id FROM client_uses`;
    expect(uses.map((u) => u.client_id)).toEqual([usedId]);

    // Past the hour since registration: the running sweep removes the idle client only.
    offset = 3_600_000 + 5000;
    await until(async () => !(await storedClients()).includes(idleId), 5000);
    const clients = await storedClients();
    expect(clients).not.toContain(idleId);
    expect(clients).toContain(usedId);
    await until(
      async () => (await baton.database.sql`SELECT 1 FROM audit_log WHERE type = 'registry.sweep'`).length > 0,
      3000,
    );
    const entries = await baton.database.sql<{ canonical: string }>`
      SELECT canonical FROM audit_log WHERE type IN ('registry.sweep', 'registry.registration') ORDER BY seq`;
    expect(entries.map((e) => JSON.parse(e.canonical) as Record<string, unknown>)).toMatchObject([
      { type: 'registry.registration', decision: 'granted' },
      { type: 'registry.registration', decision: 'granted' },
      {
        type: 'registry.sweep',
        tenant: 'acme',
        decision: 'applied',
        reason: `removed dynamically registered client unused for over 3600 s: ${idleId}`,
      },
    ]);
  });

  it('registers 20 clients at once, each with its own id, all in the stored registry afterwards', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        postJson(baton, '/oauth2/register', {
          redirect_uris: [redirectUri],
          token_endpoint_auth_method: 'none',
          client_name: `Concurrent ${i}`,
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    const ids = results.map((r) => r.body.client_id as string);
    expect(new Set(ids).size).toBe(20);
    expect(await storedClients()).toEqual(expect.arrayContaining(ids));
    // Each is usable on this instance at once: the authorization request shows the sign-in page.
    for (const id of ids) {
      const query = new URLSearchParams({
        response_type: 'code',
        client_id: id,
        redirect_uri: redirectUri,
        scope: 'payments:read',
        state: 's',
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
      });
      const page = await fetch(`${baton.url}/oauth2/authorize?${query}`, { redirect: 'manual' });
      expect(page.status).toBe(200);
    }
  });
});

describe.skipIf(testDatabaseUrl === undefined)('two instances on one PostgreSQL', () => {
  const schema = `baton_test_${randomUUID().replaceAll('-', '')}`;
  const databases: Database[] = [];
  const instances: RunningBaton[] = [];
  beforeAll(async () => {
    const env = {
      PORT: '0',
      BATON_ISSUER: 'http://baton.test',
      BATON_REGISTRY: openRegistryFile(),
      BATON_SIGNING_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
      BATON_AUDIT_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
      BATON_CHECKPOINT_DIR: mkdtempSync(join(tmpdir(), 'baton-checkpoints-')),
    };
    for (let i = 0; i < 2; i++) databases.push(await openPostgres(testDatabaseUrl as string, { schema, max: 4 }));
    instances.push(
      ...(await Promise.all(
        databases.map((database) => startBaton(loadConfig(env), { database, logger: captureLogger() })),
      )),
    );
  });
  afterAll(async () => {
    await Promise.all(instances.map((b) => b.close()));
    await Promise.all(databases.map((d) => d.close()));
    const admin = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {} });
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });

  it('a client registered at one instance signs in at the other within a second', async () => {
    const [first, second] = instances as [RunningBaton, RunningBaton];
    const registered = await postJson(first, '/oauth2/register', {
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'none',
    });
    expect(registered.status, JSON.stringify(registered.body)).toBe(201);
    const id = registered.body.client_id as string;
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: id,
      redirect_uri: redirectUri,
      scope: 'payments:read',
      state: 's',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    let status = 0;
    await until(async () => {
      status = (await fetch(`${second.url}/oauth2/authorize?${query}`, { redirect: 'manual' })).status;
      return status === 200;
    }, 1500);
    expect(status).toBe(200);
  });
});
