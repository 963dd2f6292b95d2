import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, postJson } from '../support/baton.js';
import { shippedDigest } from '../support/policy-digest.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

// Baton with the demo policies and registry: acme has the agents orchestrator and
// payments-subagent, the user alice and the account acct-1; globex has globex-assistant.
let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton();
});
afterAll(async () => {
  await baton?.close();
});

const payments = { authorization: basic('payments') };
const ledger = { authorization: basic('ledger') };
const search = (kind: string, body: unknown, headers: Record<string, string> = payments) =>
  postJson(baton, `/access/v1/search/${kind}`, body, headers);
const answer = async (kind: string, body: unknown, headers?: Record<string, string>) => {
  const result = await search(kind, body, headers);
  return { status: result.status, body: result.body };
};
/** The audit entries written since `before`, without their time. */
const entriesSince = (before: number) => baton.auditEntries(before).map(({ time: _time, ...entry }) => entry);
const head = () => baton.auditEntries().length;

const alice = { type: 'User', id: 'alice' };
const acct1 = { type: 'Account', id: 'acct-1' };
const delegation = { subject: { type: 'Agent' }, action: { name: 'delegate' }, resource: alice, context: { depth: 1 } };
const readAccounts = {
  subject: alice,
  action: { name: 'payments:read' },
  resource: { type: 'Account' },
  context: { scope: ['payments:read'] },
};
const onAcct1 = {
  subject: alice,
  resource: acct1,
  context: { scope: ['payments:read', 'payments:transfer'], amount: 50, currency: 'EUR' },
};
const lastPage = { next_token: '' };
const searchEntry = {
  tenant: 'acme',
  type: 'authzen.search',
  action_id: null,
  jti: null,
  parent_jti: null,
  root_grant: null,
  actor_chain: [],
  client: 'payments',
  audience: [],
  scope: [],
  authorization_details: [],
  request_id: null,
  // Each search is a request of its own, in a trace Baton starts (no traceparent is sent).
  trace_id: expect.stringMatching(/^[0-9a-f]{32}$/),
  span_id: expect.stringMatching(/^[0-9a-f]{16}$/),
  policy_digest: shippedDigest,
};

describe('AuthZEN 1.0 subject search', () => {
  it("lists the agents of the caller's tenant that may act for alice, and audits the search once", async () => {
    const before = head();
    expect(await answer('subject', delegation)).toEqual({
      status: 200,
      body: {
        results: [
          { type: 'Agent', id: 'orchestrator' },
          { type: 'Agent', id: 'payments-subagent' },
        ],
        page: lastPage,
      },
    });
    expect(entriesSince(before)).toEqual([
      {
        ...searchEntry,
        decision: 'allow',
        user: null,
        policy_ids: ['delegate-within-tenant'],
        reason: 'subject search: Agent for delegate on User::alice: 2 decisions, 2 results',
      },
    ]);
  });

  it('finds users from the registry and the entity data', async () => {
    expect(
      await answer('subject', {
        subject: { type: 'User' },
        action: { name: 'payments:read' },
        resource: acct1,
        context: { scope: ['payments:read'] },
      }),
    ).toEqual({ status: 200, body: { results: [alice, { type: 'User', id: 'audrey' }], page: lastPage } });
  });

  it('pages with an opaque token', async () => {
    const first = await answer('subject', { ...delegation, page: { limit: 1 } });
    const nextToken = (first.body.page as { next_token: string }).next_token;
    expect(first).toEqual({
      status: 200,
      body: { results: [{ type: 'Agent', id: 'orchestrator' }], page: { next_token: nextToken } },
    });
    expect(nextToken).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(await answer('subject', { ...delegation, page: { limit: 1, token: nextToken } })).toEqual({
      status: 200,
      body: { results: [{ type: 'Agent', id: 'payments-subagent' }], page: lastPage },
    });
  });
});

