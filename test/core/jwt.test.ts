import { generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { OAuthError } from '../../src/core/errors.js';
import { resolverOf } from '../../src/core/tokens/jwks.js';
import { VerifiedTokens, verifyJwt, type VerifyOptions } from '../../src/core/tokens/jwt.js';
import type { KeyResolver } from '../../src/core/ports.js';

describe('remembering verified tokens', () => {
  const issuer = 'https://idp.example';
  const t0 = 1_800_000_000_000;
  let key: { publicKey: CryptoKey; privateKey: CryptoKey };
  let otherKey: { publicKey: CryptoKey; privateKey: CryptoKey };
  beforeAll(async () => {
    key = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    otherKey = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  });
  afterEach(() => vi.restoreAllMocks());

  const sign = (claims: Record<string, unknown>, privateKey = key.privateKey) =>
    new SignJWT({ sub: 'alice', ...claims })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'k1' })
      .setIssuer(issuer)
      .setIssuedAt(t0 / 1000)
      .setExpirationTime(t0 / 1000 + 300)
      .sign(privateKey);

  /** Options over a key set that the test can change, a clock it can move, and one memory. */
  function setup() {
    const clock = {
      t: t0,
      now() {
        return this.t;
      },
    };
    const keys = { published: [{ kid: 'k1', alg: 'EdDSA', key: key.publicKey }] };
    const resolve: KeyResolver = (header) => resolverOf(keys.published)(header);
    const tokens = new VerifiedTokens(sha256Hex);
    const scope = {};
    const options: VerifyOptions = {
      param: 'subject_token',
      errorCode: 'invalid_request',
      resolve,
      algorithms: ['EdDSA'],
      issuer,
      requiredClaims: ['sub', 'exp'],
      clock,
      clockToleranceSeconds: 30,
      remember: { tokens, scope },
    };
    return { clock, keys, tokens, scope, options };
  }
  const signatureChecks = () => vi.spyOn(crypto.subtle, 'verify');
  const refusal = async (check: Promise<unknown>): Promise<string | undefined> => {
    try {
      await check;
      return undefined;
    } catch (error) {
      if (error instanceof OAuthError) return `${error.code}: ${error.description}`;
      throw error;
    }
  };

  it('checks the signature of a token presented again only once', async () => {
    const { options, tokens } = setup();
    const token = await sign({});
    const checks = signatureChecks();
    const first = await verifyJwt(token, options);
    const again = await verifyJwt(token, options);
    expect(checks).toHaveBeenCalledTimes(1);
    expect(again).toEqual(first);
    expect(again.payload).toEqual({ sub: 'alice', iss: issuer, iat: t0 / 1000, exp: t0 / 1000 + 300 });
    expect(tokens.size).toBe(1);
  });

  it('keeps the hash of a token, never the token', async () => {
    const { tokens, scope } = setup();
    const token = await sign({});
    const name = tokens.keyOf(scope, token);
    expect(name).toMatch(/^\d+\.[A-Za-z0-9_-]{43}$/);
    expect(name.includes(token.split('.')[2] ?? '-')).toBe(false);
  });

  it('refuses a remembered token once it has expired, as it refuses any expired token', async () => {
    const { options, clock } = setup();
    const token = await sign({});
    await verifyJwt(token, options);
    clock.t = t0 + 329_000;
    expect(await refusal(verifyJwt(token, options))).toBeUndefined();
    clock.t = t0 + 330_000;
    expect(await refusal(verifyJwt(token, options))).toBe('invalid_request: subject_token is expired');
  });

  it('refuses a remembered token when the clock is before its nbf or iat again', async () => {
    const { options, clock } = setup();
    const token = await sign({ nbf: t0 / 1000 });
    await verifyJwt(token, options);
    clock.t = t0 - 31_000;
    expect(await refusal(verifyJwt(token, options))).toBe('invalid_request: subject_token is not yet valid');
    const issued = await sign({});
    clock.t = t0;
    await verifyJwt(issued, options);
    clock.t = t0 - 31_000;
    expect(await refusal(verifyJwt(issued, options))).toBe('invalid_request: subject_token was issued in the future');
  });

  it('checks again in full once the key that verified the token is no longer published', async () => {
    const { options, keys } = setup();
    const token = await sign({});
    await verifyJwt(token, options);
    keys.published = [];
    expect(await refusal(verifyJwt(token, options))).toBe(
      'invalid_request: subject_token is signed with an unknown key',
    );
    // The same kid now names another key: the signature no longer matches.
    keys.published = [{ kid: 'k1', alg: 'EdDSA', key: otherKey.publicKey }];
    expect(await refusal(verifyJwt(token, options))).toBe('invalid_request: subject_token has an invalid signature');
    keys.published = [{ kid: 'k1', alg: 'EdDSA', key: key.publicKey }];
    const checks = signatureChecks();
    expect(await refusal(verifyJwt(token, options))).toBeUndefined();
    expect(checks).toHaveBeenCalledTimes(1);
  });

  it('remembers nothing that failed, and checks a token anew in another scope', async () => {
    const { options, tokens } = setup();
    const forged = await sign({}, otherKey.privateKey);
    expect(await refusal(verifyJwt(forged, options))).toBe('invalid_request: subject_token has an invalid signature');
    expect(await refusal(verifyJwt(forged, options))).toBe('invalid_request: subject_token has an invalid signature');
    expect(tokens.size).toBe(0);
    const token = await sign({});
    await verifyJwt(token, options);
    const checks = signatureChecks();
    // Another scope: other key sets and options, so the token is verified under them.
    const elsewhere = { ...options, audience: 'https://api.example', remember: { tokens, scope: {} } };
    expect(await refusal(verifyJwt(token, elsewhere))).toBe('invalid_request: subject_token lacks the "aud" claim');
    expect(checks).toHaveBeenCalledTimes(1);
  });

  it('hands out claims no caller can change', async () => {
    const { options } = setup();
    const token = await sign({ act: { sub: 'orchestrator' } });
    const { payload } = await verifyJwt(token, options);
    expect(() => ((payload.act as { sub: string }).sub = 'mallory')).toThrow(TypeError);
    expect((await verifyJwt(token, options)).payload.act).toEqual({ sub: 'orchestrator' });
  });

  it('holds at most its capacity, forgetting the oldest first', async () => {
    const { options } = setup();
    const tokens = new VerifiedTokens(sha256Hex, 2);
    const small = { ...options, remember: { tokens, scope: {} } };
    const [a, b, c] = await Promise.all([sign({ jti: 'a' }), sign({ jti: 'b' }), sign({ jti: 'c' })]);
    for (const token of [a, b, c]) await verifyJwt(token, small);
    expect(tokens.size).toBe(2);
    const checks = signatureChecks();
    await verifyJwt(c, small);
    expect(checks).toHaveBeenCalledTimes(0);
    await verifyJwt(a, small);
    expect(checks).toHaveBeenCalledTimes(1);
  });
});
