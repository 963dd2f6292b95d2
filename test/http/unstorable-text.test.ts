import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { basic, demoChain, grants, postJson, postToken, tokenTypes, type PostResult } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { agentAssertion, upstreamToken } from '../support/forge.js';

// Text PostgreSQL or Cedar cannot hold (a NUL; a UTF-16 surrogate that is not half of a pair),
// anywhere a caller can put it, is refused with a 400 naming where it was; that such a request
// never fails the requests it shares an audit batch with is checked on the real storage (fuzz.test.ts).
let baton: MemoryBaton;
let certification: MemoryBaton;
beforeAll(async () => {
  [baton, certification] = await Promise.all([
    memoryBaton({ BATON_RATE_LIMIT: '0' }),
    memoryBaton({ BATON_POLICY_DIR: 'policies/examples/authzen-certification' }),
  ]);
});
afterAll(async () => {
  await Promise.all([baton?.close(), certification?.close()]);
});

const NUL = '\u0000';
const LONE = '\uD800';
const texts = [
  ['a NUL', `x${NUL}y`, 'contains a NUL character'],
  ['an unpaired surrogate', `x${LONE}y`, 'contains an unpaired UTF-16 surrogate'],
] as const;
const asPayments = { authorization: basic('payments') };
const invalid = (description: string) => ({
  status: 400,
  body: { error: 'invalid_request', error_description: description },
});
const outcome = (r: PostResult) => ({ status: r.status, body: r.body });