describe('AuthZEN 1.0 resource search', () => {
  it('lists the accounts alice may read', async () => {
    const before = head();
    expect(await answer('resource', readAccounts)).toEqual({
      status: 200,
      body: { results: [acct1], page: lastPage },
    });
    expect(entriesSince(before)).toEqual([
      {
        ...searchEntry,
        decision: 'allow',
        user: 'User::alice',
        policy_ids: ['read-payments'],
        reason: 'resource search: Account for payments:read by User::alice: 1 decisions, 1 results',
      },
    ]);
  });

  it('finds nothing the policies do not permit', async () => {
    const before = head();
    expect(await answer('resource', { ...readAccounts, context: { scope: [] } })).toEqual({
      status: 200,
      body: { results: [], page: lastPage },
    });
    expect(entriesSince(before)).toEqual([
      {
        ...searchEntry,
        decision: 'deny',
        user: 'User::alice',
        policy_ids: [],
        reason: 'resource search: Account for payments:read by User::alice: 1 decisions, 0 results',
      },
    ]);
  });
});

describe('AuthZEN 1.0 action search', () => {
  it('lists the actions alice may take on acct-1', async () => {
    const before = head();
    expect(await answer('action', onAcct1)).toEqual({
      status: 200,
      body: { results: [{ name: 'payments:read' }, { name: 'payments:transfer' }], page: lastPage },
    });
    expect(entriesSince(before)).toEqual([
      {
        ...searchEntry,
        decision: 'allow',
        user: 'User::alice',
        policy_ids: ['read-payments', 'transfer-up-to-100'],
        reason: 'action search: User::alice on Account::acct-1: 4 decisions, 2 results',
      },
    ]);
  });

  it('leaves out a governed action whose context does not fit its type', async () => {
    expect(await answer('action', { ...onAcct1, context: { scope: ['payments:read', 'payments:transfer'] } })).toEqual({
      status: 200,
      body: { results: [{ name: 'payments:read' }], page: lastPage },
    });
  });

  it('pages with an opaque token', async () => {
    const first = await answer('action', { ...onAcct1, page: { limit: 1 } });
    const nextToken = (first.body.page as { next_token: string }).next_token;
    expect(first).toEqual({
      status: 200,
      body: { results: [{ name: 'payments:read' }], page: { next_token: nextToken } },
    });
    expect(await answer('action', { ...onAcct1, page: { limit: 1, token: nextToken } })).toEqual({
      status: 200,
      body: { results: [{ name: 'payments:transfer' }], page: lastPage },
    });
  });
});

describe('AuthZEN 1.0 search within the tenant', () => {
  it("never lists another tenant's entities", async () => {
    const before = head();
    expect(await answer('resource', readAccounts, ledger)).toEqual({
      status: 200,
      body: { results: [], page: lastPage },
    });
    // Only globex's own built-in user (gus, its auditor) is a candidate: acme's alice and audrey never are.
    expect(await answer('subject', { ...readAccounts, subject: { type: 'User' }, resource: acct1 }, ledger)).toEqual({
      status: 200,
      body: { results: [{ type: 'User', id: 'gus' }], page: lastPage },
    });
    expect(await answer('subject', delegation, ledger)).toEqual({ status: 200, body: { results: [], page: lastPage } });
    expect(entriesSince(before).map((e) => [e.tenant, e.client, e.reason])).toEqual([
      ['globex', 'ledger', 'resource search: Account for payments:read by User::alice: 0 decisions, 0 results'],
      ['globex', 'ledger', 'subject search: User for payments:read on Account::acct-1: 1 decisions, 1 results'],
      // globex-assistant is globex's agent; alice is acme's user, so the policies refuse.
      ['globex', 'ledger', 'subject search: Agent for delegate on User::alice: 1 decisions, 0 results'],
    ]);
  });

  it("does not take acme's page token as a way into acme", async () => {
    const first = await answer('subject', { ...delegation, page: { limit: 1 } });
    const nextToken = (first.body.page as { next_token: string }).next_token;
    expect(await answer('subject', { ...delegation, page: { limit: 1, token: nextToken } }, ledger)).toEqual({
      status: 200,
      body: { results: [], page: lastPage },
    });
  });
});

