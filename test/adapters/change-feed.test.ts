import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bumpVersion, currentVersion, followChanges } from '../../src/adapters/db/change-feed.js';
import { migrate } from '../../src/adapters/db/migrations.js';
import { openPglite } from '../../src/adapters/db/pglite.js';
import { openPostgres } from '../../src/adapters/db/postgres.js';
import type { Database } from '../../src/adapters/db/sql.js';
import type { Logger } from '../../src/core/ports.js';
import { testDatabaseUrl } from '../support/database.js';

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Resolves with each (topic, version) the follower reports, in order. */
function recorder() {
  const seen: [string, number][] = [];
  const waiters: (() => void)[] = [];
  return {
    seen,
    onChange: async (topic: string, version: number) => {
      seen.push([topic, version]);
      waiters.splice(0).forEach((w) => w());
    },
    async until(count: number, ms: number): Promise<void> {
      const deadline = Date.now() + ms;
      while (seen.length < count && Date.now() < deadline)
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 20);
        });
    },
  };
}

describe.skipIf(testDatabaseUrl === undefined)('change feed on PostgreSQL, two instances on one schema', () => {
  const schema = `baton_test_${randomUUID().replaceAll('-', '')}`;
  let writer: Database;
  let reader: Database;
  beforeAll(async () => {
    writer = await openPostgres(testDatabaseUrl as string, { schema, max: 2 });
    reader = await openPostgres(testDatabaseUrl as string, { schema, max: 2 });
    await migrate(writer.sql);
  });
  afterAll(async () => {
    await reader?.close();
    await writer?.close();
    const admin = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {} });
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });

  it('wakes the other instance by NOTIFY at commit, not on rollback, and reports each topic once per version', async () => {
    const seen = recorder();
    // A poll far beyond the test: only the notification can deliver the change in time.
    const follower = await followChanges(reader, ['registry', 'policies'], {
      onChange: seen.onChange,
      logger: quiet,
      pollMilliseconds: 60_000,
    });
    try {
      await writer.sql
        .begin(async (tx) => {
          await bumpVersion(tx, 'registry');
          throw new Error('rolled back');
        })
        .catch(() => undefined);
      expect(await currentVersion(writer.sql, 'registry')).toBe(0);
      const version = await writer.sql.begin((tx) => bumpVersion(tx, 'registry'));
      expect(version).toBe(1);
      await seen.until(1, 2000);
      expect(seen.seen).toEqual([['registry', 1]]);
      await writer.sql.begin((tx) => bumpVersion(tx, 'policies'));
      await writer.sql.begin((tx) => bumpVersion(tx, 'other-topic'));
      await seen.until(2, 2000);
      await follower.check();
      expect(seen.seen).toEqual([
        ['registry', 1],
        ['policies', 1],
      ]);
    } finally {
      await follower.stop();
    }
  });

  it('retries a change whose handler failed at the next wake-up', async () => {
    let failures = 1;
    const seen: number[] = [];
    const follower = await followChanges(reader, ['retry'], {
      onChange: async (_topic, version) => {
        if (failures-- > 0) throw new Error('not now');
        seen.push(version);
      },
      logger: quiet,
      pollMilliseconds: 60_000,
    });
    try {
      await writer.sql.begin((tx) => bumpVersion(tx, 'retry'));
      await follower.check();
      await follower.check();
      expect(seen).toEqual([1]);
    } finally {
      await follower.stop();
    }
  });

  it('keeps up by polling alone when notifications never arrive', async () => {
    const seen = recorder();
    const deaf: Database = { ...reader, listen: () => Promise.reject(new Error('LISTEN is not supported')) };
    const follower = await followChanges(deaf, ['poll-only'], {
      onChange: seen.onChange,
      logger: quiet,
      pollMilliseconds: 50,
    });
    try {
      await writer.sql.begin((tx) => bumpVersion(tx, 'poll-only'));
      await seen.until(1, 2000);
      expect(seen.seen).toEqual([['poll-only', 1]]);
    } finally {
      await follower.stop();
    }
  });
});

describe('change feed on PGlite', () => {
  it('starts from the versions the instance already holds', async () => {
    const db = await openPglite(undefined);
    try {
      await migrate(db.sql);
      await db.sql.begin((tx) => bumpVersion(tx, 'registry'));
      await db.sql.begin((tx) => bumpVersion(tx, 'registry'));
      const seen = recorder();
      const follower = await followChanges(db, ['registry'], {
        onChange: seen.onChange,
        known: new Map([['registry', 2]]),
        logger: quiet,
        pollMilliseconds: 60_000,
      });
      await follower.check();
      expect(seen.seen).toEqual([]);
      await db.sql.begin((tx) => bumpVersion(tx, 'registry'));
      await seen.until(1, 2000);
      expect(seen.seen).toEqual([['registry', 3]]);
      await follower.stop();
    } finally {
      await db.close();
    }
  });
});
