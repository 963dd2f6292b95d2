import { describe, expect, it } from 'vitest';
import { BatonError, OAuthResponseError } from '../src/index.js';

describe('SDK errors', () => {
  it('carry the OAuth error code, description, status and Retry-After, and are BatonErrors', () => {
    const error = new OAuthResponseError('temporarily_unavailable', 'retry later', 503, 2);
    expect(error).toBeInstanceOf(BatonError);
    expect(error.name).toBe('OAuthResponseError');
    expect([error.code, error.description, error.status, error.retryAfterSeconds, error.message]).toEqual([
      'temporarily_unavailable',
      'retry later',
      503,
      2,
      'temporarily_unavailable: retry later',
    ]);
    expect(new OAuthResponseError('invalid_grant', undefined, 400, undefined).message).toBe('invalid_grant (HTTP 400)');
  });
});
