import { describe, expect, it } from 'vitest';
import { OAuthError } from '../../src/core/errors.js';
import {
  allowance,
  bucketShape,
  createRateLimiter,
  createSharedRateLimiter,
  refilled,
  type SharedRateLimiter,
} from '../../src/core/clients/rate-limit.js';
import { memoryRateLimitStore } from '../support/memory/rate-limit-store.js';

describe('the per-caller rate limit', () => {
  const clock = {
    t: 1_000_000,
    now() {
      return this.t;
    },
  };
  const refusal = (check: () => void): OAuthError | undefined => {
    try {
      check();
      return undefined;
    } catch (error) {
      if (error instanceof OAuthError) return error;
      throw error;
    }
  };

  it('lets a burst of two seconds through, then refuses with 429 and when to retry, and refills', () => {
    const limit = createRateLimiter({ perSecond: 5, clock });
    for (let i = 0; i < 10; i++) expect(refusal(() => limit.check('agent-platform'))).toBeUndefined();
    const refused = refusal(() => limit.check('agent-platform'));
    expect(refused?.toJSON()).toEqual({
      error: 'temporarily_unavailable',
      error_description: 'too many requests from this client; retry later',
    });
    expect([refused?.status, refused?.retryAfterSeconds, refused?.detail]).toEqual([429, 1, 'over 5 requests/s']);
    // Another caller has its own bucket.
    expect(refusal(() => limit.check('payments'))).toBeUndefined();
    clock.t += 200; // one token back
    expect(refusal(() => limit.check('agent-platform'))).toBeUndefined();
    expect(refusal(() => limit.check('agent-platform'))?.status).toBe(429);
  });

  it('is off at 0', () => {
    const limit = createRateLimiter({ perSecond: 0, clock });
    for (let i = 0; i < 10_000; i++) limit.check('agent-platform');
  });
});

describe('the allowance arithmetic', () => {
  it('refills at the rate, by fractions, never above the burst nor backwards', () => {
    const shape = bucketShape(5);
    expect(shape).toEqual({ perSecond: 5, burst: 10 });
    expect(refilled(0, 150, shape)).toBeCloseTo(0.75, 12);
    expect(refilled(-3, 1000, shape)).toBe(2);
    expect(refilled(9.5, 100, shape)).toBe(10);
    expect(refilled(9.5, 1000, shape)).toBe(10);
    expect(refilled(10, 0, shape)).toBe(10);
    expect(refilled(2, -5000, shape)).toBe(2);
  });

  it('lets one instance take a quarter of the level it saw, one request while a whole token is left, none below', () => {
    const table: [number, number][] = [
      [-5, 0],
      [0, 0],
      [0.999, 0],
      [1, 1],
      [7.99, 1],
      [8, 2],
      [9.5, 2],
      [2000, 500],
    ];
    for (const [level, allowed] of table) expect([level, allowance(level)]).toEqual([level, allowed]);
  });
});

