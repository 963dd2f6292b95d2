import { readFileSync } from 'node:fs';
import { base64url, decodeJwt, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoKey, mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { basic, grants, postToken, tokenTypes } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { randomId } from '../../src/core/secrets.js';

let baton: MemoryBaton;
let capped: MemoryBaton;
beforeAll(async () => {
  [baton, capped] = await Promise.all([memoryBaton(), memoryBaton({ BATON_MAX_CHAIN_LENGTH: '1' })]);
});
afterAll(async () => {
  await Promise.all([baton?.close(), capped?.close()]);
});

const now = () => Math.floor(Date.now() / 1000);

/** Claims to set; `undefined` removes a claim. */
type Claims = Record<string, unknown>;

/** A token from acme's demo identity provider with full control over claims, header and key. */
async function idpToken(
  claims: Claims = {},
  header: Record<string, unknown> = {},
  key?: CryptoKey | Uint8Array,
): Promise<string> {
  const idp = await demoKey('id.acme.example');
  const payload: JWTPayload = {
    iss: 'https://id.acme.example',
    sub: 'alice',
    aud: baton.issuer,
    iat: now(),
    exp: now() + 600,
    jti: randomId(),
    scope: 'openid payments:read payments:transfer',
    ...claims,
  };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'EdDSA', kid: idp.kid, ...header } as never)
    .sign(key ?? idp.key);
}

/** An actor assertion of a demo agent with full control over claims. */
async function agentAssertion(agent: string, claims: Claims = {}, signer = agent): Promise<string> {
  const { key } = await demoKey(signer);
  const { kid } = await demoKey(agent);
  const payload: JWTPayload = {
    iss: agent,
    sub: agent,
    aud: baton.issuer,
    iat: now(),
    exp: now() + 60,
    jti: randomId(),
    ...claims,
  };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', kid }).sign(key);
}

