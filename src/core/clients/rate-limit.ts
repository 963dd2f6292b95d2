import { OAuthError } from '../errors.js';
import type { BucketShape, Clock, Logger, RateLimiter, RateLimitStore } from '../ports.js';

export interface RateLimitOptions {
  /** Sustained requests per second per caller; 0 turns the limit off. */
  readonly perSecond: number;
  readonly clock: Clock;
}

/** The bucket of a limit of `perSecond`: it holds two seconds' worth, so a short burst passes. */
export const bucketShape = (perSecond: number): BucketShape => ({ perSecond, burst: 2 * perSecond });

/** A bucket's level `elapsedMs` after it was at `level`: refilled at its rate, never above its burst. */
export function refilled(level: number, elapsedMs: number, shape: BucketShape): number {
  return Math.min(shape.burst, level + (Math.max(0, elapsedMs) / 1000) * shape.perSecond);
}

/** The one refusal of a caller over its limit: 429 `temporarily_unavailable` with a Retry-After. */
function overLimit(perSecond: number, retryAfterSeconds: number): OAuthError {
  return new OAuthError('temporarily_unavailable', 'too many requests from this client; retry later', {
    status: 429,
    retryAfterSeconds,
    detail: `over ${perSecond} requests/s`,
  });
}

/** Seconds until a bucket at `level` holds a whole token again (at least 1: Retry-After counts whole seconds). */
const secondsUntilToken = (level: number, perSecond: number): number => Math.max(1, Math.ceil((1 - level) / perSecond));

/**
 * A token bucket per caller: `perSecond` tokens a second, holding at most two seconds' worth, so
 * a short burst passes and a caller that keeps going faster is refused with
 * `temporarily_unavailable` (429) and a Retry-After. Kept in memory, per process: the limiter of
 * a single process (PGlite, Workers, tests), and the fallback of the shared one.
 */
export function createRateLimiter(options: RateLimitOptions): RateLimiter {
  const { perSecond, clock } = options;
  if (perSecond <= 0) return { check: () => undefined };
  const shape = bucketShape(perSecond);
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    check(callerId) {
      const now = clock.now();
      let bucket = buckets.get(callerId);
      if (bucket === undefined) {
        bucket = { tokens: shape.burst, at: now };
        buckets.set(callerId, bucket);
      }
      bucket.tokens = refilled(bucket.tokens, now - bucket.at, shape);
      bucket.at = now;
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return;
      }
      throw overLimit(perSecond, secondsUntilToken(bucket.tokens, perSecond));
    },
  };
}

/**
 * What one instance may admit for a caller between two syncs, given the shared bucket's level it
 * last learned: a quarter of it, and at least one request while it holds a whole token. The
 * quarter leaves the rest to the other instances: when several admit from one bucket at once, each
 * takes a quarter of what it saw, the bucket settles where their sum is its refill, and it is
 * never emptied by one instance's first interval. (At most one request beyond the level per
 * instance and sync; it is charged like any other, as debt the refill pays back.)
 */
export function allowance(level: number): number {
  return level >= 1 ? Math.max(1, Math.floor(level / sharePerInstance)) : 0;
}

/** How many instances' share of the shared bucket one instance assumes it may take per sync. */
const sharePerInstance = 4;

/** An instance's account of one caller. */
interface Account {
  /** The shared bucket's level at the last sync (a caller not yet synced is taken to have a full one). */
  level: number;
  /** Admitted since the last sync was sent: charged at the next. */
  owed: number;
  /** Admitted and sent with the sync under way, not yet answered. */
  sending: number;
  /** Refused since the last sync: the next one asks for the bucket's level even with nothing to charge. */
  refused: boolean;
  /** When `check` last saw this caller. */
  seen: number;
}

export interface SharedRateLimitOptions extends RateLimitOptions {
  readonly store: RateLimitStore;
  readonly logger: Logger;
  /** A sync unanswered this long (ms) makes the instance limit on its own until one is answered. Default 1000. */
  readonly staleMs?: number;
  /** A caller unseen this long (ms), with nothing owed, is forgotten locally. Default 10 000. */
  readonly idleMs?: number;
}

