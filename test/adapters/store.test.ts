import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, migrations } from '../../src/adapters/db/migrations.js';
import { openPglite } from '../../src/adapters/db/pglite.js';
import type { Database } from '../../src/adapters/db/sql.js';
import { createSqlStore } from '../../src/adapters/db/sql-store.js';
import { StorageUnavailableError } from '../../src/core/errors.js';
import type { Store } from '../../src/core/ports.js';
import { openIsolatedPostgres, testDatabaseUrl } from '../support/database.js';

const backends: [string, () => Promise<Database>, boolean][] = [
  ['PGlite (embedded)', () => openPglite(undefined), false],
  ['PostgreSQL (BATON_TEST_DATABASE_URL)', () => openIsolatedPostgres(testDatabaseUrl as string), testDatabaseUrl === undefined],
];

describe.each(backends)('store on %s', (_name, open, skip) => {
  let db: Database;
  let store: Store;
  beforeAll(async () => {
    if (skip) return;
    db = await open();
    expect(await migrate(db.sql)).toEqual(migrations.map((m) => m.version));
    store = createSqlStore(db.sql);
  });
  afterAll(async () => {
    await db?.close();
  });

  it.skipIf(skip)('migrates once, also when run again or concurrently', async () => {
    expect(await Promise.all([migrate(db.sql), migrate(db.sql)])).toEqual([[], []]);
    const rows = await db.sql<{ version: number }>`SELECT version FROM baton_migrations ORDER BY version`;
    expect(rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
  });

  it.skipIf(skip)('accepts an assertion id once per issuer and tenant', async () => {
    const use = { tenant: 'acme', issuer: 'orchestrator', jti: 'j-1', expiresAt: new Date(Date.now() + 60_000) };
    expect(await store.consumeAssertion(use)).toBe(true);
    expect(await store.consumeAssertion(use)).toBe(false);
    expect(await store.consumeAssertion({ ...use, issuer: 'payments-subagent' })).toBe(true);
    expect(await store.consumeAssertion({ ...use, tenant: 'globex' })).toBe(true);
  });

  it.skipIf(skip)('lets exactly one of many concurrent uses of an assertion id through', async () => {
    const use = { tenant: 'acme', issuer: 'orchestrator', jti: 'race', expiresAt: new Date(Date.now() + 60_000) };
    const results = await Promise.all(Array.from({ length: 20 }, () => store.consumeAssertion(use)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it.skipIf(skip)('records and finds token lineage, scoped by tenant', async () => {
    const root = { tenant: 'acme', jti: 't-root', parentJti: null, rootGrant: 't-root', subject: 'alice', actor: 'orchestrator', clientId: 'agent-platform', expiresAt: new Date('2030-01-01T00:00:00Z') };
    const child = { ...root, jti: 't-child', parentJti: 't-root', actor: 'payments-subagent' };
    await store.recordToken(root);
    await store.recordToken(child);
    expect(await store.findToken('acme', 't-root')).toEqual(root);
    expect(await store.findToken('acme', 't-child')).toEqual(child);
    expect(await store.findToken('globex', 't-root')).toBeUndefined();
    expect(await store.findToken('acme', 'missing')).toBeUndefined();
  });

  it.skipIf(skip)('reports a database that is gone as StorageUnavailableError', async () => {
    const gone = await open();
    await migrate(gone.sql);
    await gone.close();
    const orphan = createSqlStore(gone.sql);
    await expect(orphan.findToken('acme', 'x')).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(orphan.consumeAssertion({ tenant: 'acme', issuer: 'a', jti: 'j', expiresAt: new Date() })).rejects.toBeInstanceOf(StorageUnavailableError);
  });
});
