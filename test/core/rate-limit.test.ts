import { describe, expect, it } from 'vitest';
import { OAuthError } from '../../src/core/errors.js';
import { createRateLimiter } from '../../src/core/clients/rate-limit.js';

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
