import {
  CompactSign,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  importJWK,
  SignJWT,
  UnsecuredJWT,
  type JWK,
  type JWTPayload,
} from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { demoChain, startTestBaton, type TestBaton } from '../../../test/support/baton.js';
import { BatonError, batonVerifier, verifyBatonToken, type BatonVerifier } from '../src/index.js';

const payments = 'https://payments.example';
let baton: TestBaton;
let verifier: BatonVerifier;
let token: string;
let payload: JWTPayload;

beforeAll(async () => {
  baton = await startTestBaton();
  verifier = batonVerifier({ issuer: baton.issuer });
  [, token] = await demoChain(baton);
  payload = decodeJwt(token);
});
afterAll(async () => {
  await baton?.close();
});

/** The error a verification threw, as `[class, code, message]`. */
async function refusal(verification: Promise<unknown>): Promise<[string, string, string]> {
  const error: unknown = await verification.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof BatonError)) throw new Error(`expected a BatonError, got ${String(error)}`);
  return [error.constructor.name, error.code, error.message];
}

const invalid = (message: string): [string, string, string] => ['BatonError', 'invalid_token', message];

/** Signs `claims` (a payload object, or raw JSON text) with Baton's own current key under `header`. */
async function signAsBaton(claims: JWTPayload | string, header: Record<string, unknown> = {}): Promise<string> {
  const jwk = baton.signingJwks.keys[0] as Record<string, unknown>;
  const bytes = new TextEncoder().encode(typeof claims === 'string' ? claims : JSON.stringify(claims));
  return new CompactSign(bytes)
    .setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid as string, typ: 'at+jwt', ...header })
    .sign(await importJWK(jwk, 'EdDSA'));
}

