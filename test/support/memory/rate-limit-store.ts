import { refilled } from '../../../src/core/clients/rate-limit.js';
import type { RateLimitStore } from '../../../src/core/ports.js';

/** The shared buckets in memory, with the arithmetic the SQL store does in its upsert. */
export function memoryRateLimitStore(): RateLimitStore & {
  readonly buckets: Map<string, { tokens: number; at: number }>;
} {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    buckets,
    charge(charges, shape, now) {
      const levels = new Map<string, number>();
      for (const { callerId, admitted } of charges) {
        const bucket = buckets.get(callerId);
        const next =
          bucket === undefined
            ? { tokens: shape.burst - admitted, at: now }
            : { tokens: refilled(bucket.tokens, now - bucket.at, shape) - admitted, at: Math.max(bucket.at, now) };
        buckets.set(callerId, next);
        levels.set(callerId, next.tokens);
      }
      return Promise.resolve(levels);
    },
    purge(shape, now) {
      let purged = 0;
      for (const [callerId, bucket] of buckets)
        if (bucket.tokens + ((now - bucket.at) / 1000) * shape.perSecond >= shape.burst) {
          buckets.delete(callerId);
          purged += 1;
        }
      return Promise.resolve(purged);
    },
  };
}
