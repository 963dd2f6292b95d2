import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSecret, mintUserToken } from '../../../src/cli/demo-kit.js';
import { basic, startTestBaton, type TestBaton } from '../../../test/support/baton.js';
import { demoJwk, refusal } from './support.js';
import { agentIdentity, batonClient, tokenTypes, type AgentIdentity, type BatonClient } from '../src/index.js';

let baton: TestBaton;
let client: BatonClient;
let orchestrator: AgentIdentity;
let subagent: AgentIdentity;
const platform = { id: 'agent-platform', secret: demoSecret('agent-platform') };

beforeAll(async () => {
  baton = await startTestBaton();
  client = batonClient({ issuer: baton.issuer, client: platform });
  orchestrator = agentIdentity({ id: 'orchestrator', privateJwk: demoJwk('orchestrator'), issuer: baton.issuer });
  subagent = agentIdentity({
    id: 'payments-subagent',
    privateJwk: demoJwk('payments-subagent'),
    issuer: baton.issuer,
  });
});
afterAll(() => baton?.close());

const alice = () => mintUserToken('alice', { audience: baton.issuer });

describe('agentIdentity', () => {
  it('signs single-use RFC 7523 assertions: iss = sub = agent, aud = issuer, fresh jti, 60 s', async () => {
    const clock = { now: () => 1_800_000_000_500 };
    const identity = agentIdentity({
      id: 'orchestrator',
      privateJwk: demoJwk('orchestrator'),
      issuer: 'https://b.example',
      clock,
    });
    const [one, two] = [await identity.assertion(), await identity.assertion()];
    expect(decodeProtectedHeader(one)).toEqual({ alg: 'EdDSA', kid: 'orchestrator-demo-1' });
    const { jti, ...rest } = decodeJwt(one);
    expect(rest).toEqual({
      iss: 'orchestrator',
      sub: 'orchestrator',
      aud: 'https://b.example',
      iat: 1_800_000_000,
      exp: 1_800_000_060,
    });
    expect(jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(decodeJwt(two).jti).not.toBe(jti);
  });

  it('refuses a public key, a key with no algorithm, an empty id and a long lifetime', () => {
    const { d: _d, ...publicJwk } = demoJwk('orchestrator');
    const issuer = 'https://b.example';
    for (const [options, message] of [
      [{ id: 'a', privateJwk: publicJwk, issuer }, 'the JWK of agent a is not a private key'],
      [
        { id: 'a', privateJwk: { kty: 'RSA', d: 'x' }, issuer },
        'the JWK of agent a names no "alg" and its key type does not imply one',
      ],
      [{ id: '', privateJwk: demoJwk('orchestrator'), issuer }, 'an agent identity needs a non-empty id'],
      [
        { id: 'a', privateJwk: demoJwk('orchestrator'), issuer, lifetimeSeconds: 301 },
        'lifetimeSeconds must be a whole number from 1 to 300',
      ],
    ] as const) {
      expect(() => agentIdentity(options as Parameters<typeof agentIdentity>[0])).toThrow(
        expect.objectContaining({ name: 'BatonError', code: 'invalid_key', message }),
      );
    }
  });
});

describe('exchange and delegate against a real Baton', () => {
  it('delegates user → orchestrator → payments-subagent; the claims carry the act chain, oldest first', async () => {
    const first = await client.exchange({
      subjectToken: await alice(),
      actor: orchestrator,
      audience: 'payments',
      scope: ['payments:read', 'payments:transfer'],
    });
    expect(first).toMatchObject({
      issuedTokenType: tokenTypes.accessToken,
      tokenType: 'Bearer',
      scope: 'payments:read payments:transfer',
      authorizationDetails: undefined,
    });
    expect(first.claims).toMatchObject({ sub: 'alice', aud: 'https://payments.example', act: { sub: 'orchestrator' } });
    expect(first.claims.actChain).toEqual(['alice', 'orchestrator']);
    const second = await client.delegate(first.accessToken, { actor: subagent, scope: 'payments:transfer' });
    expect(second.claims.actChain).toEqual(['alice', 'orchestrator', 'payments-subagent']);
    expect(second.claims.act).toEqual({ sub: 'payments-subagent', act: { sub: 'orchestrator' } });
    expect(second.scope).toBe('payments:transfer');
    expect(second.expiresIn).toBe((second.claims.exp as number) - (second.claims.iat as number));
  });

  it('discovers the token endpoint from the RFC 8414 metadata, once', async () => {
    const urls: string[] = [];
    const counting = batonClient({
      issuer: baton.issuer,
      client: platform,
      fetch: (input, init) => {
        urls.push(String(input));
        return fetch(input, init);
      },
    });
    await counting.exchange({ subjectToken: await alice(), actor: orchestrator, audience: 'payments' });
    await counting.exchange({ subjectToken: await alice(), actor: orchestrator, audience: 'payments' });
    expect(urls).toEqual([
      `${baton.issuer}/.well-known/oauth-authorization-server`,
      `${baton.issuer}/oauth2/token`,
      `${baton.issuer}/oauth2/token`,
    ]);
  });

  it('authenticates an agent with private_key_jwt for its own token, then acts with that token', async () => {
    const own = await client.clientCredentials({ client: orchestrator });
    expect(own.claims).toMatchObject({ sub: 'orchestrator', aud: baton.issuer });
    const delegated = await client.exchange({
      subjectToken: await alice(),
      actor: { token: own.accessToken },
      audience: 'payments',
      scope: 'payments:read',
    });
    expect(delegated.claims.actChain).toEqual(['alice', 'orchestrator']);
  });

  it('refuses with the exact error class, code, status and description', async () => {
    const hop = await client.exchange({
      subjectToken: await alice(),
      actor: orchestrator,
      audience: 'payments',
      scope: 'payments:read',
    });
    const revoked = await client.exchange({ subjectToken: await alice(), actor: orchestrator, audience: 'payments' });
    const revocation = await fetch(`${baton.issuer}/oauth2/revoke`, {
      method: 'POST',
      headers: { authorization: basic('agent-platform'), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: revoked.accessToken }).toString(),
    });
    expect(revocation.status).toBe(200);
    const cases: [string, () => Promise<unknown>, Record<string, unknown>][] = [
      [
        'wrong audience',
        async () => client.exchange({ subjectToken: await alice(), actor: orchestrator, audience: 'ledger' }),
        {
          name: 'OAuthResponseError',
          code: 'invalid_target',
          status: 400,
          description: 'audience "ledger" is not a known resource server',
        },
      ],
      [
        'scope widening',
        () => client.delegate(hop.accessToken, { actor: subagent, scope: 'payments:transfer' }),
        {
          name: 'OAuthResponseError',
          code: 'invalid_scope',
          status: 400,
          description: 'scope "payments:transfer" exceeds the subject token\'s scope',
        },
      ],
      [
        'expired subject',
        async () =>
          client.exchange({
            subjectToken: await mintUserToken('alice', { audience: baton.issuer, lifetimeSeconds: -600 }),
            actor: orchestrator,
            audience: 'payments',
          }),
        { name: 'OAuthResponseError', code: 'invalid_request', status: 400, description: 'subject_token is expired' },
      ],
      [
        'revoked subject',
        () => client.delegate(revoked.accessToken, { actor: subagent }),
        {
          name: 'OAuthResponseError',
          code: 'invalid_request',
          status: 400,
          description: 'subject_token has been revoked',
        },
      ],
      [
        'NUL in scope',
        async () =>
          client.exchange({
            subjectToken: await alice(),
            actor: orchestrator,
            audience: 'payments',
            scope: 'payments:read\u0000',
          }),
        {
          name: 'OAuthResponseError',
          code: 'invalid_request',
          status: 400,
          description: 'scope contains a NUL character',
        },
      ],
      [
        'bad client secret',
        async () =>
          client.exchange({
            subjectToken: await alice(),
            actor: orchestrator,
            audience: 'payments',
            client: { id: 'agent-platform', secret: 'wrong' },
          }),
        {
          name: 'OAuthResponseError',
          code: 'invalid_client',
          status: 401,
          description: 'client authentication failed',
        },
      ],
    ];
    const results: Record<string, unknown> = {};
    for (const [name, run] of cases) results[name] = await refusal(run());
    expect(results).toEqual(Object.fromEntries(cases.map(([name, , expected]) => [name, expected])));
  });

  it('tries a 503 again after its Retry-After, with a fresh actor assertion, and gets the token', async () => {
    const sent: URLSearchParams[] = [];
    const waits: number[] = [];
    let refuse = true;
    const flaky = batonClient({
      issuer: baton.issuer,
      tokenEndpoint: `${baton.issuer}/oauth2/token`,
      client: platform,
      retry: { sleep: async (ms) => void waits.push(ms) },
      fetch: async (input, init) => {
        sent.push(new URLSearchParams(String(init?.body)));
        if (!refuse) return fetch(input, init);
        refuse = false;
        return Response.json(
          { error: 'temporarily_unavailable', error_description: 'the database did not answer' },
          { status: 503, headers: { 'retry-after': '2' } },
        );
      },
    });
    const token = await flaky.exchange({ subjectToken: await alice(), actor: orchestrator, audience: 'payments' });
    expect(token.claims.actChain).toEqual(['alice', 'orchestrator']);
    expect(waits).toEqual([2000]);
    const [first, second] = sent.map((form) => decodeJwt(form.get('actor_token') as string).jti);
    expect(sent).toHaveLength(2);
    expect(first).not.toBe(second);
  });
});
