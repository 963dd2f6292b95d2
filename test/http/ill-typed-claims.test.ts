import { CompactSign, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { basic, grants, postJson, postToken, tokenTypes, type PostResult } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { agentAssertion, epochSeconds, upstreamToken, upstreamTokenFromText } from '../support/forge.js';
import { randomId } from '../../src/core/secrets.js';

// A validly signed token with a claim of the wrong type (an object where a string belongs, an
// empty subject, a time that is not a finite number) is refused like a token that does not
// verify, at every place Baton accepts one: /authorize, introspection, exchange, Bearer callers.
let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton({ BATON_RATE_LIMIT: '0' });
});
afterAll(async () => {
  await baton?.close();
});

const asPayments = { authorization: basic('payments') };
const outcome = (r: PostResult) => ({ status: r.status, body: r.body });
const invalid = (description: string) => ({
  status: 400,
  body: { error: 'invalid_request', error_description: description },
});

/** The claims of an ordinary Baton token for alice at the payments API. */
const batonClaims = (): Record<string, unknown> => ({
  iss: baton.issuer,
  sub: 'alice',
  aud: 'https://payments.example',
  iat: epochSeconds(),
  exp: epochSeconds() + 60,
  jti: randomId(),
  tenant: 'acme',
  client_id: 'agent-platform',
  scope: 'payments:read',
});

/** Signs `payload` (JSON text, so it may hold what JSON.stringify cannot write) with Baton's own key. */
async function signTextAsBaton(payload: string): Promise<string> {
  const jwk = baton.signingJwks.keys[0] as Record<string, unknown>;
  const key = await importJWK(jwk, 'EdDSA');
  return new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid as string, typ: 'at+jwt' })
    .sign(key);
}

/** Claims text: the ordinary claims with `overrides` (raw JSON text per claim) replacing theirs. */
function claimsText(base: Record<string, unknown>, overrides: Record<string, string>): string {
  const members = Object.entries(base)
    .filter(([name]) => !(name in overrides))
    .map(([name, value]) => `${JSON.stringify(name)}:${JSON.stringify(value)}`);
  return `{${[...members, ...Object.entries(overrides).map(([name, raw]) => `${JSON.stringify(name)}:${raw}`)].join(',')}}`;
}

let deepAct = '{"sub":"a0"}';
for (let i = 1; i < 33; i++) deepAct = `{"sub":"a${i}","act":${deepAct}}`;

