import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSecret, mintUserToken } from '../../../src/cli/demo-kit.js';
import { startTestBaton, type TestBaton } from '../../../test/support/baton.js';
import { demoJwk, refusal } from './support.js';
import {
  agentIdentity,
  batonClient,
  canonicalJson,
  tokenCache,
  type AgentIdentity,
  type BatonClient,
  type Fetch,
} from '../src/index.js';

let baton: TestBaton;
let orchestrator: AgentIdentity;
let subagent: AgentIdentity;
let alice: string;
let expired: string;
/** Token requests the client sent. */
let requests = 0;
let client: BatonClient;

beforeAll(async () => {
  baton = await startTestBaton();
  orchestrator = agentIdentity({ id: 'orchestrator', privateJwk: demoJwk('orchestrator'), issuer: baton.issuer });
  subagent = agentIdentity({ id: 'payments-subagent', privateJwk: demoJwk('payments-subagent'), issuer: baton.issuer });
  alice = await mintUserToken('alice', { audience: baton.issuer });
  expired = await mintUserToken('alice', { audience: baton.issuer, lifetimeSeconds: -600 });
  const counting: Fetch = (input, init) => {
    requests++;
    return fetch(input, init);
  };
  client = batonClient({
    issuer: baton.issuer,
    tokenEndpoint: `${baton.issuer}/oauth2/token`,
    client: { id: 'agent-platform', secret: demoSecret('agent-platform') },
    fetch: counting,
  });
});
afterAll(() => baton?.close());

/** A clock the test moves: the real time plus an offset. */
function movableClock() {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms: number) => void (offset += ms) };
}

