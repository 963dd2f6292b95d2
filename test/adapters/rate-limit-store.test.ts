import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/adapters/db/migrations.js';
import { openPglite } from '../../src/adapters/db/pglite.js';
import { createRateLimitStore } from '../../src/adapters/db/rate-limit-store.js';
import type { Database } from '../../src/adapters/db/sql.js';
import { bucketShape } from '../../src/core/clients/rate-limit.js';
import type { RateLimitStore } from '../../src/core/ports.js';
import { openIsolatedPostgres, testDatabaseUrl } from '../support/database.js';
import { memoryRateLimitStore } from '../support/memory/rate-limit-store.js';

const start = Date.UTC(2026, 0, 1);

describe.each([
  ['PGlite', () => openPglite(undefined)],
  ...(testDatabaseUrl === undefined
    ? []
    : [['PostgreSQL', () => openIsolatedPostgres(testDatabaseUrl as string)] as const]),
] as const)('the shared rate limit buckets on %s', (_, open) => {
  let db: Database;
  let store: RateLimitStore;
  beforeAll(async () => {
    db = await open();
    await migrate(db.sql);
    store = createRateLimitStore(db.sql);
  });
  afterAll(async () => {
    await db?.close();
  });

  it('does what the in-memory store does: starts full, refills by fractions up to the burst, goes into debt, never back in time', async () => {
    const memory = memoryRateLimitStore();
    const shape = bucketShape(5);
    // [ms after start, caller, admitted]
    const steps: [number, string, number][] = [
      [0, 'a', 3],
      [0, 'a', 0],
      [150, 'a', 1],
      [150, 'b', 12],
      [400, 'b', 0],
      [400, 'a', 0],
      [300, 'a', 2], // a clock behind the row's: no refill, no time taken back
      [5_000, 'a', 1], // capped at the burst
      [5_000, 'b', 0],
      [5_050, 'a', 0.5],
    ];
    const levels: number[] = [];
    for (const [ms, callerId, admitted] of steps) {
      const charge = [{ callerId, admitted }];
      const [sqlLevel, memoryLevel] = [
        (await store.charge(charge, shape, start + ms)).get(callerId),
        (await memory.charge(charge, shape, start + ms)).get(callerId),
      ];
      expect([ms, callerId, sqlLevel]).toEqual([ms, callerId, expect.closeTo(memoryLevel as number, 9)]);
      levels.push(sqlLevel as number);
    }
    // By hand: a 7, 7, 6.75; b -2, -0.75; a at 0.4 s 8; at 0.3 s (behind) 8 less 2, not less 0.5 s of refill.
    expect(levels.slice(0, 7)).toEqual([7, 7, 6.75, -2, -0.75, 8, 6].map((l) => expect.closeTo(l, 9)));
    // By hand: b full (10); a 10 less 1 at 5 s, then 0.25 refilled and 0.5 taken by 5.05 s.
    expect((await store.charge([{ callerId: 'b', admitted: 0 }], shape, start + 5_050)).get('b')).toBeCloseTo(10, 9);
    expect((await store.charge([{ callerId: 'a', admitted: 0 }], shape, start + 5_050)).get('a')).toBeCloseTo(8.75, 9);
  });

  it('charges many callers in one statement and answers each level', async () => {
    const shape = bucketShape(100);
    const charges = Array.from({ length: 50 }, (_, i) => ({ callerId: `many-${i}`, admitted: i }));
    const levels = await store.charge(charges, shape, start);
    expect([...levels.entries()].sort((x, y) => x[1] - y[1])).toEqual(
      charges.map((c) => [c.callerId, 200 - c.admitted]).reverse(),
    );
  });

  it('answers nothing for no charge', async () => {
    expect(await store.charge([], bucketShape(1), start)).toEqual(new Map());
  });

  it('purges the buckets that are full again, and only those', async () => {
    const shape = bucketShape(10);
    await store.charge([{ callerId: 'purge-full-soon', admitted: 1 }], shape, start);
    await store.charge([{ callerId: 'purge-in-debt', admitted: 25 }], shape, start);
    // 100 ms later the first is full (19 + 1), the second at -4.
    await store.purge(shape, start + 100);
    const left = await db.sql<{ caller: string }>`SELECT caller FROM rate_limit_buckets WHERE caller LIKE 'purge-%'`;
    expect(left.map((r) => r.caller)).toEqual(['purge-in-debt']);
    expect(await store.purge(shape, start + 2_500)).toBeGreaterThanOrEqual(1);
    expect(await db.sql`SELECT caller FROM rate_limit_buckets WHERE caller LIKE 'purge-%'`).toEqual([]);
  });
});

describe.skipIf(testDatabaseUrl === undefined)('instances charging the same callers at once', () => {
  let dbs: Database[] = [];
  afterAll(async () => {
    await Promise.all(dbs.map((d) => d.close()));
  });

  it('never deadlock, and every charge is counted', async () => {
    const db = await openIsolatedPostgres(testDatabaseUrl as string);
    dbs = [db];
    await migrate(db.sql);
    const store = createRateLimitStore(db.sql);
    const shape = bucketShape(1_000_000);
    const callers = Array.from({ length: 20 }, (_, i) => `race-${i}`);
    // Half the syncs list the callers one way, half the other: without an order, rows locked in
    // opposite orders deadlock.
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        store.charge(
          (i % 2 === 0 ? callers : [...callers].reverse()).map((callerId) => ({ callerId, admitted: 1 })),
          shape,
          start,
        ),
      ),
    );
    const rows = await db.sql<{ tokens: number }>`SELECT tokens FROM rate_limit_buckets`;
    expect(rows.map((r) => Number(r.tokens))).toEqual(callers.map(() => 2_000_000 - 40));
  });
});
