import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { basic, demoChain, grants, postJson, postToken, tokenTypes } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { agentAssertion, upstreamToken } from '../support/forge.js';

// Every parameter Baton looks something up by, given a name that is a member of every JavaScript
// object, is an ordinary unknown value: refused (or ignored) as any unknown name would be.
let baton: MemoryBaton;
let certification: MemoryBaton;
/** The payments sub-agent's token of the demo chain, and an operator's and an auditor's credentials. */
let token: string;
let admin: Record<string, string>;
let auditor: Record<string, string>;
beforeAll(async () => {
  [baton, certification] = await Promise.all([
    memoryBaton({ BATON_RATE_LIMIT: '0' }),
    memoryBaton({ BATON_POLICY_DIR: 'policies/examples/authzen-certification' }),
  ]);
  [[, token], admin, auditor] = await Promise.all([demoChain(baton), bearer('baton:admin'), bearer('baton:audit')]);
});
afterAll(async () => {
  await Promise.all([baton?.close(), certification?.close()]);
});

const names = [
  'constructor',
  'toString',
  '__proto__',
  'hasOwnProperty',
  'valueOf',
  'isPrototypeOf',
  'toLocaleString',
  '__defineGetter__',
  'prototype',
];
type Answer = { status: number; body: unknown };
const oauth = (status: number, error: string, description: string): Answer => ({
  status,
  body: { error, error_description: description },
});
const asPayments = { authorization: basic('payments') };

async function bearer(scope: string): Promise<Record<string, string>> {
  const token = await postToken(
    baton,
    { grant_type: 'client_credentials', scope },
    { authorization: basic('ops-console') },
  );
  return { authorization: `Bearer ${token.body.access_token as string}` };
}

const exchange = async (params: Record<string, string>) =>
  postToken(baton, {
    grant_type: grants.exchange,
    subject_token: await mintUserToken('alice', { audience: baton.issuer }),
    subject_token_type: tokenTypes.jwt,
    actor_token: await mintAgentAssertion('orchestrator', baton.issuer),
    actor_token_type: tokenTypes.jwt,
    audience: 'payments',
    ...params,
  });