function unsigned(claims: JWTPayload): string {
  const enc = (o: object) => base64url.encode(JSON.stringify(o));
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ iss: 'https://id.acme.example', sub: 'alice', aud: baton.issuer, exp: now() + 600, ...claims })}.`;
}

async function exchange(
  params: Record<string, string | string[] | undefined>,
  target = baton,
  headers: Record<string, string> = { authorization: basic('agent-platform') },
) {
  const body: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries({ grant_type: grants.exchange, subject_token_type: tokenTypes.jwt, ...params }))
    if (v !== undefined) body[k] = v;
  return postToken(target, body, headers);
}

async function hop1(target = baton, scope = 'payments:read payments:transfer'): Promise<string> {
  const result = await exchange(
    {
      subject_token: await mintUserToken('alice', { audience: target.issuer }),
      actor_token: await mintAgentAssertion('orchestrator', target.issuer),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
      scope,
    },
    target,
  );
  expect(result.status).toBe(200);
  return result.body.access_token as string;
}

async function hop2(target = baton): Promise<string> {
  const result = await exchange(
    {
      subject_token: await hop1(target),
      subject_token_type: tokenTypes.accessToken,
      actor_token: await mintAgentAssertion('payments-subagent', target.issuer),
      actor_token_type: tokenTypes.jwt,
    },
    target,
  );
  expect(result.status).toBe(200);
  return result.body.access_token as string;
}

const orchestrator = async () => ({
  actor_token: await agentAssertion('orchestrator'),
  actor_token_type: tokenTypes.jwt,
  audience: 'payments',
});

interface Case {
  readonly name: string;
  readonly params: () => Promise<Record<string, string | string[] | undefined>>;
  readonly target?: () => MemoryBaton;
  readonly headers?: () => Record<string, string>;
  readonly status?: number;
  readonly error: string;
  readonly description: string;
}

const cases: Case[] = [
  {
    name: 'forged signature on the subject token',
    params: async () => ({
      subject_token: await idpToken({}, {}, (await generateKeyPair('EdDSA')).privateKey),
      ...(await orchestrator()),
    }),
    error: 'invalid_request',
    description: 'subject_token has an invalid signature',
  },
  {
    name: 'alg none',
    params: async () => ({ subject_token: unsigned({}), ...(await orchestrator()) }),
    error: 'invalid_request',
    description: 'subject_token uses a signing algorithm that is not allowed',
  },
  {
    name: 'HS256 keyed with the public key',
    params: async () => {
      const registry = JSON.parse(readFileSync('policies/registry.json', 'utf8')) as {
        trusted_issuers: { jwks: { keys: object[] } }[];
      };
      const pub = registry.trusted_issuers[0]?.jwks.keys[0];
      return {
        subject_token: await idpToken({}, { alg: 'HS256' }, new TextEncoder().encode(JSON.stringify(pub))),
        ...(await orchestrator()),
      };
    },
    error: 'invalid_request',
    description: 'subject_token uses a signing algorithm that is not allowed',
  },
  {
    name: 'expired subject token',
    params: async () => ({
      subject_token: await idpToken({ iat: now() - 900, exp: now() - 120 }),
      ...(await orchestrator()),
    }),
    error: 'invalid_request',
    description: 'subject_token is expired',
  },
  {
    name: 'subject token not yet valid',
    params: async () => ({ subject_token: await idpToken({ nbf: now() + 600 }), ...(await orchestrator()) }),
    error: 'invalid_request',
    description: 'subject_token is not yet valid',
  },
  {
    name: 'subject token issued in the future',
    params: async () => ({
      subject_token: await idpToken({ iat: now() + 600, exp: now() + 900 }),
      ...(await orchestrator()),
    }),
    error: 'invalid_request',
    description: 'subject_token was issued in the future',
  },
  {
    name: 'wrong audience',
    params: async () => ({
      subject_token: await idpToken({ aud: 'https://someone-else.example' }),
      ...(await orchestrator()),
    }),
    error: 'invalid_request',
    description: 'subject_token is not intended for this audience',
  },
  {
    name: 'unknown issuer',
    params: async () => ({ subject_token: await idpToken({ iss: 'https://evil.example' }), ...(await orchestrator()) }),
    error: 'invalid_request',
    description: 'subject_token is from an issuer that is not trusted',
  },
  {
    name: 'unknown kid',
    params: async () => ({ subject_token: await idpToken({}, { kid: 'no-such-key' }), ...(await orchestrator()) }),
    error: 'invalid_request',
    description: 'subject_token is signed with an unknown key',
  },
  {
    name: 'subject token without exp',
    params: async () => ({ subject_token: await idpToken({ exp: undefined }), ...(await orchestrator()) }),
    error: 'invalid_request',
    description: 'subject_token lacks the "exp" claim',
  },
  {
    name: 'subject token that is not a JWT',
    params: async () => ({ subject_token: 'not-a-jwt', ...(await orchestrator()) }),
    error: 'invalid_request',
    description: 'subject_token is not a well-formed JWT',
  },
  {
    name: 'subject token larger than the limit',
    params: async () => ({ subject_token: await idpToken({ padding: 'x'.repeat(9000) }), ...(await orchestrator()) }),
    error: 'invalid_request',
    description: 'subject_token is larger than 8192 bytes',
  },
  {
    name: 'Baton token with a tampered payload',
    params: async () => {
      const [h, , s] = (await hop1(baton, 'payments:read')).split('.');
      const payload = { ...decodeJwt(await hop1(baton, 'payments:read')), scope: 'payments:read payments:transfer' };
      return {
        subject_token: `${h}.${base64url.encode(JSON.stringify(payload))}.${s}`,
        subject_token_type: tokenTypes.accessToken,
        actor_token: await agentAssertion('payments-subagent'),
        actor_token_type: tokenTypes.jwt,
      };
    },
    error: 'invalid_request',
    description: 'subject_token has an invalid signature',
  },
  {
    name: 'Baton-signed token that Baton never issued',
    params: async () => ({
      subject_token: await baton.signAsBaton({
        iss: baton.issuer,
        sub: 'alice',
        aud: 'https://payments.example',
        iat: now(),
        exp: now() + 60,
        jti: randomId(),
        tenant: 'acme',
        client_id: 'agent-platform',
        scope: 'payments:transfer',
      }),
      subject_token_type: tokenTypes.accessToken,
      actor_token: await agentAssertion('orchestrator'),
      actor_token_type: tokenTypes.jwt,
    }),
    error: 'invalid_request',
    description: 'subject_token is not known to Baton',
  },
  {
    name: 'replayed actor assertion',
    params: async () => {
      const actor = await agentAssertion('orchestrator');
      const first = await exchange({
        subject_token: await idpToken(),
        actor_token: actor,
        actor_token_type: tokenTypes.jwt,
        audience: 'payments',
      });
      expect(first.status).toBe(200);
      return {
        subject_token: await idpToken(),
        actor_token: actor,
        actor_token_type: tokenTypes.jwt,
        audience: 'payments',
      };
    },
    error: 'invalid_request',
    description: 'actor_token has already been used',
  },
  {
    name: 'actor assertion whose sub is not its issuer',
    params: async () => ({
      subject_token: await idpToken(),
      actor_token: await agentAssertion('orchestrator', { sub: 'payments-subagent' }),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    }),
    error: 'invalid_request',
    description: 'actor_token subject must equal its issuer',
  },
  {
    name: 'actor assertion for another audience',
    params: async () => ({
      subject_token: await idpToken(),
      actor_token: await agentAssertion('orchestrator', { aud: 'https://elsewhere.example' }),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    }),
    error: 'invalid_request',
    description: 'actor_token is not intended for this audience',
  },
  {
    name: 'expired actor assertion',
    params: async () => ({
      subject_token: await idpToken(),
      actor_token: await agentAssertion('orchestrator', { iat: now() - 600, exp: now() - 60 }),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    }),
    error: 'invalid_request',
    description: 'actor_token is expired',
  },
  {
    name: 'long-lived actor assertion',
    params: async () => ({
      subject_token: await idpToken(),
      actor_token: await agentAssertion('orchestrator', { exp: now() + 3600 }),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    }),
    error: 'invalid_request',
    description: 'actor_token expires too far in the future (at most 300 s)',
  },
  {
    name: 'actor assertion without jti',
    params: async () => ({
      subject_token: await idpToken(),
      actor_token: await agentAssertion('orchestrator', { jti: undefined }),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    }),
    error: 'invalid_request',
    description: 'actor_token lacks the "jti" claim',
  },
  {
    name: "actor assertion signed with another agent's key",
    params: async () => ({
      subject_token: await idpToken(),
      actor_token: await agentAssertion('orchestrator', {}, 'payments-subagent'),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    }),
    error: 'invalid_request',
    description: 'actor_token has an invalid signature',
  },
  {
    name: 'actor assertion from an unregistered agent',
    params: async () => ({
      subject_token: await idpToken(),
      actor_token: await agentAssertion('orchestrator', { iss: 'rogue-agent', sub: 'rogue-agent' }),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    }),
    error: 'invalid_request',
    description: 'actor_token is issued neither by Baton nor by a registered agent',
  },
  {
    name: 'delegated token used as actor token',
    params: async () => ({
      subject_token: await idpToken(),
      actor_token: await hop1(),
      actor_token_type: tokenTypes.accessToken,
      audience: 'payments',
    }),
    error: 'invalid_request',
    description: 'actor_token is not an agent token',
  },
  {
    name: 'may_act naming another actor',
    params: async () => ({
      subject_token: await idpToken({ may_act: { sub: 'payments-subagent' } }),
      ...(await orchestrator()),
    }),
    error: 'invalid_request',
    description: "actor is not permitted by the subject_token's may_act claim",
  },
  {
    name: 'actor from another tenant',
    params: async () => ({
      subject_token: await idpToken(),
      actor_token: await agentAssertion('globex-assistant'),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    }),
    headers: () => ({ authorization: basic('globex-platform') }),
    error: 'invalid_request',
    description: 'actor and subject belong to different tenants',
  },
  {
    name: 'client from another tenant',
    params: async () => ({ subject_token: await idpToken(), ...(await orchestrator()) }),
    headers: () => ({ authorization: basic('globex-platform') }),
    error: 'invalid_request',
    description: 'client and subject belong to different tenants',
  },
  {
    name: 'agent client presenting another agent',
    params: async () => ({
      subject_token: await idpToken(),
      actor_token: await agentAssertion('payments-subagent'),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await agentAssertion('orchestrator'),
    }),
    headers: () => ({}),
    error: 'invalid_request',
    description: 'client may not present agent "payments-subagent" as actor',
  },
  {
    name: 'scope widening beyond the user token',
    params: async () => ({
      subject_token: await idpToken(),
      ...(await orchestrator()),
      scope: 'payments:read admin:all',
    }),
    error: 'invalid_scope',
    description: 'scope "admin:all" exceeds the subject token\'s scope',
  },
  {
    name: 'scope widening on the second hop',
    params: async () => ({
      subject_token: await hop1(baton, 'payments:read'),
      subject_token_type: tokenTypes.accessToken,
      actor_token: await agentAssertion('payments-subagent'),
      actor_token_type: tokenTypes.jwt,
      scope: 'payments:transfer',
    }),
    error: 'invalid_scope',
    description: 'scope "payments:transfer" exceeds the subject token\'s scope',
  },
  {
    name: 'scope beyond what the agent may hold',
    params: async () => ({
      subject_token: await idpToken({ scope: 'calendar:read' }),
      actor_token: await agentAssertion('payments-subagent'),
      actor_token_type: tokenTypes.jwt,
      audience: 'calendar',
      scope: 'calendar:read',
    }),
    error: 'invalid_scope',
    description: 'scope "calendar:read" exceeds what agent "payments-subagent" may hold',
  },
  {
    name: 'scope the audience does not offer',
    params: async () => ({
      subject_token: await idpToken({ scope: 'openid payments:read' }),
      ...(await orchestrator()),
      scope: 'openid',
    }),
    error: 'invalid_scope',
    description: 'scope "openid" exceeds what the audience offers',
  },
  {
    name: 'audience widening on the second hop',
    params: async () => ({
      subject_token: await hop1(),
      subject_token_type: tokenTypes.accessToken,
      actor_token: await agentAssertion('payments-subagent'),
      actor_token_type: tokenTypes.jwt,
      audience: 'calendar',
    }),
    error: 'invalid_target',
    description: 'audience "https://calendar.example" is not within the subject token\'s audience',
  },
  {
    name: 'unknown audience',
    params: async () => ({ subject_token: await idpToken(), ...(await orchestrator()), audience: 'nowhere' }),
    error: 'invalid_target',
    description: 'audience "nowhere" is not a known resource server',
  },
  {
    name: "another tenant's audience",
    params: async () => ({ subject_token: await idpToken(), ...(await orchestrator()), audience: 'ledger' }),
    error: 'invalid_target',
    description: 'audience "ledger" is not a known resource server',
  },
  {
    name: 'unknown resource',
    params: async () => ({
      subject_token: await idpToken(),
      ...(await orchestrator()),
      audience: undefined,
      resource: 'https://unknown.example/api',
    }),
    error: 'invalid_target',
    description: 'resource "https://unknown.example/api" is not a known resource server',
  },
  {
    name: 'no audience for an upstream token',
    params: async () => ({ subject_token: await idpToken(), ...(await orchestrator()), audience: undefined }),
    error: 'invalid_target',
    description: 'audience or resource is required',
  },
  {
    name: 'chain deeper than the cap',
    target: () => capped,
    params: async () => ({
      subject_token: await hop1(capped),
      subject_token_type: tokenTypes.accessToken,
      actor_token: await mintAgentAssertion('payments-subagent', capped.issuer),
      actor_token_type: tokenTypes.jwt,
    }),
    error: 'invalid_request',
    description: 'the delegation chain may hold at most 1 actor',
  },
  {
    name: 'shortening the chain by acting as an earlier actor',
    params: async () => ({
      subject_token: await hop2(),
      subject_token_type: tokenTypes.accessToken,
      actor_token: await agentAssertion('orchestrator'),
      actor_token_type: tokenTypes.jwt,
    }),
    error: 'invalid_request',
    description: 'actor already appears earlier in the delegation chain',
  },
  {
    name: 'act nested deeper than the cap',
    params: async () => ({
      subject_token: await idpToken({
        act: { sub: 'a', act: { sub: 'b', act: { sub: 'c', act: { sub: 'd', act: { sub: 'e' } } } } },
      }),
      ...(await orchestrator()),
    }),
    error: 'invalid_request',
    description: 'subject_token has an act claim nested deeper than 4',
  },
  {
    name: 'malformed act claim',
    params: async () => ({ subject_token: await idpToken({ act: 'orchestrator' }), ...(await orchestrator()) }),
    error: 'invalid_request',
    description: 'subject_token has a malformed act claim',
  },
  {
    name: 'unsupported subject_token_type',
    params: async () => ({
      subject_token: await idpToken(),
      subject_token_type: 'urn:ietf:params:oauth:token-type:saml2',
      ...(await orchestrator()),
    }),
    error: 'invalid_request',
    description: 'subject_token_type "urn:ietf:params:oauth:token-type:saml2" is not supported',
  },
  {
    name: 'unsupported actor_token_type',
    params: async () => ({
      subject_token: await idpToken(),
      ...(await orchestrator()),
      actor_token_type: tokenTypes.idToken,
    }),
    error: 'invalid_request',
    description: 'actor_token_type "urn:ietf:params:oauth:token-type:id_token" is not supported',
  },
  {
    name: 'unsupported requested_token_type',
    params: async () => ({
      subject_token: await idpToken(),
      ...(await orchestrator()),
      requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token',
    }),
    error: 'invalid_request',
    description: 'requested_token_type "urn:ietf:params:oauth:token-type:refresh_token" is not supported',
  },
  {
    name: 'Baton token presented as an id_token',
    params: async () => ({
      subject_token: await hop1(),
      subject_token_type: tokenTypes.idToken,
      ...(await orchestrator()),
    }),
    error: 'invalid_request',
    description: 'subject_token_type does not match the subject_token',
  },
  {
    name: 'actor_token without its type',
    params: async () => ({ subject_token: await idpToken(), ...(await orchestrator()), actor_token_type: undefined }),
    error: 'invalid_request',
    description: 'actor_token_type is required with actor_token',
  },
  {
    name: 'actor_token_type without a token',
    params: async () => ({ subject_token: await idpToken(), ...(await orchestrator()), actor_token: undefined }),
    error: 'invalid_request',
    description: 'actor_token_type is given without actor_token',
  },
  {
    name: 'no actor for a client that is not an agent',
    params: async () => ({ subject_token: await idpToken(), audience: 'payments' }),
    error: 'invalid_request',
    description: 'actor_token is required when the client is not a registered agent',
  },
  {
    name: 'missing subject_token',
    params: async () => ({ ...(await orchestrator()) }),
    error: 'invalid_request',
    description: 'subject_token is required',
  },
  {
    name: 'authorization_details that is not JSON',
    params: async () => ({ subject_token: await idpToken(), ...(await orchestrator()), authorization_details: '[{' }),
    error: 'invalid_authorization_details',
    description: 'authorization_details is not valid JSON',
  },
  {
    name: 'authorization_details that is not an array',
    params: async () => ({
      subject_token: await idpToken(),
      ...(await orchestrator()),
      authorization_details: '{"type":"x"}',
    }),
    error: 'invalid_authorization_details',
    description: 'authorization_details must be a JSON array',
  },
  {
    name: 'authorization_details entry without type',
    params: async () => ({
      subject_token: await idpToken(),
      ...(await orchestrator()),
      authorization_details: '[{"amount":1}]',
    }),
    error: 'invalid_authorization_details',
    description: 'authorization_details[0] lacks a string "type"',
  },
  {
    name: 'too many authorization_details entries',
    params: async () => ({
      subject_token: await idpToken(),
      ...(await orchestrator()),
      authorization_details: JSON.stringify(Array.from({ length: 17 }, () => ({ type: 'x' }))),
    }),
    error: 'invalid_authorization_details',
    description: 'authorization_details has more than 16 entries',
  },
  {
    name: 'authorization_details the subject does not hold',
    params: async () => ({
      subject_token: await idpToken(),
      ...(await orchestrator()),
      authorization_details:
        '[{"type":"payment_initiation","actions":["initiate"],"instructedAmount":{"amount":"100.00","currency":"EUR"}}]',
    }),
    error: 'invalid_authorization_details',
    description: 'authorization_details[0] is not covered: the subject token holds no payment_initiation entry',
  },
];

describe('token exchange refusals', () => {
  it.each(cases)('$name', async (c) => {
    const target = c.target?.() ?? baton;
    const result = await exchange(
      await c.params(),
      target,
      c.headers?.() ?? { authorization: basic('agent-platform') },
    );
    expect({ status: result.status, body: result.body }).toEqual({
      status: c.status ?? 400,
      body: { error: c.error, error_description: c.description },
    });
    expect(result.headers.get('cache-control')).toBe('no-store');
  });

  it('carries authorization_details down the chain and refuses to drop them', async () => {
    const grant = [
      { type: 'payment_initiation', actions: ['initiate'], instructedAmount: { amount: '100.00', currency: 'EUR' } },
    ];
    const user = await idpToken({ authorization_details: grant });
    const first = await exchange({ subject_token: user, ...(await orchestrator()), scope: 'payments:transfer' });
    expect(first.status).toBe(200);
    expect(first.body.authorization_details).toEqual(grant);
    expect(decodeJwt(first.body.access_token as string).authorization_details).toEqual(grant);
    const dropped = await exchange({
      subject_token: first.body.access_token as string,
      subject_token_type: tokenTypes.accessToken,
      actor_token: await agentAssertion('payments-subagent'),
      actor_token_type: tokenTypes.jwt,
      authorization_details: '[]',
    });
    expect(dropped.body).toEqual({
      error: 'invalid_authorization_details',
      error_description: 'authorization_details may not be dropped from the subject token that carries them',
    });
  });
});