/** Claims (as raw JSON) and the refusal they earn, after "<param> ". */
const badClaims: [string, Record<string, string>, string][] = [
  ['an empty sub', { sub: '""' }, 'has an invalid "sub" claim: must be a non-empty string'],
  ['an object sub', { sub: '{"id":"alice"}' }, 'has an invalid "sub" claim: must be a non-empty string'],
  ['a numeric sub', { sub: '42' }, 'has an invalid "sub" claim: must be a non-empty string'],
  ['an empty jti', { jti: '""' }, 'has an invalid "jti" claim: must be a non-empty string'],
  ['an array jti', { jti: '["a"]' }, 'has an invalid "jti" claim: must be a non-empty string'],
  ['an empty tenant', { tenant: '""' }, 'has an invalid "tenant" claim: must be a non-empty string'],
  ['an object tenant', { tenant: '{"id":"acme"}' }, 'has an invalid "tenant" claim: must be a non-empty string'],
  ['an empty client_id', { client_id: '""' }, 'has an invalid "client_id" claim: must be a non-empty string'],
  ['a boolean client_id', { client_id: 'true' }, 'has an invalid "client_id" claim: must be a non-empty string'],
  ['an array scope', { scope: '["payments:read"]' }, 'has an invalid "scope" claim: must be a string'],
  ['a numeric scope', { scope: '7' }, 'has an invalid "scope" claim: must be a string'],
  ['an scp that is not a list', { scp: '"payments:read"' }, 'has an invalid "scp" claim: must be a list of strings'],
  ['an exp that overflows to Infinity', { exp: '1e400' }, 'has an invalid "exp" claim: must be a finite number'],
  ['an exp given as a string', { exp: `"${epochSeconds() + 60}"` }, 'has an invalid "exp" claim'],
  ['an nbf of minus Infinity', { nbf: '-1e400' }, 'has an invalid "nbf" claim: must be a finite number'],
  ['an object iat', { iat: '{}' }, 'has an invalid "iat" claim'],
  ['a numeric aud', { aud: '5' }, 'has an invalid "aud" claim: must be a non-empty string or a list of them'],
  ['an empty aud list', { aud: '[]' }, 'has an invalid "aud" claim: must be a non-empty string or a list of them'],
  [
    'an aud list with an object',
    { aud: '["https://payments.example",{}]' },
    'has an invalid "aud" claim: must be a non-empty string or a list of them',
  ],
  ['a string act', { act: '"orchestrator"' }, 'has a malformed act claim'],
  ['an act whose sub is an object', { act: '{"sub":{"id":"orchestrator"}}' }, 'has an act claim without a subject'],
  ['an act with an empty sub', { act: '{"sub":""}' }, 'has an act claim without a subject'],
  ['an act with a numeric iss', { act: '{"sub":"orchestrator","iss":5}' }, 'has a malformed act claim'],
  ['a nested act that is a list', { act: '{"sub":"orchestrator","act":[{"sub":"x"}]}' }, 'has a malformed act claim'],
  ['an act nested 33 deep', { act: deepAct }, 'has an act claim nested deeper than 32'],
  ['a string may_act', { may_act: '"orchestrator"' }, 'has a malformed may_act claim'],
  ['a may_act without sub', { may_act: '{}' }, 'has a malformed may_act claim'],
  ['a may_act with a numeric sub', { may_act: '{"sub":5}' }, 'has a malformed may_act claim'],
  [
    'an object authorization_details',
    { authorization_details: '{"type":"payment_initiation"}' },
    'has a malformed authorization_details claim',
  ],
  [
    'authorization_details holding a list',
    { authorization_details: '[["payment_initiation"]]' },
    'has a malformed authorization_details claim',
  ],
  [
    'authorization_details with a numeric type',
    { authorization_details: '[{"type":5}]' },
    'has a malformed authorization_details claim',
  ],
];