/** Each parameter used as a lookup key: how to send the name in it, and the answer it gets. */
const parameters: [string, (name: string) => Promise<Answer>, (name: string) => Answer][] = [
  [
    'grant_type',
    (n) => postToken(baton, { grant_type: n }),
    (n) => oauth(400, 'unsupported_grant_type', `grant_type "${n}" is not supported`),
  ],
  [
    'subject_token_type',
    (n) => exchange({ subject_token_type: n }),
    (n) => oauth(400, 'invalid_request', `subject_token_type "${n}" is not supported`),
  ],
  [
    'actor_token_type',
    (n) => exchange({ actor_token_type: n }),
    (n) => oauth(400, 'invalid_request', `actor_token_type "${n}" is not supported`),
  ],
  [
    'requested_token_type',
    (n) => exchange({ requested_token_type: n }),
    (n) => oauth(400, 'invalid_request', `requested_token_type "${n}" is not supported`),
  ],
  [
    'audience',
    (n) => exchange({ audience: n }),
    (n) => oauth(400, 'invalid_target', `audience "${n}" is not a known resource server`),
  ],
  [
    'scope',
    (n) => postToken(baton, { grant_type: 'client_credentials', scope: n }),
    (n) => oauth(400, 'invalid_scope', `scope "${n}" exceeds what this client may request`),
  ],
  [
    'an authorization_details type',
    (n) => postToken(baton, { grant_type: 'client_credentials', authorization_details: JSON.stringify([{ type: n }]) }),
    (n) => oauth(400, 'invalid_authorization_details', `authorization_details[0] has unknown type "${n}"`),
  ],
  [
    'a public client_id',
    (n) =>
      postToken(
        baton,
        { grant_type: 'authorization_code', code: 'c', redirect_uri: 'http://localhost/cb', client_id: n },
        {},
      ),
    () => oauth(401, 'invalid_client', 'client authentication is required'),
  ],
  [
    'a Basic client id',
    (n) => postToken(baton, { grant_type: 'client_credentials' }, { authorization: basic(n, 'secret') }),
    () => oauth(401, 'invalid_client', 'client authentication failed'),
  ],
  [
    "a client assertion's issuer",
    async (n) =>
      postToken(
        baton,
        {
          grant_type: 'client_credentials',
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await agentAssertion('orchestrator', baton.issuer, { iss: n, sub: n }),
        },
        {},
      ),
    () => oauth(401, 'invalid_client', 'client authentication failed'),
  ],
  [
    "an actor assertion's issuer",
    async (n) => exchange({ actor_token: await agentAssertion('orchestrator', baton.issuer, { iss: n, sub: n }) }),
    () => oauth(400, 'invalid_request', 'actor_token is issued neither by Baton nor by a registered agent'),
  ],
  [
    "a subject token's issuer",
    async (n) => exchange({ subject_token: await upstreamToken(baton.issuer, { iss: n }) }),
    () => oauth(400, 'invalid_request', 'subject_token is from an issuer that is not trusted'),
  ],
  [
    'an authorization code',
    (n) =>
      postToken(baton, {
        grant_type: 'authorization_code',
        code: n,
        redirect_uri: 'http://localhost:3000/callback',
        code_verifier: 'v'.repeat(43),
      }),
    () => oauth(400, 'invalid_grant', 'authorization code is invalid'),
  ],
  [
    'a refresh token',
    (n) => postToken(baton, { grant_type: 'refresh_token', refresh_token: n }),
    () => oauth(400, 'invalid_grant', 'refresh token is invalid or expired'),
  ],
  [
    'a parameter name',
    (n) =>
      postToken(baton, {
        grant_type: 'client_credentials',
        audience: 'payments',
        scope: 'payments:read',
        [n]: 'x',
      }).then((r) => ({ status: r.status, body: r.body.token_type })),
    () => ({ status: 200, body: 'Bearer' }),
  ],
  [
    "a parameter name, at revocation (the token's type hint as well)",
    (n) =>
      baton
        .fetch(`${baton.url}/oauth2/revoke`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('agent-platform') },
          body: `token=unknown&token_type_hint=${n}&${n}=x`,
        })
        .then(async (r) => ({ status: r.status, body: await r.text() })),
    () => ({ status: 200, body: '' }),
  ],
  [
    '/authorize action',
    (n) =>
      postJson(
        baton,
        '/authorize',
        { token, action: n, resource: { type: 'Account', id: 'acct-1' }, action_id: 'proto' },
        asPayments,
      ),
    () => ({ status: 200, body: { decision: 'deny', action_id: 'proto', reasons: ['baton:unknown-action'] } }),
  ],
  [
    '/authorize resource type',
    (n) =>
      postJson(
        baton,
        '/authorize',
        { token, action: 'payments:read', resource: { type: n, id: 'acct-1' }, action_id: 'proto' },
        asPayments,
      ),
    () => ({ status: 200, body: { decision: 'deny', action_id: 'proto', reasons: [] } }),
  ],
  [
    'AuthZEN action name',
    (n) =>
      postJson(
        certification,
        '/access/v1/evaluation',
        { subject: { type: 'user', id: 'alice' }, action: { name: n }, resource: { type: 'record', id: 'record-1' } },
        asPayments,
      ),
    () => ({ status: 200, body: { decision: false } }),
  ],
  [
    'AuthZEN subject type',
    (n) =>
      postJson(
        certification,
        '/access/v1/evaluation',
        { subject: { type: n, id: 'alice' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } },
        asPayments,
      ),
    () => ({ status: 200, body: { decision: false } }),
  ],
  [
    'a kill switch agent',
    (n) => postJson(baton, '/admin/revoke', { agent: n }, admin),
    () => ({ status: 200, body: { revoked: 0 } }),
  ],
  [
    'an action id to revoke by',
    (n) => postJson(baton, '/admin/revoke', { action_id: n }, admin),
    () => oauth(404, 'not_found', 'no such action in your tenant'),
  ],
  [
    'an audit action id',
    (n) =>
      baton
        .fetch(`${baton.url}/audit/actions/${n}`, { headers: auditor })
        .then(async (r) => ({ status: r.status, body: await r.json() })),
    () => oauth(404, 'not_found', 'no such action in your tenant'),
  ],
  [
    'requested_actor',
    (n) =>
      baton
        .fetch(
          `${baton.url}/oauth2/authorize?response_type=code&client_id=agent-console&redirect_uri=${encodeURIComponent('http://localhost:3000/console/callback')}&scope=payments:read&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256&requested_actor=${n}`,
          { redirect: 'manual' },
        )
        .then((r) => ({
          status: r.status,
          body: new URL(r.headers.get('location') ?? 'http://x/').searchParams.get('error_description'),
        })),
    () => ({ status: 302, body: 'requested_actor is not a registered agent of this tenant' }),
  ],
];

describe.each(parameters)('%s', (_parameter, send, answer) => {
  it.each(names)('%s', async (name) => {
    const result = await send(name);
    expect({ status: result.status, body: result.body }).toEqual(answer(name));
  });
});

describe('JSON members named __proto__', () => {
  it('are ordinary members a request schema leaves out', async () => {
    const body = `{"token":${JSON.stringify(token)},"action":"payments:transfer","resource":{"type":"Account","id":"acct-1","properties":{"__proto__":{"currency":"USD"}}},"context":{"__proto__":{"amount":5},"amount":5,"currency":"EUR"},"action_id":"proto-json"}`;
    expect((await postJson(baton, '/authorize', body, asPayments)).body).toEqual({
      decision: 'allow',
      action_id: 'proto-json',
      reasons: ['transfer-up-to-100'],
    });
  });

  it('are not a kill switch target', async () => {
    const result = await postJson(baton, '/admin/revoke', '{"__proto__":{"agent":"orchestrator"}}', admin);
    expect({ status: result.status, body: result.body }).toEqual(
      oauth(
        400,
        'invalid_request',
        'body must be {"agent": "<agent id>"}, {"user": "<user id>"} or {"action_id": "<action id>"}',
      ),
    );
  });
});