describe('batonVerifier', () => {
  it('verifies a token Baton issued, with the act chain user first and actors oldest first', async () => {
    const claims = await verifier.verify(token, { audience: payments });
    expect(claims).toEqual({
      sub: 'alice',
      tenant: 'acme',
      clientId: 'agent-platform',
      scope: ['payments:read', 'payments:transfer'],
      audience: [payments],
      actChain: ['alice', 'orchestrator', 'payments-subagent'],
      authorizationDetails: [],
      jti: payload.jti,
      expiresAt: payload.exp,
      payload,
    });
    // Discovered from the issuer's metadata, or given: the same keys.
    const direct = batonVerifier({ issuer: baton.issuer, jwksUri: `${baton.url}/.well-known/jwks.json` });
    expect((await direct.verify(token, { audience: payments })).actChain).toEqual([
      'alice',
      'orchestrator',
      'payments-subagent',
    ]);
  });

  it('returns the authorization details a token carries', async () => {
    const details = [{ type: 'payment_initiation', instructedAmount: { amount: '50', currency: 'EUR' } }];
    const signed = await signAsBaton({ ...payload, authorization_details: details });
    expect((await verifier.verify(signed, { audience: payments })).authorizationDetails).toEqual(details);
  });

  it('refuses an expired token past the tolerance, and accepts one within it', async () => {
    const exp = (payload.exp as number) * 1000;
    const at = (ms: number) => batonVerifier({ issuer: baton.issuer, clock: { now: () => ms } });
    expect(await refusal(at(exp + 5_001).verify(token, { audience: payments }))).toEqual(
      invalid('the token has expired'),
    );
    expect((await at(exp + 4_000).verify(token, { audience: payments })).sub).toBe('alice');
    const strict = batonVerifier({ issuer: baton.issuer, clockToleranceSeconds: 0, clock: { now: () => exp + 1_000 } });
    expect(await refusal(strict.verify(token, { audience: payments }))).toEqual(invalid('the token has expired'));
  });

  it('refuses a token not valid yet, or issued in the future beyond the tolerance', async () => {
    const now = Math.floor(Date.now() / 1000);
    const early = await signAsBaton({ ...payload, nbf: now + 60 });
    expect(await refusal(verifier.verify(early, { audience: payments }))).toEqual(
      invalid('the token is not valid yet'),
    );
    const future = await signAsBaton({ ...payload, iat: now + 60 });
    expect(await refusal(verifier.verify(future, { audience: payments }))).toEqual(
      invalid('the token was issued in the future'),
    );
    const slightly = await signAsBaton({ ...payload, iat: now + 3 });
    expect((await verifier.verify(slightly, { audience: payments })).sub).toBe('alice');
  });

  it('refuses a token for another audience or from another issuer', async () => {
    expect(await refusal(verifier.verify(token, { audience: 'https://calendar.example' }))).toEqual(
      invalid('the token is not for audience https://calendar.example'),
    );
    const foreign = await signAsBaton({ ...payload, iss: 'https://baton.evil.example' });
    expect(await refusal(verifier.verify(foreign, { audience: payments }))).toEqual(
      invalid(`the token was not issued by ${baton.issuer}`),
    );
  });

  it('refuses a tampered signature, a tampered payload and a token signed by a key Baton does not publish', async () => {
    const [head, body, signature] = token.split('.') as [string, string, string];
    // A character in the middle: the last one may only carry padding bits.
    const middle = Math.floor(signature.length / 2);
    const flipped = `${signature.slice(0, middle)}${signature[middle] === 'A' ? 'B' : 'A'}${signature.slice(middle + 1)}`;
    expect(await refusal(verifier.verify(`${head}.${body}.${flipped}`, { audience: payments }))).toEqual(
      invalid('the token signature does not verify'),
    );
    const widened = Buffer.from(JSON.stringify({ ...payload, scope: 'payments:admin' })).toString('base64url');
    expect(await refusal(verifier.verify(`${head}.${widened}.${signature}`, { audience: payments }))).toEqual(
      invalid('the token signature does not verify'),
    );
    const { privateKey } = await generateKeyPair('EdDSA');
    const kid = (baton.signingJwks.keys[0] as { kid: string }).kid;
    const sign = (k: string) =>
      new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', kid: k, typ: 'at+jwt' }).sign(privateKey);
    expect(await refusal(verifier.verify(await sign(kid), { audience: payments }))).toEqual(
      invalid('the token signature does not verify'),
    );
    expect(await refusal(verifier.verify(await sign('another-key'), { audience: payments }))).toEqual(
      invalid(`the token is not signed by a key ${baton.issuer} publishes`),
    );
  });

  it('refuses a token whose typ is not at+jwt', async () => {
    for (const typ of ['JWT', 'dpop+jwt', undefined]) {
      const signed = await signAsBaton(payload, { typ });
      expect(await refusal(verifier.verify(signed, { audience: payments })), String(typ)).toEqual(
        invalid('the token is not an access token (its typ must be at+jwt)'),
      );
    }
    // RFC 8725 §3.11: the media type may be written in full.
    const full = await signAsBaton(payload, { typ: 'application/at+jwt' });
    expect((await verifier.verify(full, { audience: payments })).sub).toBe('alice');
  });

  it('refuses unsigned and HMAC tokens', async () => {
    const unsigned = new UnsecuredJWT(payload).encode();
    expect(await refusal(verifier.verify(unsigned, { audience: payments }))).toEqual(
      invalid('the token is signed with an algorithm not accepted (EdDSA, ES256, RS256, PS256)'),
    );
    const hmac = await new SignJWT(payload)
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .sign(new TextEncoder().encode('a shared secret of at least 32 bytes'));
    expect(await refusal(verifier.verify(hmac, { audience: payments }))).toEqual(
      invalid('the token is signed with an algorithm not accepted (EdDSA, ES256, RS256, PS256)'),
    );
  });

  it('refuses text that is not a JWT', async () => {
    for (const text of ['', 'abc', 'a.b.c', `${token}.x`, '\u0000', '\ud800.\ud800.\ud800']) {
      expect(await refusal(verifier.verify(text, { audience: payments })), JSON.stringify(text)).toEqual(
        invalid('the token is not a well-formed signed JWT'),
      );
    }
  });

  it('refuses a validly signed token with a claim of the wrong type', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ sub: 42 }, 'the token has an invalid "sub" claim: must be a non-empty string'],
      [{ sub: '' }, 'the token has an invalid "sub" claim: must be a non-empty string'],
      [{ sub: ['alice'] }, 'the token has an invalid "sub" claim: must be a non-empty string'],
      [{ sub: undefined }, 'the token has no "sub" claim'],
      [{ tenant: undefined }, 'the token has no "tenant" claim'],
      [{ tenant: { id: 'acme' } }, 'the token has an invalid "tenant" claim: must be a non-empty string'],
      [{ client_id: 7 }, 'the token has an invalid "client_id" claim: must be a non-empty string'],
      [{ jti: null }, 'the token has an invalid "jti" claim: must be a non-empty string'],
      [{ exp: undefined }, 'the token has no "exp" claim'],
      [{ exp: '9999999999' }, 'the token has an invalid "exp" claim'],
      [{ scope: ['payments:read'] }, 'the token has an invalid "scope" claim: must be a string'],
      [{ aud: [payments, 7] }, 'the token has an invalid "aud" claim: must be a non-empty string or a list of them'],
      [{ act: 'orchestrator' }, 'the token has an invalid "act" claim: each level must be an object with a string sub'],
      [
        { act: { sub: 'payments-subagent', act: { sub: 1 } } },
        'the token has an invalid "act" claim: each level must be an object with a string sub',
      ],
      [{ act: [{ sub: 'x' }] }, 'the token has an invalid "act" claim: each level must be an object with a string sub'],
      [
        { authorization_details: { type: 'payment_initiation' } },
        'the token has an invalid "authorization_details" claim: must be a list of objects, each with a string type',
      ],
      [
        { authorization_details: [{ amount: 5 }] },
        'the token has an invalid "authorization_details" claim: must be a list of objects, each with a string type',
      ],
    ];
    for (const [change, message] of cases) {
      const signed = await signAsBaton({ ...payload, ...change });
      expect(await refusal(verifier.verify(signed, { audience: payments })), JSON.stringify(change)).toEqual(
        invalid(message),
      );
    }
    let deep: Record<string, unknown> = { sub: 'a' };
    for (let i = 0; i < 40; i++) deep = { sub: `a${i}`, act: deep };
    expect(
      await refusal(verifier.verify(await signAsBaton({ ...payload, act: deep }), { audience: payments })),
    ).toEqual(invalid(`the token's act claim nests deeper than 32`));
  });

  it('refuses an expiry of 1e400, which JSON reads as Infinity', async () => {
    const text = JSON.stringify({ ...payload, exp: 0 }).replace('"exp":0', '"exp":1e400');
    expect(await refusal(verifier.verify(await signAsBaton(text), { audience: payments }))).toEqual(
      invalid('the token has an invalid "exp" claim: must be a finite number'),
    );
  });

  it('keeps a proto key in the payload inert', async () => {
    const text = JSON.stringify(payload).replace('{', '{"__proto__":{"sub":"mallory"},"constructor":1,');
    const claims = await verifier.verify(await signAsBaton(text), { audience: payments });
    expect([claims.sub, claims.actChain]).toEqual(['alice', ['alice', 'orchestrator', 'payments-subagent']]);
  });

  it('reports keys it cannot read as network_error, and metadata of another issuer as invalid_response', async () => {
    const unreachable = batonVerifier({ issuer: baton.issuer, jwksUri: 'http://127.0.0.1:1/jwks.json' });
    const [name, code] = await refusal(unreachable.verify(token, { audience: payments }));
    expect([name, code]).toEqual(['BatonError', 'network_error']);
    const notFound = batonVerifier({ issuer: baton.issuer, jwksUri: `${baton.url}/no-such-jwks` });
    expect(await refusal(notFound.verify(token, { audience: payments }))).toEqual([
      'BatonError',
      'network_error',
      `could not read ${baton.issuer}'s signing keys`,
    ]);
    const impostor = batonVerifier({
      issuer: 'http://localhost:1',
      fetch: (_input, init) => fetch(`${baton.url}/.well-known/oauth-authorization-server`, init),
    });
    expect(await refusal(impostor.verify(token, { audience: payments }))).toEqual([
      'BatonError',
      'invalid_response',
      'http://localhost:1/.well-known/oauth-authorization-server is not the metadata of http://localhost:1',
    ]);
  });

  it('tries discovery again after a failure', async () => {
    let calls = 0;
    const flaky = batonVerifier({
      issuer: baton.issuer,
      fetch: (input, init) => (++calls === 1 ? Promise.reject(new TypeError('fetch failed')) : fetch(input, init)),
    });
    expect((await refusal(flaky.verify(token, { audience: payments })))[1]).toBe('network_error');
    expect((await flaky.verify(token, { audience: payments })).sub).toBe('alice');
    // Discovery, then the key set: nothing fetched again for a second token.
    expect(calls).toBe(3);
    await flaky.verify(token, { audience: payments });
    expect(calls).toBe(3);
  });
});