describe("Baton's own tokens, signed with Baton's key", () => {
  const exchange = async (subject: string) =>
    postToken(baton, {
      grant_type: grants.exchange,
      subject_token: subject,
      subject_token_type: tokenTypes.accessToken,
      actor_token: await mintAgentAssertion('payments-subagent', baton.issuer),
      actor_token_type: tokenTypes.jwt,
    });
  const introspect = async (token: string) => {
    const response = await baton.fetch(`${baton.url}/oauth2/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...asPayments },
      body: new URLSearchParams({ token }).toString(),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const decide = (token: string, actionId: string) =>
    postJson(
      baton,
      '/authorize',
      { token, action: 'payments:read', resource: { type: 'Account', id: 'acct-1' }, action_id: actionId },
      asPayments,
    );

  it('takes the same token with well-typed claims (the control)', async () => {
    const token = await signTextAsBaton(claimsText(batonClaims(), {}));
    expect(outcome(await decide(token, 'control'))).toEqual({
      status: 200,
      body: { decision: 'allow', action_id: 'control', reasons: ['read-payments'] },
    });
    expect(await introspect(token)).toMatchObject({ status: 200, body: { active: true, sub: 'alice' } });
    // Well typed but never issued: the exchange looks it up, and finds no lineage.
    expect(outcome(await exchange(token))).toEqual(invalid('subject_token is not known to Baton'));
  });

  it.each(badClaims)('refuses %s at /authorize, introspection and exchange', async (_name, overrides, refusal) => {
    const token = await signTextAsBaton(claimsText(batonClaims(), overrides));
    expect(outcome(await decide(token, 'ill-typed'))).toEqual({
      status: 200,
      body: { decision: 'deny', action_id: 'ill-typed', reasons: ['baton:invalid-token'] },
    });
    expect(await introspect(token)).toEqual({ status: 200, body: { active: false } });
    expect(outcome(await exchange(token))).toEqual(invalid(`subject_token ${refusal}`));
  });

  const callerClaims = (): Record<string, unknown> => ({
    ...batonClaims(),
    sub: 'payments',
    client_id: 'payments',
    aud: baton.issuer,
    scope: '',
  });
  it('authenticates a resource server by its own well-typed token (the control)', async () => {
    // The credential is taken; the token asked about (not Baton's) is then denied.
    const result = await postJson(
      baton,
      '/authorize',
      { token: 'x', action: 'payments:read', resource: { type: 'Account', id: 'acct-1' }, action_id: 'bearer-control' },
      { authorization: `Bearer ${await signTextAsBaton(claimsText(callerClaims(), {}))}` },
    );
    expect(outcome(result)).toEqual({
      status: 200,
      body: { decision: 'deny', action_id: 'bearer-control', reasons: ['baton:invalid-token'] },
    });
  });

  it.each(
    badClaims.filter(([, overrides]) => !('aud' in overrides) && !('sub' in overrides) && !('client_id' in overrides)),
  )('refuses a Bearer credential with %s', async (_name, overrides, refusal) => {
    const result = await postJson(
      baton,
      '/authorize',
      { token: 'x', action: 'payments:read', resource: { type: 'Account', id: 'acct-1' } },
      { authorization: `Bearer ${await signTextAsBaton(claimsText(callerClaims(), overrides))}` },
    );
    expect(outcome(result)).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: `bearer token ${refusal}` },
    });
  });
});

describe("an upstream identity provider's tokens, signed with its registered key", () => {
  const exchange = async (subject: string) =>
    postToken(baton, {
      grant_type: grants.exchange,
      subject_token: subject,
      subject_token_type: tokenTypes.jwt,
      actor_token: await mintAgentAssertion('orchestrator', baton.issuer),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    });
  const upstreamClaims = (): Record<string, unknown> => ({
    iss: 'https://id.acme.example',
    sub: 'alice',
    aud: baton.issuer,
    iat: epochSeconds(),
    exp: epochSeconds() + 600,
    jti: randomId(),
    scope: 'openid payments:read',
  });

  it('exchanges the same token with well-typed claims (the control)', async () => {
    expect((await exchange(await upstreamTokenFromText(claimsText(upstreamClaims(), {})))).status).toBe(200);
  });

  // An upstream token's audience is checked against the issuer's accepted audiences first.
  it.each(badClaims.filter(([, overrides]) => !('aud' in overrides)))(
    'refuses %s',
    async (_name, overrides, refusal) => {
      expect(outcome(await exchange(await upstreamTokenFromText(claimsText(upstreamClaims(), overrides))))).toEqual(
        invalid(`subject_token ${refusal}`),
      );
    },
  );

  it.each([
    ['a numeric aud', { aud: 5 }],
    ['an empty aud list', { aud: [] }],
  ])('refuses %s as not intended for Baton', async (_name, claims) => {
    expect(outcome(await exchange(await upstreamToken(baton.issuer, claims)))).toEqual(
      invalid('subject_token is not intended for this audience'),
    );
  });
});

describe('assertions, signed with the agent key', () => {
  it.each([
    ['an empty jti', { jti: '' }, 'has an invalid "jti" claim: must be a non-empty string'],
    ['an object jti', { jti: { id: 'x' } }, 'has an invalid "jti" claim: must be a non-empty string'],
    ['an array act', { act: [] }, 'has a malformed act claim'],
    ['an object scope', { scope: {} }, 'has an invalid "scope" claim: must be a string'],
  ])('refuses an actor assertion with %s', async (_name, claims, refusal) => {
    const result = await postToken(baton, {
      grant_type: grants.exchange,
      subject_token: await mintUserToken('alice', { audience: baton.issuer }),
      subject_token_type: tokenTypes.jwt,
      actor_token: await agentAssertion('orchestrator', baton.issuer, claims),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    });
    expect(outcome(result)).toEqual(invalid(`actor_token ${refusal}`));
  });

  it.each([
    ['an empty jti', { jti: '' }, 'client_assertion has an invalid "jti" claim: must be a non-empty string'],
    ['a numeric jti', { jti: 7 }, 'client_assertion has an invalid "jti" claim: must be a non-empty string'],
    ['an object sub', { sub: { id: 'orchestrator' } }, 'client_assertion lacks the "sub" claim'],
    ['an object tenant', { tenant: {} }, 'client_assertion has an invalid "tenant" claim: must be a non-empty string'],
  ])('refuses a client assertion with %s', async (_name, claims, description) => {
    const result = await postToken(
      baton,
      {
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: await agentAssertion('orchestrator', baton.issuer, claims),
      },
      {},
    );
    expect(outcome(result)).toEqual({ status: 401, body: { error: 'invalid_client', error_description: description } });
  });
});