describe('tokenCache', () => {
  it('returns the cached token until refreshBeforeSeconds before expiry, then exchanges again', async () => {
    const clock = movableClock();
    const cache = tokenCache(client, { clock });
    const params = { actor: orchestrator, audience: 'payments', scope: 'payments:read' };
    const before = requests;
    const first = await cache.delegate(alice, params);
    const again = await cache.delegate(alice, { ...params });
    expect(again).toBe(first);
    expect(requests - before).toBe(1);
    // 31 s before expiry: still served from the cache.
    clock.advance((first.expiresAt as number) - clock.now() - 31_000);
    expect(await cache.delegate(alice, params)).toBe(first);
    expect(requests - before).toBe(1);
    // 29 s before expiry: inside the refresh window, so a new exchange.
    clock.advance(2_000);
    const renewed = await cache.delegate(alice, params);
    expect(renewed.accessToken).not.toBe(first.accessToken);
    expect(renewed.claims.actChain).toEqual(['alice', 'orchestrator']);
    expect(requests - before).toBe(2);
    expect(cache.size).toBe(1);
  });

  it('never shares a token across subject, actor, audience, scope or details', async () => {
    const cache = tokenCache(client);
    const payment = (amount: string) => ({
      type: 'payment_initiation',
      actions: ['initiate'],
      instructedAmount: { currency: 'EUR', amount },
    });
    const rich = await mintUserToken('alice', {
      audience: baton.issuer,
      claims: { authorization_details: [payment('100.00')] },
    });
    const base = { subjectToken: alice, actor: orchestrator, audience: 'payments', scope: 'payments:read' };
    const variants = [
      base,
      { ...base, subjectToken: await mintUserToken('alice', { audience: baton.issuer }) },
      { ...base, actor: subagent },
      { ...base, audience: 'https://payments.example' },
      { ...base, scope: 'payments:read payments:transfer' },
      { ...base, subjectToken: rich, scope: 'payments:transfer' },
      { ...base, subjectToken: rich, scope: 'payments:transfer', authorizationDetails: [payment('50.00')] },
      { ...base, subjectToken: rich, scope: 'payments:transfer', authorizationDetails: [payment('20.00')] },
    ];
    const before = requests;
    const tokens = [];
    for (const params of variants) tokens.push(await cache.exchange(params).catch((e: unknown) => e));
    expect(tokens.filter((t) => t instanceof Error)).toEqual([]);
    expect(new Set(tokens.map((t) => (t as { accessToken: string }).accessToken)).size).toBe(variants.length);
    expect(requests - before).toBe(variants.length);
    expect(cache.size).toBe(variants.length);
    // Each is then served from its own key.
    for (const [i, params] of variants.entries()) expect(await cache.exchange(params)).toBe(tokens[i]);
    expect(requests - before).toBe(variants.length);
  });

  it('sends one request for concurrent calls with one key, and one per key', async () => {
    const cache = tokenCache(client);
    const before = requests;
    const same = await Promise.all(
      Array.from({ length: 8 }, () => cache.delegate(alice, { actor: orchestrator, audience: 'payments' })),
    );
    expect(new Set(same).size).toBe(1);
    expect(requests - before).toBe(1);
    const mixed = await Promise.all([
      cache.delegate(alice, { actor: orchestrator, audience: 'calendar' }),
      cache.delegate(alice, { actor: orchestrator, audience: 'calendar' }),
      cache.delegate(alice, { actor: orchestrator, audience: 'payments', scope: 'payments:read' }),
    ]);
    expect(mixed[0]).toBe(mixed[1]);
    expect(mixed[2]).not.toBe(mixed[0]);
    expect(requests - before).toBe(3);
  });

  it('does not keep a refusal: the next call asks again', async () => {
    const cache = tokenCache(client);
    const before = requests;
    for (let i = 0; i < 2; i++)
      expect(await refusal(cache.delegate(expired, { actor: orchestrator, audience: 'payments' }))).toEqual({
        name: 'OAuthResponseError',
        code: 'invalid_request',
        description: 'subject_token is expired',
        status: 400,
      });
    expect(requests - before).toBe(2);
    expect(cache.size).toBe(0);
  });

  it('one caller aborting leaves the shared request to the others; all aborting cancels it', async () => {
    const cache = tokenCache(client);
    const leaving = new AbortController();
    const params = { actor: orchestrator, audience: 'payments', scope: 'payments:read' };
    const gone = cache.delegate(alice, { ...params, signal: leaving.signal });
    const staying = cache.delegate(alice, params);
    leaving.abort();
    await expect(gone).rejects.toMatchObject({ name: 'BatonError', code: 'aborted' });
    expect((await staying).claims.actChain).toEqual(['alice', 'orchestrator']);

    // A request that is in flight when its last waiter leaves is aborted.
    let called: () => void = () => undefined;
    const inFlight = new Promise<void>((resolve) => (called = resolve));
    const seen: AbortSignal[] = [];
    const hanging: Fetch = (_input, init) => {
      seen.push(init?.signal as AbortSignal);
      called();
      return new Promise((_resolve, reject) =>
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason)),
      );
    };
    const other = tokenCache(
      batonClient({ issuer: baton.issuer, tokenEndpoint: `${baton.issuer}/oauth2/token`, fetch: hanging }),
    );
    const [a, b] = [new AbortController(), new AbortController()];
    const both = [a, b].map((c) => other.delegate(alice, { ...params, signal: c.signal }));
    await inFlight;
    a.abort();
    expect(seen.map((signal) => signal.aborted)).toEqual([false]);
    b.abort();
    for (const p of both) await expect(p).rejects.toMatchObject({ name: 'BatonError', code: 'aborted' });
    expect(seen.map((signal) => signal.aborted)).toEqual([true]);
    expect(other.size).toBe(0);
  });
});

describe('canonicalJson', () => {
  it('sorts members, drops undefined ones, and keeps hostile names as plain members', () => {
    expect(canonicalJson({ b: 1, a: [undefined, { d: undefined, c: '\u0000' }], ['__proto__']: { x: 1 } })).toBe(
      '{"__proto__":{"x":1},"a":[null,{"c":"\\u0000"}],"b":1}',
    );
  });
});
