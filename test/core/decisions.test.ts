import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { decide, parseAuthorizeRequest, type AuthorizeRequest } from '../../src/core/decisions/authorize.js';
import {
  evaluate,
  evaluateBatch,
  evaluationSchema,
  evaluationsSchema,
  parseAuthzen,
} from '../../src/core/decisions/authzen.js';
import { handleTokenRequest } from '../../src/core/grants/token-endpoint.js';
import type { Caller } from '../../src/core/registry/registry.js';
import { basic, batonSigner, grants, tokenTypes } from '../support/baton.js';
import { epochSeconds } from '../support/forge.js';
import { memoryService, type MemoryService } from '../support/memory-baton.js';
import { shippedDigest } from '../support/policy-digest.js';
import { refusalOf } from '../support/refusal.js';

/** The last audit entry, as stored. */
const lastEntry = (memory: MemoryService) =>
  JSON.parse([...memory.storage.state.entries.values()].at(-1)?.canonical ?? '{}') as Record<string, unknown>;
const callerOf = (memory: MemoryService, id: string) => memory.service.registry().callers.get(id) as Caller;

describe('decide (POST /authorize)', () => {
  let memory: MemoryService;
  let payments: Caller;
  /** alice → orchestrator → payments-subagent at payments, issued through the token endpoint. */
  let chain: string;
  let signAsBaton: (claims: Record<string, unknown>) => Promise<string>;
  beforeAll(async () => {
    memory = await memoryService();
    payments = callerOf(memory, 'payments');
    signAsBaton = await batonSigner(memory.signingJwks);
    const exchange = async (
      subject: string,
      type: string,
      actor: string,
      extra: Record<string, string | string[]> = {},
    ) =>
      (
        await handleTokenRequest(memory.service, {
          params: {
            grant_type: grants.exchange,
            subject_token: subject,
            subject_token_type: type,
            actor_token: await mintAgentAssertion(actor, memory.service.issuer),
            actor_token_type: tokenTypes.jwt,
            ...extra,
          },
          authorization: basic('agent-platform'),
          requestId: null,
        })
      ).access_token;
    const first = await exchange(
      await mintUserToken('alice', { audience: memory.service.issuer }),
      tokenTypes.jwt,
      'orchestrator',
      { audience: ['payments'], scope: 'payments:read payments:transfer' },
    );
    chain = await exchange(first, tokenTypes.accessToken, 'payments-subagent');
  });

  /** A Baton-signed token for alice at payments, with `claims` changed. */
  const forged = (claims: Record<string, unknown> = {}) =>
    signAsBaton({
      iss: memory.service.issuer,
      sub: 'alice',
      aud: 'https://payments.example',
      iat: epochSeconds(),
      exp: epochSeconds() + 60,
      jti: `forged-${Math.random()}`,
      tenant: 'acme',
      client_id: 'agent-platform',
      scope: 'payments:read payments:transfer',
      act: { sub: 'payments-subagent' },
      ...claims,
    });
  const transfer = (
    token: string,
    amount: number | string,
    extra: Partial<AuthorizeRequest> = {},
  ): AuthorizeRequest => ({
    token,
    action: 'payments:transfer',
    resource: { type: 'Account', id: 'acct-1' },
    context: { amount, currency: 'EUR' },
    action_id: 'a-1',
    ...extra,
  });
  const payment = (amount: string) => ({
    type: 'payment_initiation',
    actions: ['initiate'],
    instructedAmount: { currency: 'EUR', amount },
  });

  it.each([
    [
      'a transfer the policies permit',
      async () => transfer(chain, 50),
      { decision: 'allow', reasons: ['transfer-up-to-100'], detail: undefined },
    ],
    [
      'a transfer no policy permits',
      async () => transfer(chain, 150),
      { decision: 'deny', reasons: [], detail: undefined },
    ],
    [
      'a token that is no JWT',
      async () => transfer('garbage', 5),
      { decision: 'deny', reasons: ['baton:invalid-token'], detail: 'token is malformed or unsupported' },
    ],
    [
      'a token of another audience',
      async () => transfer(await forged({ aud: 'https://calendar.example' }), 5),
      {
        decision: 'deny',
        reasons: ['baton:audience'],
        detail: 'token audience https://calendar.example does not include https://payments.example',
      },
    ],
    [
      'an action the server does not offer',
      async () => transfer(chain, 5, { action: 'payments:refund' }),
      { decision: 'deny', reasons: ['baton:unknown-action'], detail: 'payments does not offer payments:refund' },
    ],
    [
      'a chain longer than allowed',
      async () =>
        transfer(
          await forged({
            act: { sub: 'a', act: { sub: 'b', act: { sub: 'c', act: { sub: 'd', act: { sub: 'e' } } } } },
          }),
          5,
        ),
      { decision: 'deny', reasons: ['baton:invalid-token'], detail: 'token has an act claim nested deeper than 4' },
    ],
    [
      'an amount its authorization_details do not cover',
      async () => transfer(await forged({ authorization_details: [payment('50.00')] }), 60),
      {
        decision: 'deny',
        reasons: ['baton:authorization-details'],
        detail: 'payment_initiation /instructedAmount/amount exceeds the granted "50.00"',
      },
    ],
    [
      'an amount its authorization_details cover',
      async () => transfer(await forged({ authorization_details: [payment('50.00')] }), 50),
      { decision: 'allow', reasons: ['transfer-up-to-100'], detail: undefined },
    ],
  ])('decides %s', async (_name, request, outcome) => {
    expect(await decide(memory.service, payments, await request(), null)).toEqual({ action_id: 'a-1', ...outcome });
  });

  it('denies a token of another tenant than the resource server', async () => {
    const token = await forged({ aud: 'https://ledger.globex.example' });
    const request = { token, action: 'ledger:read', resource: { type: 'Account', id: 'acct-1' }, action_id: 'a-2' };
    expect(await decide(memory.service, callerOf(memory, 'ledger'), request, null)).toEqual({
      decision: 'deny',
      action_id: 'a-2',
      reasons: ['baton:tenant'],
      detail: 'token and resource server belong to different tenants',
    });
  });

  it('denies a revoked token, and one derived from it', async () => {
    const [own] = await memory.service.revocations.revoke('acme', {
      kind: 'token',
      jti: decodeJwt(chain).jti as string,
    });
    expect(own).toBe(decodeJwt(chain).jti);
    expect(await decide(memory.service, payments, transfer(chain, 5), null)).toEqual({
      decision: 'deny',
      action_id: 'a-1',
      reasons: ['baton:revoked'],
      detail: 'token has been revoked',
    });
  });

  it('records the decision, and what the token established, before it answers', async () => {
    const token = await forged({ jti: 'recorded', scope: 'payments:transfer' });
    await decide(memory.service, payments, transfer(token, 40, { action_id: 'recorded-1' }), 'request-1');
    expect(lastEntry(memory)).toEqual({
      tenant: 'acme',
      type: 'decision',
      decision: 'allow',
      action_id: 'recorded-1',
      jti: 'recorded',
      parent_jti: null,
      root_grant: null,
      user: 'alice',
      actor_chain: ['payments-subagent'],
      client: 'payments',
      audience: ['https://payments.example'],
      scope: ['payments:transfer'],
      authorization_details: [],
      policy_ids: ['transfer-up-to-100'],
      policy_digest: shippedDigest,
      reason: 'payments:transfer on Account::acct-1',
      request_id: 'request-1',
      // Called outside any HTTP request: no trace.
      trace_id: null,
      span_id: null,
      time: expect.any(String),
    });
  });

  it('makes an action id when the request has none', async () => {
    const { action_id: _given, ...request } = transfer(chain, 5);
    expect((await decide(memory.service, payments, request, null)).action_id).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it.each([
    [
      'a caller that is no resource server',
      'agent-platform',
      transfer('x', 5),
      { code: 'access_denied', description: 'the caller is not a registered resource server' },
    ],
    [
      "an amount outside its type's schema, whatever the token",
      'payments',
      transfer('x', -5),
      {
        code: 'invalid_request',
        description:
          'context.amount is outside the payment_initiation schema at /instructedAmount/amount: String does not match pattern.',
      },
    ],
  ])('refuses %s, and records the refusal as a decision', async (_name, caller, request, refusal) => {
    expect(await refusalOf(decide(memory.service, callerOf(memory, caller), request, 'refused-1'))).toEqual(refusal);
    expect(lastEntry(memory)).toMatchObject({
      tenant: 'acme',
      type: 'decision',
      decision: 'refused',
      action_id: 'a-1',
      client: caller,
      reason: `${refusal.code}: ${refusal.description}`,
      request_id: 'refused-1',
    });
  });
});

describe('parseAuthorizeRequest', () => {
  const valid = { token: 't', action: 'payments:read', resource: { type: 'Account', id: 'acct-1' } };
  it.each([
    ['an array', [], 'body Invalid input: expected object, received array'],
    ['no token', { ...valid, token: undefined }, 'token is required'],
    ['an empty token', { ...valid, token: '' }, 'token is required'],
    ['no action', { ...valid, action: undefined }, 'action is required'],
    ['no resource', { ...valid, resource: undefined }, 'resource is required'],
    ['a resource without id', { ...valid, resource: { type: 'Account' } }, 'resource.id is required'],
    ['a resource without type', { ...valid, resource: { id: '1' } }, 'resource.type is required'],
    [
      'an action id with a space',
      { ...valid, action_id: 'has space' },
      'action_id must be 1–128 visible ASCII characters',
    ],
    [
      'an action id too long',
      { ...valid, action_id: 'a'.repeat(129) },
      'action_id must be 1–128 visible ASCII characters',
    ],
    ['a NUL in a context value', { ...valid, context: { note: 'a\u0000b' } }, 'context.note contains a NUL character'],
    [
      'an unpaired surrogate in a property',
      { ...valid, resource: { ...valid.resource, properties: { tags: ['\uD800'] } } },
      'resource.properties.tags.0 contains an unpaired UTF-16 surrogate',
    ],
  ])('refuses %s', async (_name, body, description) => {
    expect(await refusalOf(() => parseAuthorizeRequest(body))).toEqual({ code: 'invalid_request', description });
  });

  it('takes a valid body as it is', () => {
    expect(parseAuthorizeRequest({ ...valid, context: { amount: 5 }, action_id: 'x-1' })).toEqual({
      ...valid,
      context: { amount: 5 },
      action_id: 'x-1',
    });
  });
});

describe('AuthZEN evaluations', () => {
  let memory: MemoryService;
  let pep: Caller;
  beforeAll(async () => {
    memory = await memoryService({ BATON_POLICY_DIR: 'policies/examples/authzen-certification' });
    pep = callerOf(memory, 'payments');
  });
  const alice = { type: 'user', id: 'alice' };
  const record1 = { type: 'record', id: 'record-1' };
  const archived = { type: 'record', id: 'record-2', properties: { status: 'archived' } };

  it('evaluates one request against the policies and records it', async () => {
    expect(
      await evaluate(
        memory.service,
        pep,
        { subject: alice, action: { name: 'write' }, resource: record1 },
        'authzen-1',
      ),
    ).toEqual({ decision: true });
    expect(lastEntry(memory)).toMatchObject({
      tenant: 'acme',
      type: 'authzen.evaluation',
      decision: 'allow',
      client: 'payments',
      user: 'user::alice',
      reason: 'write on record::record-1',
      request_id: 'authzen-1',
    });
    expect(
      await evaluate(memory.service, pep, { subject: alice, action: { name: 'write' }, resource: archived }, null),
    ).toEqual({ decision: false });
    expect(lastEntry(memory)).toMatchObject({ decision: 'deny', policy_ids: [] });
  });

  it.each([
    ['execute_all', [{ decision: true }, { decision: false }, { decision: true }]],
    ['deny_on_first_deny', [{ decision: true }, { decision: false }]],
    ['permit_on_first_permit', [{ decision: true }]],
  ] as const)('runs a batch with %s, items taking the defaults they leave out', async (semantic, evaluations) => {
    const before = memory.storage.state.head.seq;
    const batch = {
      subject: alice,
      action: { name: 'write' },
      evaluations: [{ resource: record1 }, { resource: archived }, { resource: record1 }],
      options: { evaluations_semantic: semantic },
    };
    expect(await evaluateBatch(memory.service, pep, parseAuthzen(evaluationsSchema, batch), null)).toEqual({
      evaluations,
    });
    expect(memory.storage.state.head.seq - before).toBe(evaluations.length);
  });

  it('answers a batch without items as one evaluation', async () => {
    expect(
      await evaluateBatch(
        memory.service,
        pep,
        parseAuthzen(evaluationsSchema, {
          subject: alice,
          action: { name: 'read' },
          resource: record1,
          evaluations: [],
        }),
        null,
      ),
    ).toEqual({ decision: true });
  });

  it('fails only the bad item of a batch, and records its refusal', async () => {
    const batch = {
      subject: alice,
      action: { name: 'read' },
      evaluations: [{ resource: record1 }, { resource: { type: 'record', id: 'x\u0000' } }],
    };
    expect(await evaluateBatch(memory.service, pep, parseAuthzen(evaluationsSchema, batch), null)).toEqual({
      evaluations: [
        { decision: true },
        { decision: false, context: { error: { status: 400, message: 'resource.id: contains a NUL character' } } },
      ],
    });
    expect(lastEntry(memory)).toMatchObject({
      type: 'authzen.evaluation',
      decision: 'refused',
      reason: 'invalid_request: resource.id: contains a NUL character',
    });
  });

  it.each([
    [
      'no subject',
      { action: { name: 'read' }, resource: record1 },
      'subject: Invalid input: expected object, received undefined',
    ],
    [
      'a subject without id',
      { subject: { type: 'user' }, action: { name: 'read' }, resource: record1 },
      'subject.id: Invalid input: expected string, received undefined',
    ],
    [
      'an empty action name',
      { subject: alice, action: { name: '' }, resource: record1 },
      'action.name: Too small: expected string to have >=1 characters',
    ],
    ['a body that is no object', 'alice', 'request: Invalid input: expected object, received string'],
  ])('refuses a request with %s', async (_name, body, description) => {
    expect(await refusalOf(() => parseAuthzen(evaluationSchema, body))).toEqual({
      code: 'invalid_request',
      description,
    });
  });

  it('refuses an unknown evaluations_semantic', async () => {
    expect(
      await refusalOf(() => parseAuthzen(evaluationsSchema, { options: { evaluations_semantic: 'some' } })),
    ).toEqual({
      code: 'invalid_request',
      description:
        'options.evaluations_semantic: Invalid option: expected one of "execute_all"|"deny_on_first_deny"|"permit_on_first_permit"',
    });
  });
});