describe('batonVerifier, a token seen before', () => {
  it('is not checked again while its time claims hold: the same claims come back', async () => {
    const remembering = batonVerifier({ issuer: baton.issuer });
    const first = await remembering.verify(token, { audience: payments });
    expect(await remembering.verify(token, { audience: payments })).toBe(first);
    expect(Object.isFrozen(first.payload)).toBe(true);
    const forgetful = batonVerifier({ issuer: baton.issuer, rememberTokens: 0 });
    const once = await forgetful.verify(token, { audience: payments });
    const again = await forgetful.verify(token, { audience: payments });
    expect([again === once, again]).toEqual([false, once]);
  });

  it('is still refused once expired, not yet valid, or for another audience', async () => {
    let now = Date.now();
    const timed = batonVerifier({ issuer: baton.issuer, clock: { now: () => now } });
    expect((await timed.verify(token, { audience: payments })).sub).toBe('alice');
    expect(await refusal(timed.verify(token, { audience: 'https://calendar.example' }))).toEqual(
      invalid('the token is not for audience https://calendar.example'),
    );
    now = (payload.exp as number) * 1000 + 6_000;
    expect(await refusal(timed.verify(token, { audience: payments }))).toEqual(invalid('the token has expired'));
    now = Date.now();
    const later = await signAsBaton({ ...payload, nbf: Math.floor(now / 1000) + 60, jti: 'later' });
    now += 61_000;
    expect((await timed.verify(later, { audience: payments })).jti).toBe('later');
    now -= 61_000;
    expect(await refusal(timed.verify(later, { audience: payments }))).toEqual(invalid('the token is not valid yet'));
  });

  it('keeps at most rememberTokens tokens, the oldest going first', async () => {
    const small = batonVerifier({ issuer: baton.issuer, rememberTokens: 1 });
    const other = await signAsBaton({ ...payload, jti: 'other' });
    const first = await small.verify(token, { audience: payments });
    await small.verify(other, { audience: payments });
    const again = await small.verify(token, { audience: payments });
    expect([again === first, again]).toEqual([false, first]);
  });
});