/** A rate limiter whose buckets every instance shares; the entry point calls `sync` on a timer. */
export interface SharedRateLimiter extends RateLimiter {
  /**
   * Charges the shared buckets with what this instance admitted since the last sync and learns
   * their levels, in one store call for every caller; never throws. While a sync is under way,
   * resolves when it ends and starts none.
   */
  sync(): Promise<void>;
  /** Resolves when no sync is under way (starting none). */
  settled(): Promise<void>;
  /** Deletes the shared buckets that are full again; never throws. */
  purge(): Promise<void>;
}

/**
 * The rate limit of the service, shared by every instance on one store (PostgreSQL), checked
 * without waiting on it: each instance admits a caller's requests from a local allowance, a share
 * of the shared bucket's level as of the last sync, and at each sync (every 100 ms from the Node
 * entry point) charges the bucket with everything it admitted, in one statement for all callers,
 * and learns the new levels. Every admitted request is charged, so over any stretch longer than a
 * few syncs the service admits what one bucket would (its burst plus `perSecond` a second), however
 * many instances share the load; between syncs an instance may run ahead by its allowance.
 *
 * If the store fails, or a sync goes unanswered for `staleMs`, the instance fails open to its own
 * local bucket (the per-process limit of `createRateLimiter`) rather than refusing every caller or
 * answering 500; the shared limit resumes with the first answered sync. Requests admitted while
 * limiting locally are not charged later.
 */
export function createSharedRateLimiter(options: SharedRateLimitOptions): SharedRateLimiter {
  const { perSecond, clock, store, logger } = options;
  const staleMs = options.staleMs ?? 1000;
  const idleMs = options.idleMs ?? 10_000;
  const shape = bucketShape(perSecond);
  const local = createRateLimiter({ perSecond, clock });
  const accounts = new Map<string, Account>();
  let failing = false;
  let sentAt: number | undefined;
  let running: Promise<void> | undefined;

  const alone = (now: number): boolean => failing || (sentAt !== undefined && now - sentAt > staleMs);

  const runSync = async (): Promise<void> => {
    const now = clock.now();
    const charges: { callerId: string; admitted: number }[] = [];
    for (const [callerId, account] of accounts) {
      if (account.owed > 0 || account.refused) {
        account.sending = account.owed;
        account.owed = 0;
        account.refused = false;
        charges.push({ callerId, admitted: account.sending });
      } else if (now - account.seen > idleMs) {
        accounts.delete(callerId);
      }
    }
    if (charges.length === 0) return;
    sentAt = now;
    try {
      const levels = await store.charge(charges, shape, now);
      for (const { callerId } of charges) {
        const account = accounts.get(callerId);
        const level = levels.get(callerId);
        if (account === undefined) continue;
        account.sending = 0;
        if (level !== undefined) account.level = level;
      }
      if (failing) logger.info('the shared rate limit store answers again; limits hold for the service again');
      failing = false;
    } catch (error) {
      // What was sent is owed again: charged by the first sync that is answered.
      for (const { callerId } of charges) {
        const account = accounts.get(callerId);
        if (account === undefined) continue;
        account.owed += account.sending;
        account.sending = 0;
      }
      if (!failing)
        logger.warn('the shared rate limit store failed; each instance limits on its own until it answers', {
          detail: error instanceof Error ? error.message : String(error),
        });
      failing = true;
    } finally {
      sentAt = undefined;
    }
  };

  if (perSecond <= 0)
    return {
      check: () => undefined,
      sync: () => Promise.resolve(),
      settled: () => Promise.resolve(),
      purge: () => Promise.resolve(),
    };
  return {
    check(callerId) {
      const now = clock.now();
      if (alone(now)) return local.check(callerId);
      let account = accounts.get(callerId);
      if (account === undefined) {
        account = { level: shape.burst, owed: 0, sending: 0, refused: false, seen: now };
        accounts.set(callerId, account);
      }
      account.seen = now;
      if (account.owed + account.sending < allowance(account.level)) {
        account.owed += 1;
        return;
      }
      account.refused = true;
      throw overLimit(perSecond, secondsUntilToken(Math.min(account.level, 0), perSecond));
    },
    sync() {
      running ??= runSync().finally(() => (running = undefined));
      return running;
    },
    settled: () => running ?? Promise.resolve(),
    async purge() {
      try {
        await store.purge(shape, clock.now());
      } catch (error) {
        logger.warn('purging full rate limit buckets failed; will retry', {
          detail: error instanceof Error ? error.message : String(error),
        });
      }
    },
  };
}