describe('the shared rate limit', () => {
  const start = 1_000_000;
  const fixedClock = () => ({
    t: start,
    now() {
      return this.t;
    },
  });
  const quietLogger = () => {
    const lines: string[] = [];
    const push = (message: string) => void lines.push(message);
    return { lines, info: push, warn: push, error: push };
  };
  const admits = (limit: SharedRateLimiter, caller = 'agent-platform'): boolean => {
    const refused = refusal(() => limit.check(caller));
    if (refused === undefined) return true;
    expect([refused.status, refused.toJSON()]).toEqual([
      429,
      { error: 'temporarily_unavailable', error_description: 'too many requests from this client; retry later' },
    ]);
    return false;
  };
  const refusal = (check: () => void): OAuthError | undefined => {
    try {
      check();
      return undefined;
    } catch (error) {
      if (error instanceof OAuthError) return error;
      throw error;
    }
  };

  it('is off at 0: admits everything and never calls the store', async () => {
    const clock = fixedClock();
    const store = memoryRateLimitStore();
    const limit = createSharedRateLimiter({ perSecond: 0, clock, store, logger: quietLogger() });
    for (let i = 0; i < 10_000; i++) limit.check('agent-platform');
    await limit.sync();
    expect(store.buckets.size).toBe(0);
  });

  it('at 1/s admits from the shared bucket, charges each sync, and refuses with when to retry', async () => {
    const clock = fixedClock();
    const store = memoryRateLimitStore();
    const limit = createSharedRateLimiter({ perSecond: 1, clock, store, logger: quietLogger() });
    // A caller not yet synced is taken to have a full bucket (2): its allowance is one request.
    expect([admits(limit), admits(limit)]).toEqual([true, false]);
    const refused = refusal(() => limit.check('agent-platform'));
    expect([refused?.retryAfterSeconds, refused?.detail]).toEqual([1, 'over 1 requests/s']);
    await limit.sync();
    expect(store.buckets.get('agent-platform')).toEqual({ tokens: 1, at: start });
    // The level it learned (1) allows one more; then the bucket is empty.
    expect([admits(limit), admits(limit)]).toEqual([true, false]);
    await limit.sync();
    expect(store.buckets.get('agent-platform')).toEqual({ tokens: 0, at: start });
    // 600 ms refill 0.6 of a token: not a whole one, so still refused after the sync that learns it.
    clock.t += 600;
    expect(admits(limit)).toBe(false);
    await limit.sync();
    expect(store.buckets.get('agent-platform')?.tokens).toBeCloseTo(0.6, 12);
    expect(admits(limit)).toBe(false);
    clock.t += 400;
    await limit.sync();
    expect(admits(limit)).toBe(true);
    await limit.sync();
    expect(store.buckets.get('agent-platform')?.tokens).toBeCloseTo(0, 12);
  });

  it('never refills above the burst, however long the caller was away', async () => {
    const clock = fixedClock();
    const store = memoryRateLimitStore();
    const limit = createSharedRateLimiter({ perSecond: 5, clock, store, logger: quietLogger() });
    expect(admits(limit)).toBe(true);
    await limit.sync();
    expect(store.buckets.get('agent-platform')?.tokens).toBe(9);
    clock.t += 60_000;
    limit.check('agent-platform');
    await limit.sync();
    // Full (10) less the one just charged, not 9 + 300.
    expect(store.buckets.get('agent-platform')?.tokens).toBe(9);
    // A full bucket is a missing one: the purge deletes it once it has refilled, not before.
    clock.t += 100;
    await limit.purge();
    expect(store.buckets.has('agent-platform')).toBe(true);
    clock.t += 100;
    await limit.purge();
    expect(store.buckets.has('agent-platform')).toBe(false);
  });

  it('gives a caller in debt a Retry-After of the time the refill takes to pay it back', async () => {
    const clock = fixedClock();
    const store = memoryRateLimitStore();
    store.buckets.set('agent-platform', { tokens: -10, at: start });
    const limit = createSharedRateLimiter({ perSecond: 5, clock, store, logger: quietLogger() });
    limit.check('agent-platform'); // on the assumption of a full bucket, then charged
    await limit.sync();
    expect(store.buckets.get('agent-platform')?.tokens).toBe(-11);
    expect(refusal(() => limit.check('agent-platform'))?.retryAfterSeconds).toBe(3);
  });

  it('holds the limit for three instances on one store, each asked far more than the limit', async () => {
    const clock = fixedClock();
    const store = memoryRateLimitStore();
    const perSecond = 50;
    const limits = [0, 1, 2].map(() => createSharedRateLimiter({ perSecond, clock, store, logger: quietLogger() }));
    let admitted = 0;
    const seconds = 10;
    // Each instance gets a request every millisecond (3000/s together, 60 times the limit) and syncs
    // every 100 ms, the three staggered.
    for (let ms = 0; ms < seconds * 1000; ms++) {
      clock.t = start + ms;
      for (const limit of limits) if (admits(limit)) admitted += 1;
      for (const [i, limit] of limits.entries()) if (ms % 100 === i * 33) await limit.sync();
    }
    // One bucket would admit its burst (100) and 50 a second: 600. Each instance may run ahead by
    // at most its allowance of one sync, and what the bucket holds at the end is not admitted.
    expect(admitted).toBeGreaterThanOrEqual(100 + perSecond * seconds * 0.97);
    expect(admitted).toBeLessThanOrEqual(100 + perSecond * seconds + 3);
  });

  it('limits each instance on its own while the store fails, says so once, and shares again when it answers', async () => {
    const clock = fixedClock();
    const store = memoryRateLimitStore();
    let down = true;
    const failing = {
      charge: (...args: Parameters<typeof store.charge>) =>
        down ? Promise.reject(new Error('connection refused')) : store.charge(...args),
      purge: (...args: Parameters<typeof store.purge>) =>
        down ? Promise.reject(new Error('connection refused')) : store.purge(...args),
    };
    const logger = quietLogger();
    const limit = createSharedRateLimiter({ perSecond: 5, clock, store: failing, logger });
    expect(admits(limit)).toBe(true);
    await limit.sync();
    await limit.sync();
    await limit.purge();
    expect(logger.lines).toEqual([
      'the shared rate limit store failed; each instance limits on its own until it answers',
      'purging full rate limit buckets failed; will retry',
    ]);
    // The local bucket: a burst of 10, then refused, neither 500 nor all refused.
    const local = Array.from({ length: 12 }, () => admits(limit));
    expect(local).toEqual([...Array(10).fill(true), false, false]);
    down = false;
    await limit.sync();
    expect(logger.lines[2]).toBe('the shared rate limit store answers again; limits hold for the service again');
    // The request admitted before the outage was charged by the first answered sync; those admitted
    // locally during it are not.
    expect(store.buckets.get('agent-platform')?.tokens).toBe(9);
    expect(admits(limit)).toBe(true);
  });

  it('limits on its own while a sync goes unanswered past the deadline, not before', async () => {
    const clock = fixedClock();
    const hung = { charge: () => new Promise<never>(() => undefined), purge: () => Promise.resolve(0) };
    const limit = createSharedRateLimiter({ perSecond: 1, clock, store: hung, logger: quietLogger(), staleMs: 1000 });
    expect(admits(limit)).toBe(true);
    void limit.sync();
    // Under way for 1 s: still the shared allowance (one request, taken).
    clock.t += 1000;
    expect(admits(limit)).toBe(false);
    // Past it: the local bucket, full (2).
    clock.t += 1;
    expect([admits(limit), admits(limit), admits(limit)]).toEqual([true, true, false]);
  });

  it('forgets a caller it has not seen for a while, and gives it a fresh account after', async () => {
    const clock = fixedClock();
    const store = memoryRateLimitStore();
    let charges = 0;
    const counting = {
      charge: (...args: Parameters<typeof store.charge>) => {
        charges += 1;
        return store.charge(...args);
      },
      purge: store.purge,
    };
    const limit = createSharedRateLimiter({
      perSecond: 1,
      clock,
      store: counting,
      logger: quietLogger(),
      idleMs: 5000,
    });
    expect([admits(limit), admits(limit)]).toEqual([true, false]);
    await limit.sync();
    expect(charges).toBe(1);
    // Nothing owed and nothing refused: no statement at all.
    await limit.sync();
    expect(charges).toBe(1);
    clock.t += 5001;
    await limit.sync();
    expect(charges).toBe(1);
    // Forgotten: a fresh account assumes a full bucket, and the store's (refilled to 2) is charged.
    expect([admits(limit), admits(limit)]).toEqual([true, false]);
    await limit.sync();
    expect(store.buckets.get('agent-platform')?.tokens).toBe(1);
  });
});