describe('batonVerifier, keys rotating', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('takes up a new key once the last fetch is 30 s old, and drops a token whose key is gone', async () => {
    // jose paces key-set fetches by Date.now(): the test moves it rather than waiting.
    vi.useFakeTimers({ toFake: ['Date'] });
    const keyOf = async (kid: string) => {
      const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
      const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA' };
      const sign = (claims: JWTPayload) =>
        new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' }).sign(privateKey);
      return { jwk, sign };
    };
    const [a, b] = [await keyOf('a'), await keyOf('b')];
    let published = [a.jwk];
    let fetches = 0;
    const rotating = batonVerifier({
      issuer: baton.issuer,
      jwksUri: 'https://baton.example/jwks',
      fetch: () => (fetches++, Promise.resolve(Response.json({ keys: published }))),
    });
    // Valid for hours: what refuses them below is their key, not the time the test moves.
    const exp = Math.floor(Date.now() / 1000) + 7200;
    const byA = await a.sign({ ...payload, exp });
    const byB = await b.sign({ ...payload, exp, jti: 'b' });
    expect((await rotating.verify(byA, { audience: payments })).sub).toBe('alice');
    published = [a.jwk, b.jwk];
    // Within 30 s of the last fetch an unknown key is refused without asking again.
    expect(await refusal(rotating.verify(byB, { audience: payments }))).toEqual(
      invalid(`the token is not signed by a key ${baton.issuer} publishes`),
    );
    expect(fetches).toBe(1);
    vi.setSystemTime(Date.now() + 31_000);
    expect((await rotating.verify(byB, { audience: payments })).jti).toBe('b');
    expect(fetches).toBe(2);
    // Key a withdrawn: once the cached set is 10 minutes old it is fetched again, and a's token,
    // though remembered, is checked afresh and refused.
    published = [b.jwk];
    vi.setSystemTime(Date.now() + 601_000);
    expect(await refusal(rotating.verify(byA, { audience: payments }))).toEqual(
      invalid(`the token is not signed by a key ${baton.issuer} publishes`),
    );
    expect(fetches).toBe(3);
    // Key b replaced by another under the same kid: b's remembered token no longer verifies.
    published = [{ ...(await keyOf('b')).jwk }];
    vi.setSystemTime(Date.now() + 601_000);
    expect(await refusal(rotating.verify(byB, { audience: payments }))).toEqual(
      invalid('the token signature does not verify'),
    );
    expect(fetches).toBe(4);
  });
});

describe('verifyBatonToken', () => {
  it('verifies in one call and refuses like a verifier', async () => {
    expect((await verifyBatonToken(token, { issuer: baton.issuer, audience: payments })).actChain).toEqual([
      'alice',
      'orchestrator',
      'payments-subagent',
    ]);
    expect(await refusal(verifyBatonToken(token, { issuer: baton.issuer, audience: 'https://other.example' }))).toEqual(
      invalid('the token is not for audience https://other.example'),
    );
  });
});
