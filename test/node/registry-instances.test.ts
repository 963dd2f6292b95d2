import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../../src/adapters/db/postgres.js';
import type { Database } from '../../src/adapters/db/sql.js';
import { generateSigningKeys } from '../../src/adapters/signing-keys.js';
import { jwtBearerAssertionType } from '../../src/core/clients/client-auth.js';
import { loadConfig } from '../../src/node/config.js';
import { startBaton, type RunningBaton } from '../../src/node/server.js';
import { bearerOf, captureLogger, postJson, postToken } from '../support/baton.js';
import { testDatabaseUrl } from '../support/database.js';

const schema = `baton_test_${randomUUID().replaceAll('-', '')}`;
const issuer = 'http://baton.test';
const databases: Database[] = [];
const instances: RunningBaton[] = [];

describe.skipIf(testDatabaseUrl === undefined)('two instances on one PostgreSQL', () => {
  beforeAll(async () => {
    const env = {
      PORT: '0',
      BATON_ISSUER: issuer,
      BATON_SIGNING_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
      BATON_AUDIT_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
      BATON_CHECKPOINT_DIR: mkdtempSync(join(tmpdir(), 'baton-checkpoints-')),
    };
    for (let i = 0; i < 2; i++) databases.push(await openPostgres(testDatabaseUrl as string, { schema, max: 4 }));
    // Started together: they migrate once and seed the registry once.
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

  it('seeds the registry from the file once', async () => {
    const rows = await (databases[0] as Database)
      .sql`SELECT version::int AS version, changed_by FROM registry_documents`;
    expect(rows).toEqual([{ version: 1, changed_by: 'seed from policies/registry.json' }]);
    // And says so in the log, once.
    await Promise.all(instances.map((b) => b.checkpoint()));
    const seeds = await (databases[0] as Database).sql<{ canonical: string }>`
      SELECT canonical FROM audit_log WHERE type = 'registry.reload'`;
    expect(seeds.map((r) => JSON.parse(r.canonical) as Record<string, unknown>)).toMatchObject([
      {
        tenant: '*',
        decision: 'applied',
        client: 'start-up',
        reason: 'policies/registry.json: version 1: seeded an empty database',
      },
    ]);
  });

  it('an agent created on one instance authenticates on the other within a second', async () => {
    const [one, two] = instances as [RunningBaton, RunningBaton];
    const { privateKey, publicKey } = await generateKeyPair('EdDSA');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'spread-1' };
    const created = await postJson(
      one,
      '/admin/agents',
      { id: 'spread-agent', name: 'Spread', jwks: { keys: [jwk] } },
      await bearerOf(one, 'ops-console', 'baton:admin'),
    );
    expect(created.status).toBe(201);
    const started = Date.now();
    let serial = 0;
    const attempt = async () => {
      const now = Math.floor(Date.now() / 1000);
      const assertion = await new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA', kid: 'spread-1' })
        .setIssuer('spread-agent')
        .setSubject('spread-agent')
        .setAudience(issuer)
        .setIssuedAt(now)
        .setExpirationTime(now + 60)
        .setJti(`spread-${(serial += 1)}`)
        .sign(privateKey);
      return postToken(
        two,
        {
          grant_type: 'client_credentials',
          client_assertion_type: jwtBearerAssertionType,
          client_assertion: assertion,
        },
        {},
      );
    };
    let result = await attempt();
    while (result.status !== 200 && Date.now() - started < 1000) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      result = await attempt();
    }
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