describe('AuthZEN 1.0 search refusals', () => {
  const bad = (description: string) => ({
    status: 400,
    body: { error: 'invalid_request', error_description: description },
  });
  const tokenOf = (json: string) => btoa(json).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

  it.each([
    [
      'subject',
      'a subject without type',
      { ...delegation, subject: {} },
      'subject.type: Invalid input: expected string, received undefined',
    ],
    [
      'resource',
      'a resource without type',
      { ...readAccounts, resource: {} },
      'resource.type: Invalid input: expected string, received undefined',
    ],
    [
      'action',
      'a subject without id',
      { ...onAcct1, subject: { type: 'User' } },
      'subject.id: Invalid input: expected string, received undefined',
    ],
    [
      'subject',
      'no action',
      { subject: { type: 'Agent' }, resource: alice },
      'action: Invalid input: expected object, received undefined',
    ],
    [
      'subject',
      'an unknown subject type',
      { ...delegation, subject: { type: 'Robot' } },
      'subject.type: is not an entity type of the policy set',
    ],
    [
      'resource',
      'an unknown resource type',
      { ...readAccounts, resource: { type: 'Vault' } },
      'resource.type: is not an entity type of the policy set',
    ],
    [
      'resource',
      'a page token that is not base64url',
      { ...readAccounts, page: { token: '!!' } },
      'page.token: is not a token this endpoint issued',
    ],
    [
      'resource',
      'a page token that is not JSON',
      { ...readAccounts, page: { token: tokenOf('acct-1') } },
      'page.token: is not a token this endpoint issued',
    ],
    [
      'action',
      'a page token without a position',
      { ...onAcct1, page: { token: tokenOf('{"a":1}') } },
      'page.token: is not a token this endpoint issued',
    ],
    [
      'resource',
      'a page size of 0',
      { ...readAccounts, page: { limit: 0 } },
      'page.limit: must be an integer from 1 to 100',
    ],
    [
      'resource',
      'a page size of 101',
      { ...readAccounts, page: { limit: 101 } },
      'page.limit: must be an integer from 1 to 100',
    ],
    [
      'subject',
      'a fractional page size',
      { ...delegation, page: { limit: 1.5 } },
      'page.limit: must be an integer from 1 to 100',
    ],
    [
      'action',
      'a page size as text',
      { ...onAcct1, page: { limit: '10' } },
      'page.limit: Invalid input: expected number, received string',
    ],
    [
      'subject',
      'a NUL in the type',
      { ...delegation, subject: { type: 'Agent\u0000' } },
      'subject.type: contains a NUL character',
    ],
    [
      'resource',
      'an unpaired surrogate in the page token',
      { ...readAccounts, page: { token: 'a\uD800' } },
      'page.token: contains an unpaired UTF-16 surrogate',
    ],
    [
      'action',
      'a NUL in a context member name',
      { ...onAcct1, context: { 'scope\u0000': [] } },
      'context: has a member name with a NUL character',
    ],
    [
      'resource',
      'a governed action whose context does not fit its type',
      { ...readAccounts, action: { name: 'payments:transfer' }, context: { amount: 'lots' } },
      'context.amount is outside the payment_initiation schema at /instructedAmount/amount: String does not match pattern.',
    ],
    ['subject', 'malformed JSON', '{"subject":', 'request body is not valid JSON'],
  ])('%s search answers 400 to %s', async (kind, _name, body, description) => {
    expect(await answer(kind, body)).toEqual(bad(description));
  });

  it('refuses an unauthenticated caller with 401', async () => {
    expect(await answer('resource', readAccounts, {})).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'authentication is required' },
    });
  });

  it('refuses a client that is not a resource server with 403', async () => {
    expect(await answer('action', onAcct1, { authorization: basic('agent-platform') })).toEqual({
      status: 403,
      body: { error: 'access_denied', error_description: 'the caller is not a registered resource server' },
    });
  });

  it('refuses a wrong secret with 401', async () => {
    expect(await answer('subject', delegation, { authorization: basic('payments', 'nope') })).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'client authentication failed' },
    });
  });
});
