import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { basic, bearerOf, exchangeHop, postToken, tokenTypes, type PostResult } from '../support/baton.js';
import { isActive } from '../support/consent.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

// The suspension API: an operator suspends an agent, client or user of its tenant (stored in the
// registry, in force at once), which revokes what the principal holds; resuming restores nothing.

let baton: MemoryBaton;
let admin: Record<string, string>;
beforeAll(async () => {
  baton = await memoryBaton();
});
beforeEach(async () => {
  // Every test starts with no suspension in force.
  await baton.registryStore.edit('test', (document) => ({ ...document, suspensions: [] }));
  admin = await bearerOf(baton, 'ops-console', 'baton:admin');
});

const send = async (method: string, path: string, body?: unknown, headers = admin): Promise<PostResult> => {
  const response = await baton.fetch(`${baton.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? {} : JSON.parse(text) };
};
const suspend = (body: unknown, headers = admin) => send('POST', '/admin/suspensions', body, headers);
const resume = (kind: string, id: string) =>
  send('DELETE', `/admin/suspensions/${encodeURIComponent(kind)}/${encodeURIComponent(id)}`);
const outcome = (result: PostResult) => ({ status: result.status, body: result.body });
const since = () => expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) as unknown as string;

const alice = () => mintUserToken('alice', { audience: baton.issuer });
const hop = async () => {
  const result = await exchangeHop(baton, await alice(), tokenTypes.jwt, 'orchestrator', {
    audience: 'payments',
    scope: 'payments:read',
  });
  return { status: result.status, body: result.body };
};

/** What the entries after `before` say: type, decision, reason, client, user, actor chain. */
const audited = (before: number) =>
  baton.auditEntries(before).map((e) => [e.type, e.decision, e.reason, e.client, e.user, e.actor_chain]);

describe('POST /admin/suspensions', () => {
  it('suspends an agent: its tokens are revoked, new grants refused, and both are audited', async () => {
    const held = [(await hop()).body.access_token as string, (await hop()).body.access_token as string];
    const before = baton.storage.state.head.seq;
    const result = await suspend({ kind: 'agent', id: 'orchestrator', reason: 'key leaked' });
    expect(outcome(result)).toEqual({
      status: 201,
      body: { kind: 'agent', id: 'orchestrator', reason: 'key leaked', since: since(), revoked: 2 },
    });
    expect(result.headers.get('cache-control')).toBe('no-store');
    expect(audited(before)).toEqual([
      [
        'token.revocation',
        'applied',
        'revoked everything agent orchestrator holds or appears in: 2 tokens',
        'ops-console',
        null,
        ['orchestrator'],
      ],
      [
        'registry.suspend',
        'applied',
        'suspended agent orchestrator (key leaked); revoked 2 tokens',
        'ops-console',
        null,
        ['orchestrator'],
      ],
    ]);
    for (const token of held) expect(await isActive(baton, token)).toBe(false);
    expect(await hop()).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'agent orchestrator is suspended' },
    });
    expect(outcome(await send('GET', '/admin/suspensions'))).toEqual({
      status: 200,
      body: { items: [{ kind: 'agent', id: 'orchestrator', reason: 'key leaked', since: result.body.since }] },
    });
  });

  it('answers a second suspension with the first one, revoking nothing more', async () => {
    const first = await suspend({ kind: 'user', id: 'alice', reason: 'left the company' });
    expect(first.status).toBe(201);
    const again = await suspend({ kind: 'user', id: 'alice', reason: 'another reason' });
    expect(outcome(again)).toEqual({
      status: 200,
      body: { kind: 'user', id: 'alice', reason: 'left the company', since: first.body.since, revoked: 0 },
    });
  });

  it('suspends a user of an identity provider by sub, even one Baton never saw', async () => {
    const result = await suspend({ kind: 'user', id: 'team/x@idp.example' });
    expect(outcome(result)).toEqual({
      status: 201,
      body: { kind: 'user', id: 'team/x@idp.example', since: since(), revoked: 0 },
    });
    expect((await resume('user', 'team/x@idp.example')).status).toBe(204);
  });

  it('suspends a client: every token issued to it is revoked and it cannot authenticate', async () => {
    const token = (await hop()).body.access_token as string;
    const result = await suspend({ kind: 'client', id: 'agent-platform' });
    expect(outcome(result)).toEqual({
      status: 201,
      body: { kind: 'client', id: 'agent-platform', since: since(), revoked: 1 },
    });
    expect(await isActive(baton, token)).toBe(false);
    expect(await hop()).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'client agent-platform is suspended' },
    });
  });

  it('is closed to a caller without the admin scope, in another tenant too', async () => {
    await suspend({ kind: 'agent', id: 'orchestrator' });
    // globex-audit has no baton:admin: the API is closed to it.
    const globex = await bearerOf(baton, 'globex-audit', 'baton:audit');
    expect(outcome(await send('GET', '/admin/suspensions', undefined, globex))).toEqual({
      status: 403,
      body: { error: 'access_denied', error_description: 'the caller lacks the baton:admin scope' },
    });
  });

  it.each<[string, unknown, number, string, string]>([
    ['an unknown agent', { kind: 'agent', id: 'ghost' }, 404, 'not_found', 'no agent "ghost"'],
    [
      'the operator itself',
      { kind: 'client', id: 'ops-console' },
      400,
      'invalid_request',
      'an operator may not suspend itself',
    ],
    [
      "another tenant's agent",
      { kind: 'agent', id: 'globex-assistant' },
      404,
      'not_found',
      'no agent "globex-assistant"',
    ],
    [
      'an agent named as a client',
      { kind: 'client', id: 'orchestrator' },
      404,
      'not_found',
      'no client "orchestrator"',
    ],
    ['a resource server', { kind: 'client', id: 'payments' }, 404, 'not_found', 'no client "payments"'],
    [
      'an unknown kind',
      { kind: 'resource_server', id: 'payments' },
      400,
      'invalid_request',
      'kind Invalid option: expected one of "agent"|"client"|"user"',
    ],
    ['no id', { kind: 'agent' }, 400, 'invalid_request', 'id Invalid input: expected string, received undefined'],
    [
      'an empty id',
      { kind: 'user', id: '' },
      400,
      'invalid_request',
      'id Too small: expected string to have >=1 characters',
    ],
    [
      'an id as an array',
      { kind: 'user', id: ['alice'] },
      400,
      'invalid_request',
      'id Invalid input: expected string, received array',
    ],
    [
      'an id as a number',
      { kind: 'user', id: 1e3 },
      400,
      'invalid_request',
      'id Invalid input: expected string, received number',
    ],
    ['a NUL in the id', { kind: 'user', id: 'ali\u0000ce' }, 400, 'invalid_request', 'id contains a NUL character'],
    [
      'a lone surrogate in the reason',
      { kind: 'user', id: 'alice', reason: 'x\uD800' },
      400,
      'invalid_request',
      'reason contains an unpaired UTF-16 surrogate',
    ],
    [
      'a reason too long',
      { kind: 'user', id: 'alice', reason: 'x'.repeat(501) },
      400,
      'invalid_request',
      'reason Too big: expected string to have <=500 characters',
    ],
    [
      'an unknown member',
      { kind: 'user', id: 'alice', until: 'tomorrow' },
      400,
      'invalid_request',
      'body Unrecognized key: "until"',
    ],
    [
      'a __proto__ member',
      JSON.parse('{"kind":"user","id":"alice","__proto__":{"x":1}}'),
      400,
      'invalid_request',
      'body Unrecognized key: "__proto__"',
    ],
  ])('refuses %s, and audits the refusal', async (_name, body, status, error, description) => {
    const before = baton.storage.state.head.seq;
    expect(outcome(await suspend(body))).toEqual({ status, body: { error, error_description: description } });
    expect(audited(before)).toEqual([
      ['registry.suspend', 'refused', `${error}: ${description}`, 'ops-console', null, []],
    ]);
    expect(baton.registryStore.registry().suspensions.size).toBe(0);
  });

  it('refuses a body that is not a JSON object', async () => {
    expect(outcome(await suspend([{ kind: 'user', id: 'alice' }]))).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'request body must be a JSON object' },
    });
  });

  it('refuses a caller without credentials or without the admin scope', async () => {
    expect(outcome(await suspend({ kind: 'user', id: 'alice' }, {}))).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'authentication is required' },
    });
    expect(outcome(await suspend({ kind: 'user', id: 'alice' }, { authorization: basic('agent-platform') }))).toEqual({
      status: 403,
      body: { error: 'access_denied', error_description: 'the caller lacks the baton:admin scope' },
    });
  });
});

describe('DELETE /admin/suspensions/{kind}/{id}', () => {
  it('resumes: what was revoked stays revoked, a fresh grant works again; audited', async () => {
    const token = (await hop()).body.access_token as string;
    expect((await suspend({ kind: 'agent', id: 'orchestrator' })).body.revoked).toBe(1);
    const before = baton.storage.state.head.seq;
    const resumed = await resume('agent', 'orchestrator');
    expect({ status: resumed.status, body: resumed.body }).toEqual({ status: 204, body: {} });
    expect(audited(before)).toEqual([
      [
        'registry.resume',
        'applied',
        'resumed agent orchestrator; nothing revoked is restored',
        'ops-console',
        null,
        ['orchestrator'],
      ],
    ]);
    expect(await isActive(baton, token)).toBe(false);
    expect((await hop()).status).toBe(200);
    expect(
      (
        await postToken(baton, {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: token,
          subject_token_type: tokenTypes.accessToken,
          actor_token: await mintAgentAssertion('payments-subagent', baton.issuer),
          actor_token_type: tokenTypes.jwt,
        })
      ).body,
    ).toEqual({ error: 'invalid_request', error_description: 'subject_token has been revoked' });
  });

  it('resumes a user whose sub holds a "/"', async () => {
    await suspend({ kind: 'user', id: 'team/x' });
    expect((await resume('user', 'team/x')).status).toBe(204);
    expect(baton.registryStore.registry().suspensions.size).toBe(0);
  });

  it.each<[string, string, string, number, string, string]>([
    ['a principal not suspended', 'agent', 'orchestrator', 404, 'not_found', 'agent "orchestrator" is not suspended'],
    ['an unknown kind', 'resource_server', 'payments', 400, 'invalid_request', 'kind must be agent, client or user'],
    ['a NUL in the id', 'user', 'a\u0000b', 400, 'invalid_request', 'id contains a NUL character'],
  ])('refuses %s, and audits the refusal', async (_name, kind, id, status, error, description) => {
    const before = baton.storage.state.head.seq;
    expect(outcome(await resume(kind, id))).toEqual({ status, body: { error, error_description: description } });
    expect(audited(before)).toEqual([
      ['registry.resume', 'refused', `${error}: ${description}`, 'ops-console', null, []],
    ]);
  });

  it('survives applying the registry file, which never lifts a suspension', async () => {
    await suspend({ kind: 'agent', id: 'orchestrator', reason: 'key leaked' });
    await baton.reloadRegistry();
    expect((await send('GET', '/admin/suspensions')).body.items).toEqual([
      { kind: 'agent', id: 'orchestrator', reason: 'key leaked', since: since() },
    ]);
    expect((await hop()).status).toBe(400);
  });

  it('goes with the agent when an operator deletes it', async () => {
    const created = await send('POST', '/admin/agents', {
      id: 'doomed-agent',
      name: 'Doomed',
      owner: 'alice',
      jwks: (await baton.registryStore.read()).document.agents[0]?.jwks,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect((await suspend({ kind: 'agent', id: 'doomed-agent' })).status).toBe(201);
    expect((await send('DELETE', '/admin/agents/doomed-agent')).status).toBe(204);
    expect(outcome(await send('GET', '/admin/suspensions'))).toEqual({ status: 200, body: { items: [] } });
  });

  it("does not lift another tenant's suspension", async () => {
    await baton.registryStore.edit('test', (document) => ({
      ...document,
      suspensions: [{ tenant: 'globex', kind: 'user', id: 'alice', since: '2026-12-01T09:00:00Z' }],
    }));
    expect(outcome(await resume('user', 'alice'))).toEqual({
      status: 404,
      body: { error: 'not_found', error_description: 'user "alice" is not suspended' },
    });
    expect(outcome(await send('GET', '/admin/suspensions'))).toEqual({ status: 200, body: { items: [] } });
  });
});
