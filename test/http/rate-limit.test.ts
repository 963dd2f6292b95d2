import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, postJson, postToken } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton({ BATON_RATE_LIMIT: '1' });
});
afterAll(async () => {
  await baton?.close();
});

const refusal = {
  error: 'temporarily_unavailable',
  error_description: 'too many requests from this client; retry later',
};

// BATON_RATE_LIMIT=1: a burst of 2, then one request a second. Requests go out together, so no
// second passes between them and exactly two get through.
describe('rate limits per client', () => {
  it('answers 429 with Retry-After at the token endpoint once a client is over, and audits the refusal', async () => {
    const answers = await Promise.all(
      Array.from({ length: 4 }, () =>
        postToken(baton, {
          grant_type: 'client_credentials',
          scope: 'payments:read',
          resource: 'https://payments.example',
        }),
      ),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 429, 429]);
    for (const refused of answers.filter((a) => a.status === 429)) {
      expect([refused.body, refused.headers.get('retry-after'), refused.headers.get('cache-control')]).toEqual([
        refusal,
        '1',
        'no-store',
      ]);
    }
    const refusals = baton
      .auditEntries()
      .filter((e) => e.type === 'token.client_credentials' && e.decision === 'refused');
    expect(refusals).toHaveLength(2);
    for (const entry of refusals)
      expect(entry).toMatchObject({
        tenant: 'acme',
        client: 'agent-platform',
        reason: 'temporarily_unavailable: too many requests from this client; retry later (over 1 requests/s)',
      });
    // Other clients are not held back by it.
    expect(
      (
        await postToken(
          baton,
          { grant_type: 'client_credentials', scope: 'baton:audit' },
          { authorization: basic('ops-console') },
        )
      ).status,
    ).toBe(200);
  });

  it('answers 429 to a resource server over its limit at /authorize', async () => {
    const answers = await Promise.all(
      Array.from({ length: 4 }, () =>
        postJson(
          baton,
          '/authorize',
          { token: 'not-a-token', action: 'payments:read', resource: { type: 'Account', id: 'acct-1' } },
          { authorization: basic('payments') },
        ),
      ),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 429, 429]);
    for (const refused of answers.filter((a) => a.status === 429))
      expect([refused.body, refused.headers.get('retry-after')]).toEqual([refusal, '1']);
  });
});
