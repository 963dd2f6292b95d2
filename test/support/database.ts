import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { openPglite } from '../../src/adapters/db/pglite.js';
import { openPostgres } from '../../src/adapters/db/postgres.js';
import type { Database } from '../../src/adapters/db/sql.js';

/** The real PostgreSQL for storage tests; CI sets it (see .ci/run). */
export const testDatabaseUrl = process.env.BATON_TEST_DATABASE_URL || undefined;

/**
 * A fresh PostgreSQL schema of its own, so suites never collide; dropped when closed.
 */
export async function openIsolatedPostgres(url: string): Promise<Database> {
  const schema = `baton_test_${randomUUID().replaceAll('-', '')}`;
  const db = await openPostgres(url, { schema, max: 4 });
  return {
    ...db,
    async close() {
      await db.close();
      const admin = postgres(url, { max: 1, onnotice: () => {} });
      await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    },
  };
}

/** The database live-app tests run on: the real PostgreSQL when configured, else in-memory PGlite. */
export function openTestDatabase(): Promise<Database> {
  return testDatabaseUrl === undefined ? openPglite(undefined) : openIsolatedPostgres(testDatabaseUrl);
}