async function postForm(path: string, body: string, headers: Record<string, string>): Promise<PostResult> {
  const response = await baton.fetch(`${baton.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body,
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>,
  };
}

async function bearer(client: string, scope: string): Promise<Record<string, string>> {
  const token = await postToken(baton, { grant_type: 'client_credentials', scope }, { authorization: basic(client) });
  return { authorization: `Bearer ${token.body.access_token as string}` };
}

describe('form parameters', () => {
  // A form can carry a NUL (%00); percent-decoding never yields an unpaired surrogate.
  it.each([
    'grant_type',
    'scope',
    'audience',
    'resource',
    'subject_token',
    'subject_token_type',
    'actor_token',
    'actor_token_type',
    'requested_token_type',
    'authorization_details',
    'code',
    'redirect_uri',
    'code_verifier',
    'refresh_token',
    'client_id',
    'client_assertion',
    'client_assertion_type',
  ])('token endpoint: %s with a NUL', async (name) => {
    const result = await postToken(baton, { grant_type: grants.exchange, [name]: `x${NUL}y` });
    expect(outcome(result)).toEqual(invalid(`${name} contains a NUL character`));
  });

  it.each([
    [
      'a parameter name',
      '/oauth2/token',
      `grant_type=client_credentials&sco%00pe=x`,
      { authorization: basic('agent-platform') },
      'a parameter name contains a NUL character',
    ],
    [
      'revocation: token',
      '/oauth2/revoke',
      'token=a%00b',
      { authorization: basic('agent-platform') },
      'token contains a NUL character',
    ],
    [
      'revocation: token_type_hint',
      '/oauth2/revoke',
      'token=ab&token_type_hint=%00',
      { authorization: basic('agent-platform') },
      'token_type_hint contains a NUL character',
    ],
    ['introspection: token', '/oauth2/introspect', 'token=a%00b', asPayments, 'token contains a NUL character'],
  ])('%s with a NUL', async (_name, path, body, headers, description) => {
    expect(outcome(await postForm(path, body, headers))).toEqual(invalid(description));
  });

  it('refuses a Basic client id with a NUL as malformed credentials', async () => {
    const result = await postToken(
      baton,
      { grant_type: 'client_credentials' },
      { authorization: `Basic ${btoa('agent-platform%00:secret')}` },
    );
    expect(outcome(result)).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'malformed Basic authorization header' },
    });
  });

  it('shows the browser an error page for a query with a NUL, never a redirect', async () => {
    const response = await baton.fetch(
      `${baton.url}/oauth2/authorize?response_type=code&client_id=agent-console&redirect_uri=${encodeURIComponent('http://localhost:3000/console/callback')}&state=a%00b`,
      { redirect: 'manual' },
    );
    expect({
      status: response.status,
      type: response.headers.get('content-type'),
      location: response.headers.get('location'),
    }).toEqual({ status: 400, type: 'text/html; charset=UTF-8', location: null });
    expect(await response.text()).toContain('state contains a NUL character');
  });
});

describe('claims of validly signed tokens', () => {
  const exchange = async (
    params: Record<string, string>,
    headers: Record<string, string> = { authorization: basic('agent-platform') },
  ) =>
    postToken(
      baton,
      {
        grant_type: grants.exchange,
        subject_token_type: tokenTypes.jwt,
        audience: 'payments',
        actor_token: await mintAgentAssertion('orchestrator', baton.issuer),
        actor_token_type: tokenTypes.jwt,
        ...params,
      },
      headers,
    );

  describe.each(texts)('%s', (_kind, text, problem) => {
    it.each([
      ['sub', { sub: text }, 'sub'],
      ['jti', { jti: text }, 'jti'],
      ['scope', { scope: `payments:read ${text}` }, 'scope'],
      ['act.sub', { act: { sub: text } }, 'act.sub'],
      ['a nested act.sub', { act: { sub: 'orchestrator', act: { sub: text } } }, 'act.act.sub'],
      ['may_act.sub', { may_act: { sub: text } }, 'may_act.sub'],
      [
        'an authorization_details member',
        { authorization_details: [{ type: 'payment_initiation', creditorName: text }] },
        'authorization_details.0.creditorName',
      ],
      ['a claim Baton does not read', { name: text }, 'name'],
    ])('upstream subject token: %s', async (_name, claims, path) => {
      const result = await exchange({ subject_token: await upstreamToken(baton.issuer, claims) });
      expect(outcome(result)).toEqual(invalid(`subject_token has an invalid "${path}" claim: it ${problem}`));
    });

    it('upstream subject token: a member name', async () => {
      const result = await exchange({
        subject_token: await upstreamToken(baton.issuer, { profile: { [`na${text}me`]: 1 } }),
      });
      expect(outcome(result)).toEqual(
        invalid(
          `subject_token has an invalid "profile" claim: it has a member name with ${problem.slice('contains '.length)}`,
        ),
      );
    });

    it("actor assertion's jti", async () => {
      const result = await exchange({
        subject_token: await mintUserToken('alice', { audience: baton.issuer }),
        actor_token: await agentAssertion('orchestrator', baton.issuer, { jti: text }),
      });
      expect(outcome(result)).toEqual(invalid(`actor_token has an invalid "jti" claim: it ${problem}`));
    });

    it("client assertion's jti", async () => {
      const result = await postToken(
        baton,
        {
          grant_type: 'client_credentials',
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await agentAssertion('orchestrator', baton.issuer, { jti: text }),
        },
        {},
      );
      expect(outcome(result)).toEqual({
        status: 401,
        body: {
          error: 'invalid_client',
          error_description: `client_assertion has an invalid "jti" claim: it ${problem}`,
        },
      });
    });

    it("client assertion's sub, before it is looked up", async () => {
      const result = await postToken(
        baton,
        {
          grant_type: 'client_credentials',
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await agentAssertion('orchestrator', baton.issuer, { iss: text, sub: text }),
        },
        {},
      );
      expect(outcome(result)).toEqual({
        status: 401,
        body: {
          error: 'invalid_client',
          error_description: `client_assertion has an invalid "sub" claim: it ${problem}`,
        },
      });
    });

    it("a Baton token's jti, at /authorize, introspection and exchange", async () => {
      const now = Math.floor(Date.now() / 1000);
      const forged = await baton.signAsBaton({
        iss: baton.issuer,
        sub: 'alice',
        aud: 'https://payments.example',
        iat: now,
        exp: now + 60,
        jti: text,
        tenant: 'acme',
        client_id: 'agent-platform',
        scope: 'payments:read',
      });
      const decision = await postJson(
        baton,
        '/authorize',
        {
          token: forged,
          action: 'payments:read',
          resource: { type: 'Account', id: 'acct-1' },
          action_id: 'forged-jti',
        },
        asPayments,
      );
      expect(outcome(decision)).toEqual({
        status: 200,
        body: { decision: 'deny', action_id: 'forged-jti', reasons: ['baton:invalid-token'] },
      });
      const introspection = await postForm(
        '/oauth2/introspect',
        new URLSearchParams({ token: forged }).toString(),
        asPayments,
      );
      expect(outcome(introspection)).toEqual({ status: 200, body: { active: false } });
      const exchanged = await exchange({
        subject_token: forged,
        subject_token_type: tokenTypes.accessToken,
        actor_token: await mintAgentAssertion('payments-subagent', baton.issuer),
      });
      expect(outcome(exchanged)).toEqual(invalid(`subject_token has an invalid "jti" claim: it ${problem}`));
    });
  });
});

describe('JSON bodies', () => {
  let token: string;
  beforeAll(async () => {
    [, token] = await demoChain(baton);
  });
  const authorizeBody = () => ({
    token,
    action: 'payments:read',
    resource: { type: 'Account', id: 'acct-1', properties: { owner: 'alice' } },
    context: { note: 'ok' },
  });

  describe.each(texts)('%s', (_kind, text, problem) => {
    it.each([
      ['token', (b: ReturnType<typeof authorizeBody>) => ({ ...b, token: `${b.token}${text}` }), 'token'],
      ['action', (b: ReturnType<typeof authorizeBody>) => ({ ...b, action: text }), 'action'],
      [
        'resource.type',
        (b: ReturnType<typeof authorizeBody>) => ({ ...b, resource: { ...b.resource, type: text } }),
        'resource.type',
      ],
      [
        'resource.id',
        (b: ReturnType<typeof authorizeBody>) => ({ ...b, resource: { ...b.resource, id: text } }),
        'resource.id',
      ],
      [
        'a resource property',
        (b: ReturnType<typeof authorizeBody>) => ({
          ...b,
          resource: { ...b.resource, properties: { tags: ['a', { deep: text }] } },
        }),
        'resource.properties.tags.1.deep',
      ],
      ['a context value', (b: ReturnType<typeof authorizeBody>) => ({ ...b, context: { note: text } }), 'context.note'],
    ])('/authorize: %s', async (_name, change, path) => {
      const result = await postJson(baton, '/authorize', change(authorizeBody()), asPayments);
      expect(outcome(result)).toEqual(invalid(`${path} ${problem}`));
    });

    it('/authorize: a context member name', async () => {
      const result = await postJson(
        baton,
        '/authorize',
        { ...authorizeBody(), context: { [`a${text}`]: 1 } },
        asPayments,
      );
      expect(outcome(result)).toEqual(invalid(`context has a member name with ${problem.slice('contains '.length)}`));
    });

    it('/authorize: action_id', async () => {
      const result = await postJson(baton, '/authorize', { ...authorizeBody(), action_id: text }, asPayments);
      expect(outcome(result)).toEqual(invalid('action_id must be 1–128 visible ASCII characters'));
    });

    const evaluation = {
      subject: { type: 'user', id: 'alice', properties: { role: 'admin' } },
      action: { name: 'read', properties: { soft: true } },
      resource: { type: 'record', id: 'record-1', properties: { status: 'archived' } },
      context: { time: 'now' },
    };
    it.each([
      ['subject.type', { ...evaluation, subject: { ...evaluation.subject, type: text } }],
      ['subject.id', { ...evaluation, subject: { ...evaluation.subject, id: text } }],
      ['subject.properties.role', { ...evaluation, subject: { ...evaluation.subject, properties: { role: text } } }],
      ['action.name', { ...evaluation, action: { name: text } }],
      ['action.properties.soft', { ...evaluation, action: { name: 'read', properties: { soft: text } } }],
      ['resource.id', { ...evaluation, resource: { ...evaluation.resource, id: text } }],
      [
        'resource.properties.status.0',
        { ...evaluation, resource: { ...evaluation.resource, properties: { status: [text] } } },
      ],
      ['context.time', { ...evaluation, context: { time: text } }],
    ])('AuthZEN evaluation: %s', async (path, body) => {
      const result = await postJson(certification, '/access/v1/evaluation', body, asPayments);
      expect(outcome(result)).toEqual(invalid(`${path}: ${problem}`));
    });

    it('AuthZEN evaluations: the bad item gets its own error, the others are answered', async () => {
      const result = await postJson(
        certification,
        '/access/v1/evaluations',
        {
          subject: { type: 'user', id: 'alice' },
          action: { name: 'read' },
          evaluations: [
            { resource: { type: 'record', id: 'record-1' } },
            { resource: { type: 'record', id: text } },
            {
              action: { name: 'write' },
              resource: { type: 'record', id: 'record-2', properties: { status: 'archived' } },
            },
            {
              subject: { type: 'user', id: 'bob', properties: { note: text } },
              resource: { type: 'record', id: 'record-1' },
            },
          ],
        },
        asPayments,
      );
      expect(outcome(result)).toEqual({
        status: 200,
        body: {
          evaluations: [
            { decision: true },
            { decision: false, context: { error: { status: 400, message: `resource.id: ${problem}` } } },
            { decision: false },
            { decision: false, context: { error: { status: 400, message: `subject.properties.note: ${problem}` } } },
          ],
        },
      });
    });

    it.each([
      ['user', { user: text }],
      ['agent', { agent: text }],
    ])('/admin/revoke: %s', async (name, body) => {
      const result = await postJson(baton, '/admin/revoke', body, await bearer('ops-console', 'baton:admin'));
      expect(outcome(result)).toEqual(invalid(`${name} ${problem}`));
    });
  });
});

describe('path parameters', () => {
  it.each([
    ['a NUL', 'a%00b'],
    ['a space', 'a%20b'],
    ['more than 128 characters', 'a'.repeat(129)],
  ])('GET /audit/actions/{id} with %s', async (_name, id) => {
    const response = await baton.fetch(`${baton.url}/audit/actions/${id}`, {
      headers: await bearer('ops-console', 'baton:audit'),
    });
    expect({ status: response.status, body: await response.json() }).toEqual(
      invalid('action_id must be 1–128 visible ASCII characters'),
    );
  });
});
