import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeys } from '../../src/adapters/signing-keys.js';
import { loadConfig } from '../../src/node/config.js';
import { startBaton, type RunningBaton } from '../../src/node/server.js';
import { basic, captureLogger, postJson, postToken } from '../support/baton.js';
import { testDatabaseUrl } from '../support/database.js';

const skip = testDatabaseUrl === undefined;
const schema = `baton_ratelimit_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
/** BATON_RATE_LIMIT: requests a second per caller, for the service; its bucket holds twice that. */
const perSecond = 20;
const burst = 2 * perSecond;
const logger = captureLogger();
const batons: RunningBaton[] = [];

beforeAll(async () => {
  if (skip) return;
  const env = {
    PORT: '0',
    DATABASE_URL: testDatabaseUrl as string,
    BATON_DATABASE_SCHEMA: schema,
    BATON_ISSUER: 'http://baton.test',
    BATON_SIGNING_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
    BATON_AUDIT_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
    BATON_RATE_LIMIT: String(perSecond),
  };
  // Three instances on one schema, as three processes behind a load balancer would be.
  for (let i = 0; i < 3; i++) batons.push(await startBaton(loadConfig(env), { logger }));
}, 60_000);

afterAll(async () => {
  await Promise.all(batons.map((b) => b.close().catch(() => undefined)));
  if (!skip) {
    const admin = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {} });
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const refusal = {
  error: 'temporarily_unavailable',
  error_description: 'too many requests from this client; retry later',
};

describe.skipIf(skip)('a rate limit shared by three instances on one PostgreSQL', () => {
  it('admits what one bucket would to a client sending to all three far over its limit, and refuses the rest with 429 and Retry-After', async () => {
    const seconds = 10;
    const statuses: number[] = [];
    const sent = batons.map(() => 0);
    const refused: { body: unknown; retryAfter: string | null; cacheControl: string | null }[] = [];
    const started = performance.now();
    const until = started + seconds * 1000;
    let lastSent = started;
    // Each instance is sent requests two at a time, each 5 ms after the answer to the one before.
    await Promise.all(
      [...batons.entries(), ...batons.entries()].map(async ([i, baton]) => {
        while (performance.now() < until) {
          sent[i] = (sent[i] ?? 0) + 1;
          lastSent = performance.now();
          const answer = await postToken(baton, {
            grant_type: 'client_credentials',
            scope: 'payments:read',
            resource: 'https://payments.example',
          });
          statuses.push(answer.status);
          if (answer.status === 429)
            refused.push({
              body: answer.body,
              retryAfter: answer.headers.get('retry-after'),
              cacheControl: answer.headers.get('cache-control'),
            });
          await sleep(5);
        }
      }),
    );
    // Admissions are decided between the first request and the last one sent.
    const elapsed = (lastSent - started) / 1000;
    const admitted = statuses.filter((s) => s === 200).length;
    const rate = (admitted - burst) / elapsed;
    logger.info('shared rate limit', { sent: statuses.length, admitted, elapsed, rate });
    // The limit, not the senders, decides: they sent more than twice what one bucket admits, and
    // a limit per instance (a bucket each) would have admitted more than the bound below.
    const oneBucket = burst + perSecond * elapsed;
    expect(statuses.length).toBeGreaterThan(2 * oneBucket);
    expect(sent.reduce((sum, count) => sum + Math.min(count, oneBucket), 0)).toBeGreaterThan(
      burst + 1.1 * perSecond * elapsed,
    );
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    // One bucket: its burst and perSecond a second, within 10 %.
    expect(rate).toBeGreaterThanOrEqual(perSecond * 0.9);
    expect(rate).toBeLessThanOrEqual(perSecond * 1.1);
    expect(refused.length).toBe(statuses.length - admitted);
    for (const one of refused) expect(one).toEqual({ body: refusal, retryAfter: '1', cacheControl: 'no-store' });
  }, 45_000);

  it('holds a resource server to its limit at /authorize on every instance, and other callers are not held back', async () => {
    // `payments` has sent nothing yet: the instances' shares of its full bucket (40), then refusals.
    const started = performance.now();
    const answers = await Promise.all(
      batons.flatMap((baton) =>
        Array.from({ length: 20 }, () =>
          postJson(
            baton,
            '/authorize',
            { token: 'not-a-token', action: 'payments:read', resource: { type: 'Account', id: 'acct-1' } },
            { authorization: basic('payments') },
          ),
        ),
      ),
    );
    const elapsed = (performance.now() - started) / 1000;
    const admitted = answers.filter((a) => a.status === 200).length;
    // Each instance admits a quarter of the full bucket before its first sync (10 each); all
    // together, no more than the bucket and its refill meanwhile (and one request an instance
    // beyond the level, charged as debt).
    expect(admitted).toBeGreaterThanOrEqual(3 * (burst / 4));
    expect(admitted).toBeLessThanOrEqual(burst + perSecond * elapsed + 3);
    for (const a of answers.filter((x) => x.status !== 200))
      expect([a.status, a.body, a.headers.get('retry-after')]).toEqual([429, refusal, '1']);
    // Another caller has a bucket of its own.
    const other = await postToken(
      batons[1] as RunningBaton,
      { grant_type: 'client_credentials', scope: 'baton:audit' },
      { authorization: basic('ops-console') },
    );
    expect(other.status).toBe(200);
  });

  it('fails open to a bucket per instance while the shared buckets cannot be charged, says so, and shares again after', async () => {
    const admin = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {} });
    const table = (from: string, to: string) => admin.unsafe(`ALTER TABLE "${schema}"."${from}" RENAME TO "${to}"`);
    const failed = 'the shared rate limit store failed; each instance limits on its own until it answers';
    const back = 'the shared rate limit store answers again; limits hold for the service again';
    const credentials = () =>
      postToken(
        batons[0] as RunningBaton,
        { grant_type: 'client_credentials', scope: 'baton:audit' },
        {
          authorization: basic('globex-audit'),
        },
      );
    // Every instance has charged what the tests before sent, so only the first one's syncs fail here.
    await sleep(300);
    try {
      await table('rate_limit_buckets', 'rate_limit_buckets_away');
      expect((await credentials()).status).toBe(200);
      await sleep(300); // syncs fail meanwhile
      expect(logger.lines.filter((l) => l.message === failed).map((l) => l.level)).toEqual(['warn']);
      // The instance's own bucket: its full burst (40), where the shared share before a sync is 10.
      const started = performance.now();
      const statuses = (await Promise.all(Array.from({ length: 60 }, credentials))).map((a) => a.status);
      const elapsed = (performance.now() - started) / 1000;
      const admitted = statuses.filter((s) => s === 200).length;
      expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
      expect(admitted).toBeGreaterThanOrEqual(burst);
      expect(admitted).toBeLessThanOrEqual(burst + perSecond * elapsed);
    } finally {
      await table('rate_limit_buckets_away', 'rate_limit_buckets');
      await admin.end();
    }
    await sleep(300);
    await credentials();
    await sleep(300);
    expect(logger.lines.filter((l) => l.message === back).map((l) => l.level)).toEqual(['info']);
  });
});
