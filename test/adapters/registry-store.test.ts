import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair } from 'jose';
import { currentVersion } from '../../src/adapters/db/change-feed.js';
import { migrate } from '../../src/adapters/db/migrations.js';
import { openPglite } from '../../src/adapters/db/pglite.js';
import { openPostgres } from '../../src/adapters/db/postgres.js';
import {
  createSqlRegistryStore,
  followRegistry,
  keptRegistryVersions,
  type FollowedRegistry,
} from '../../src/adapters/db/registry-store.js';
import type { Database } from '../../src/adapters/db/sql.js';
import { systemClock } from '../../src/adapters/system-clock.js';
import type { Logger } from '../../src/core/ports.js';
import { RegistryError } from '../../src/core/registry/compile.js';
import { StorageUnavailableError } from '../../src/core/errors.js';
import type { RegistryDocument } from '../../src/core/registry/document.js';
import { readRegistryFile } from '../../src/node/registry-and-policies.js';
import { testDatabaseUrl } from '../support/database.js';

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const issuer = 'http://baton.test';
const options = { issuer, clock: systemClock };

let demo: RegistryDocument;
let jwk: Record<string, unknown>;
beforeAll(async () => {
  demo = await readRegistryFile('policies/registry.json', issuer);
  jwk = { ...(await exportJWK((await generateKeyPair('EdDSA')).publicKey)), kid: 'k1' };
});

/** The demo document with one more acme agent. */
const withAgent = (doc: RegistryDocument, id: string): RegistryDocument => ({
  ...doc,
  agents: [...doc.agents, { id, tenant: 'acme', name: id, owner: 'alice', jwks: { keys: [jwk as never] } }],
});

/** The store contract, on any database: `open` gives a migrated database of its own. */
function storeContract(name: string, open: () => Promise<Database>): void {
  describe(name, () => {
    let db: Database;
    beforeAll(async () => {
      db = await open();
      await migrate(db.sql);
    });
    afterAll(async () => {
      await db?.close();
    });

    it('starts empty at version 0, keeps every version with who wrote it, and bumps the registry topic', async () => {
      const store = createSqlRegistryStore(db.sql, options);
      expect(await store.read()).toEqual({
        version: 0,
        document: {
          tenants: [],
          trusted_issuers: [],
          workload_issuers: [],
          agents: [],
          clients: [],
          resource_servers: [],
          users: [],
          suspensions: [],
        },
      });
      const seeded = await store.edit('seed', () => demo);
      expect(seeded.version).toBe(1);
      expect(seeded.changed).toBe(true);
      expect(seeded.registry.agents.has('orchestrator')).toBe(true);
      const added = await store.edit('ops-console', (doc) => withAgent(doc, 'contract-agent'));
      expect(added.version).toBe(2);
      expect(await currentVersion(db.sql, 'registry')).toBe(2);
      expect((await store.read()).document.agents.map((a) => a.id)).toContain('contract-agent');
      expect(await db.sql`SELECT version::int AS version, changed_by FROM registry_documents ORDER BY version`).toEqual(
        [
          { version: 1, changed_by: 'seed' },
          { version: 2, changed_by: 'ops-console' },
        ],
      );
    });

    it('writes nothing for an unchanged document', async () => {
      const store = createSqlRegistryStore(db.sql, options);
      const before = await store.read();
      const same = await store.edit('noop', (doc) => doc);
      expect({ version: same.version, changed: same.changed }).toEqual({ version: before.version, changed: false });
      expect(await currentVersion(db.sql, 'registry')).toBe(before.version);
    });

    it('refuses an invalid result with RegistryError and stores nothing; a throwing edit likewise', async () => {
      const store = createSqlRegistryStore(db.sql, options);
      const before = await store.read();
      const refused = await store.edit('bad', (doc) => withAgent(doc, 'orchestrator')).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(RegistryError);
      expect((refused as RegistryError).problems).toEqual([
        {
          path: `/agents/${before.document.agents.length}/id`,
          message: '"orchestrator" is already registered as an agent',
        },
      ]);
      await expect(
        store.edit('thrower', () => {
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      expect(await store.read()).toEqual(before);
      expect(await currentVersion(db.sql, 'registry')).toBe(before.version);
    });

    it('reuses the keys imported for one version in the next, unless they changed', async () => {
      const store = createSqlRegistryStore(db.sql, options);
      const first = await store.edit('ops-console', (doc) => withAgent(doc, 'keyed-agent'));
      const second = await store.edit('ops-console', (doc) => ({
        ...doc,
        agents: doc.agents.map((a) =>
          a.id === 'keyed-agent' ? { ...a, jwks: { keys: [{ ...jwk, kid: 'k2' } as never] } } : a,
        ),
      }));
      expect(second.registry.agents.get('orchestrator')?.resolve).toBe(
        first.registry.agents.get('orchestrator')?.resolve,
      );
      expect(second.registry.agents.get('keyed-agent')?.resolve).not.toBe(
        first.registry.agents.get('keyed-agent')?.resolve,
      );
    });

    it('keeps the last versions only', async () => {
      const store = createSqlRegistryStore(db.sql, options);
      const start = (await store.read()).version;
      for (let i = 0; i < keptRegistryVersions + 2; i++)
        await store.edit('churn', (doc) => ({
          ...doc,
          tenants: doc.tenants.map((t, j) => (j === 0 ? { ...t, name: `Acme ${i}` } : t)),
        }));
      const [row] = await db.sql<{ n: number; low: number; high: number }>`
        SELECT count(*)::int AS n, min(version)::int AS low, max(version)::int AS high FROM registry_documents`;
      const high = start + keptRegistryVersions + 2;
      expect(row).toEqual({ n: keptRegistryVersions, low: high - keptRegistryVersions + 1, high });
    });

    it('serializes concurrent edits: none is lost, versions follow one another', async () => {
      const store = createSqlRegistryStore(db.sql, options);
      const before = (await store.read()).version;
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.edit(`writer-${i}`, (doc) => withAgent(doc, `racer-${i}`))),
      );
      expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 8 }, (_, i) => before + i + 1),
      );
      const ids = (await store.read()).document.agents.map((a) => a.id);
      for (let i = 0; i < 8; i++) expect(ids).toContain(`racer-${i}`);
    });
  });
}

