import { OAuthError } from '../errors.js';
import type { Clock, RateLimiter } from '../ports.js';

export interface RateLimitOptions {
  /** Sustained requests per second per caller; 0 turns the limit off. */
  readonly perSecond: number;
  readonly clock: Clock;
}

/**
 * A token bucket per caller: `perSecond` tokens a second, holding at most two seconds' worth, so
 * a short burst passes and a caller that keeps going faster is refused with
 * `temporarily_unavailable` (429) and a Retry-After. Kept in memory, per process.
 */
export function createRateLimiter(options: RateLimitOptions): RateLimiter {
  const { perSecond, clock } = options;
  if (perSecond <= 0) return { check: () => undefined };
  const burst = 2 * perSecond;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    check(callerId) {
      const now = clock.now();
      let bucket = buckets.get(callerId);
      if (bucket === undefined) {
        bucket = { tokens: burst, at: now };
        buckets.set(callerId, bucket);
      }
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
      bucket.at = now;
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return;
      }
      throw new OAuthError('temporarily_unavailable', 'too many requests from this client; retry later', {
        status: 429,
        retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond)),
        detail: `over ${perSecond} requests/s`,
      });
    },
  };
}
