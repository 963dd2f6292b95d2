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
import { mintAgentAssertion } from '../../src/cli/demo-kit.js';
import { bearerOf, captureLogger, postJson, postToken } from '../support/baton.js';
import { testDatabaseUrl } from '../support/database.js';

const schema = `baton_test_${randomUUID().replaceAll('-', '')}`;
const issuer = 'http://baton.test';
const databases: Database[] = [];
const instances: RunningBaton[] = [];

describe.skipIf(testDatabaseUrl === undefined)('three instances on one PostgreSQL', () => {
  beforeAll(async () => {
    const env = {
      PORT: '0',
      BATON_ISSUER: issuer,
      BATON_SIGNING_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
      BATON_AUDIT_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
      BATON_CHECKPOINT_DIR: mkdtempSync(join(tmpdir(), 'baton-checkpoints-')),
    };
    for (let i = 0; i < 3; i++) databases.push(await openPostgres(testDatabaseUrl as string, { schema, max: 4 }));
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

  it('an agent created on one instance authenticates on the others within a second; deleted, it is refused there within a second', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'spread-1' };
    let serial = 0;
    /** One client-credentials request by `agent` at `baton`, proven by a fresh assertion. */
    const attempt = async (baton: RunningBaton, agent: string) => {
      const now = Math.floor(Date.now() / 1000);
      const assertion = await new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA', kid: 'spread-1' })
        .setIssuer(agent)
        .setSubject(agent)
        .setAudience(issuer)
        .setIssuedAt(now)
        .setExpirationTime(now + 60)
        .setJti(`spread-${(serial += 1)}`)
        .sign(privateKey);
      const result = await postToken(
        baton,
        {
          grant_type: 'client_credentials',
          client_assertion_type: jwtBearerAssertionType,
          client_assertion: assertion,
        },
        {},
      );
      return result.status;
    };
    /** Milliseconds from `since` until `baton` answers `status` to the agent (polled), or Infinity after 2 s. */
    const inForce = async (baton: RunningBaton, agent: string, status: number, since: number): Promise<number> => {
      while (Date.now() - since < 2000) {
        if ((await attempt(baton, agent)) === status) return Date.now() - since;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return Infinity;
    };
    const admins = await Promise.all(instances.map((b) => bearerOf(b, 'ops-console', 'baton:admin')));
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const writer = i % instances.length;
      const agent = `spread-agent-${i}`;
      const created = await postJson(
        instances[writer] as RunningBaton,
        '/admin/agents',
        { id: agent, name: 'Spread', owner: 'alice', jwks: { keys: [jwk] } },
        admins[writer],
      );
      expect(created.status).toBe(201);
      const since = Date.now();
      // The writer swapped before it answered.
      expect(await attempt(instances[writer] as RunningBaton, agent)).toBe(200);
      const others = instances.filter((_, j) => j !== writer);
      delays.push(...(await Promise.all(others.map((b) => inForce(b, agent, 200, since)))));
      if (i % 2 === 1) {
        const deleted = await fetch(`${(instances[writer] as RunningBaton).url}/admin/agents/${agent}`, {
          method: 'DELETE',
          headers: admins[writer] as Record<string, string>,
        });
        expect(deleted.status).toBe(204);
        const gone = Date.now();
        delays.push(...(await Promise.all(others.map((b) => inForce(b, agent, 401, gone)))));
      }
    }
    const sorted = [...delays].sort((x, y) => x - y);
    // The distribution, for the record (the deadline below is the assertion).
    console.info(
      `registry change in force on the other instances after (ms): ${sorted.join(', ')}; median ${sorted[Math.floor(sorted.length / 2)]}, max ${sorted.at(-1)}`,
    );
    expect(sorted.filter((d) => d >= 1000)).toEqual([]);
  });

  it("a suspension on one instance refuses the agent's fresh assertion on the others within a second; resumed, it is back within a second", async () => {
    /** The orchestrator's client-credentials request at `baton`, with a fresh assertion: its status and body. */
    const attempt = async (baton: RunningBaton) => {
      const result = await postToken(
        baton,
        {
          grant_type: 'client_credentials',
          client_assertion_type: jwtBearerAssertionType,
          client_assertion: await mintAgentAssertion('orchestrator', issuer),
        },
        {},
      );
      return { status: result.status, body: result.body };
    };
    /** Milliseconds from `since` until `baton` answers `status` (polled), or Infinity after 2 s. */
    const inForce = async (baton: RunningBaton, status: number, since: number): Promise<number> => {
      while (Date.now() - since < 2000) {
        if ((await attempt(baton)).status === status) return Date.now() - since;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return Infinity;
    };
    const admins = await Promise.all(instances.map((b) => bearerOf(b, 'ops-console', 'baton:admin')));
    const delays: number[] = [];
    for (let i = 0; i < instances.length; i++) {
      const writer = instances[i] as RunningBaton;
      const others = instances.filter((_, j) => j !== i);
      const suspended = await postJson(writer, '/admin/suspensions', { kind: 'agent', id: 'orchestrator' }, admins[i]);
      expect(suspended.status, JSON.stringify(suspended.body)).toBe(201);
      const since = Date.now();
      // The writer swapped before it answered.
      expect(await attempt(writer)).toEqual({
        status: 401,
        body: { error: 'invalid_client', error_description: 'agent orchestrator is suspended' },
      });
      delays.push(...(await Promise.all(others.map((b) => inForce(b, 401, since)))));
      const resumed = await fetch(`${writer.url}/admin/suspensions/agent/orchestrator`, {
        method: 'DELETE',
        headers: admins[i] as Record<string, string>,
      });
      expect(resumed.status).toBe(204);
      const back = Date.now();
      delays.push(...(await Promise.all(others.map((b) => inForce(b, 200, back)))));
    }
    const sorted = [...delays].sort((x, y) => x - y);
    console.info(
      `suspension and resumption in force on the other instances after (ms): ${sorted.join(', ')}; median ${sorted[Math.floor(sorted.length / 2)]}, max ${sorted.at(-1)}`,
    );
    expect(sorted.filter((d) => d >= 1000)).toEqual([]);
  });
});