storeContract('registry store on PGlite', () => openPglite(undefined));

describe.skipIf(testDatabaseUrl === undefined)('registry store on PostgreSQL', () => {
  const schema = `baton_test_${randomUUID().replaceAll('-', '')}`;
  storeContract('contract', () => openPostgres(testDatabaseUrl as string, { schema, max: 4 }));

  it('answers an edit the database cannot take as unavailable (503), not as a failure of the edit', async () => {
    const closed = await openPostgres(testDatabaseUrl as string, { schema, max: 1 });
    await closed.close();
    const refused = await createSqlRegistryStore(closed.sql, options)
      .edit('ops-console', (doc) => doc)
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(StorageUnavailableError);
  });

  describe('instances following one registry', () => {
    const shared = `baton_test_${randomUUID().replaceAll('-', '')}`;
    const dbs: Database[] = [];
    const followers: FollowedRegistry[] = [];
    beforeAll(async () => {
      for (let i = 0; i < 3; i++) dbs.push(await openPostgres(testDatabaseUrl as string, { schema: shared, max: 3 }));
      await migrate((dbs[0] as Database).sql);
    });
    afterAll(async () => {
      await Promise.all(followers.map((f) => f.stop()));
      await Promise.all(dbs.map((d) => d.close()));
      const admin = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {} });
      await admin.unsafe(`DROP SCHEMA IF EXISTS "${shared}" CASCADE`);
      await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    });

    it('seeds once when instances start together, and the database wins from then on', async () => {
      let loads = 0;
      const seed = {
        load: async () => {
          loads += 1;
          return demo;
        },
        source: 'policies/registry.json',
      };
      followers.push(...(await Promise.all(dbs.map((db) => followRegistry(db, { ...options, logger: quiet, seed })))));
      expect(followers.map((f) => f.version())).toEqual([1, 1, 1]);
      const rows = await (dbs[0] as Database).sql`SELECT count(*)::int AS n FROM registry_documents`;
      expect(rows).toEqual([{ n: 1 }]);
      expect(loads).toBeGreaterThanOrEqual(1);
    });

    it('swaps the writer at once and the others within a second', async () => {
      const [a, b, c] = followers as [FollowedRegistry, FollowedRegistry, FollowedRegistry];
      const started = Date.now();
      const { version } = await a.store.edit('ops-console', (doc) => withAgent(doc, 'followed-agent'));
      expect(a.registry().agents.has('followed-agent')).toBe(true);
      expect(a.version()).toBe(version);
      for (const other of [b, c]) {
        while (!other.registry().agents.has('followed-agent') && Date.now() - started < 1000)
          await new Promise((resolve) => setTimeout(resolve, 10));
        expect(other.registry().agents.has('followed-agent')).toBe(true);
        expect(other.version()).toBe(version);
      }
    });
  });
});

describe('an instance started on a stored registry', () => {
  it('warns when the registry file differs from it, or cannot be read, and runs the stored one', async () => {
    const db = await openPglite(undefined);
    try {
      await migrate(db.sql);
      const source = 'policies/registry.json';
      const first = await followRegistry(db, { ...options, logger: quiet, seed: { load: async () => demo, source } });
      await first.stop();
      const started = async (load: () => Promise<RegistryDocument>) => {
        const warnings: [string, unknown][] = [];
        const logger: Logger = { ...quiet, warn: (message, fields) => void warnings.push([message, fields]) };
        const follower = await followRegistry(db, { ...options, logger, seed: { load, source } });
        await follower.stop();
        return { warnings, agents: [...follower.registry().agents.keys()] };
      };

      expect((await started(async () => demo)).warnings).toEqual([]);
      const edited = await started(async () => withAgent(demo, 'file-only-agent'));
      expect(edited.warnings).toEqual([
        [
          'the registry file differs from the stored registry, which stays in force; apply it with baton registry apply or a reload',
          { file: source, version: 1, changes: ['+ agents/file-only-agent'] },
        ],
      ]);
      expect(edited.agents).not.toContain('file-only-agent');
      const unreadable = await started(() => Promise.reject(new Error('policies/registry.json: not JSON')));
      expect(unreadable.warnings).toEqual([
        [
          'the registry file cannot be read; the stored registry stays in force',
          { file: source, detail: 'policies/registry.json: not JSON' },
        ],
      ]);
      expect(unreadable.agents).toEqual(edited.agents);
    } finally {
      await db.close();
    }
  });
});
