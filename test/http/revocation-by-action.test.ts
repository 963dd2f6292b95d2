import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { basic, bearerOf, exchangedToken, grants, postJson, postToken, tokenTypes } from '../support/baton.js';
import { consentedCode, isActive, redeemCode, refresh } from '../support/consent.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { addGlobexOperator } from '../support/operators.js';

let baton: MemoryBaton;
let acme: Record<string, string>;
let globex: Record<string, string>;

beforeAll(async () => {
  baton = await memoryBaton();
  // An operator of another tenant, to ask about acme's actions.
  const globexBearer = await addGlobexOperator(baton);
  acme = await bearerOf(baton, 'ops-console', 'baton:admin');
  globex = await globexBearer();
});
afterAll(async () => {
  await baton?.close();
});

const introspect = async (token: string): Promise<Record<string, unknown>> => {
  const response = await baton.fetch(`${baton.url}/oauth2/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('payments') },
    body: new URLSearchParams({ token }),
  });
  return (await response.json()) as Record<string, unknown>;
};
const active = async (token: string): Promise<unknown> => (await introspect(token)).active;

const hop = (
  subject: string,
  actor: string,
  type: string = tokenTypes.accessToken,
  extra: Record<string, string> = {},
) => exchangedToken(baton, subject, type, actor, extra);

/** A transfer decision on `token`, recorded under `actionId`. */
const transfer = (token: string, actionId: string) =>
  postJson(
    baton,
    '/authorize',
    {
      token,
      action: 'payments:transfer',
      resource: { type: 'Account', id: 'acct-1' },
      context: { amount: 1, currency: 'EUR' },
      action_id: actionId,
    },
    { authorization: basic('payments') },
  );

const revokeAction = (body: unknown, headers: Record<string, string> = acme) =>
  postJson(baton, '/admin/revoke', body, headers);
const outcome = (r: { status: number; body: unknown }) => ({ status: r.status, body: r.body });

let serial = 0;
/**
 * alice → orchestrator (root) → payments-subagent (the action's token), a sibling sub-agent token
 * from the same root, and a token of another root grant of alice's; the action is a transfer
 * decided on the sub-agent's token.
 */
async function threeHops(): Promise<{
  root: string;
  subagent: string;
  sibling: string;
  other: string;
  actionId: string;
}> {
  const alice = () => mintUserToken('alice', { audience: baton.issuer });
  const root = await hop(await alice(), 'orchestrator', tokenTypes.jwt, {
    audience: 'payments',
    scope: 'payments:read payments:transfer',
  });
  const subagent = await hop(root, 'payments-subagent', tokenTypes.accessToken, { scope: 'payments:transfer' });
  const sibling = await hop(root, 'payments-subagent', tokenTypes.accessToken, { scope: 'payments:read' });
  const other = await hop(await alice(), 'orchestrator', tokenTypes.jwt, { audience: 'payments' });
  const actionId = `action-${++serial}`;
  expect((await transfer(subagent, actionId)).body).toEqual({
    decision: 'allow',
    action_id: actionId,
    reasons: ['transfer-up-to-100'],
  });
  return { root, subagent, sibling, other, actionId };
}

const jtiOf = (token: string): string => decodeJwt(token).jti as string;

describe('POST /admin/revoke {"action_id"}', () => {
  it("revokes the root grant's whole tree and leaves another root grant of the same user", async () => {
    const { root, subagent, sibling, other, actionId } = await threeHops();
    const before = baton.auditEntries().length;
    const result = await revokeAction({ action_id: actionId }, { ...acme, 'x-request-id': 'req-revoke-1' });
    expect(outcome(result)).toEqual({
      status: 200,
      body: { revoked: 3, action_id: actionId, root_grants: [jtiOf(root)] },
    });
    expect(result.headers.get('cache-control')).toBe('no-store');
    for (const t of [root, subagent, sibling]) expect(await introspect(t)).toEqual({ active: false });
    expect(await active(other)).toBe(true);

    // Every path refuses the tree's tokens.
    expect((await transfer(subagent, `${actionId}-again`)).body).toEqual({
      decision: 'deny',
      action_id: `${actionId}-again`,
      reasons: ['baton:revoked'],
    });
    const exchange = await postToken(baton, {
      grant_type: grants.exchange,
      subject_token: root,
      subject_token_type: tokenTypes.accessToken,
      actor_token: await mintAgentAssertion('payments-subagent', baton.issuer),
      actor_token_type: tokenTypes.jwt,
    });
    expect(outcome(exchange)).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'subject_token has been revoked' },
    });
    expect((await transfer(other, `${actionId}-other`)).body).toMatchObject({ decision: 'allow' });

    // One entry, in the operator's tenant, linked to the action and naming the root and the count.
    expect(baton.auditEntries(before).filter((e) => e.type === 'token.revocation')).toEqual([
      {
        tenant: 'acme',
        type: 'token.revocation',
        decision: 'applied',
        action_id: actionId,
        jti: jtiOf(subagent),
        parent_jti: null,
        root_grant: jtiOf(root),
        user: null,
        actor_chain: [],
        client: 'ops-console',
        audience: [],
        scope: [],
        authorization_details: [],
        policy_ids: [],
        policy_digest: null,
        reason: `revoked root grant ${jtiOf(root)} of action ${actionId} (the token it used, ${jtiOf(subagent)}, and every token issued under that grant): 3 tokens`,
        request_id: 'req-revoke-1',
        trace_id: expect.stringMatching(/^[0-9a-f]{32}$/),
        span_id: expect.stringMatching(/^[0-9a-f]{16}$/),
        time: expect.any(String),
      },
    ]);
    // The action's trail, as an auditor reads it, ends with its revocation.
    const trail = await baton.fetch(`${baton.url}/audit/actions/${actionId}`, {
      headers: await bearerOf(baton, 'ops-console', 'baton:audit'),
    });
    const { entries } = (await trail.json()) as { entries: { entry: Record<string, unknown> }[] };
    expect(entries.at(-1)?.entry).toMatchObject({ type: 'token.revocation', action_id: actionId, decision: 'applied' });

    // Asked again: nothing more to revoke, still answered and audited.
    expect(outcome(await revokeAction({ action_id: actionId }))).toEqual({
      status: 200,
      body: { revoked: 0, action_id: actionId, root_grants: [jtiOf(root)] },
    });
  });

  it('revokes the rest of the tree when the action’s own token is already revoked', async () => {
    const { root, subagent, sibling, other, actionId } = await threeHops();
    const revoked = await baton.fetch(`${baton.url}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('agent-platform') },
      body: new URLSearchParams({ token: subagent }),
    });
    expect(revoked.status).toBe(200);
    expect(await active(root)).toBe(true);
    expect(outcome(await revokeAction({ action_id: actionId }))).toEqual({
      status: 200,
      body: { revoked: 2, action_id: actionId, root_grants: [jtiOf(root)] },
    });
    for (const t of [root, subagent, sibling]) expect(await active(t)).toBe(false);
    expect(await active(other)).toBe(true);
  });

  it('counts each token once when the same action is revoked twice at once', async () => {
    const { root, actionId } = await threeHops();
    const before = baton.auditEntries().length;
    const both = await Promise.all([revokeAction({ action_id: actionId }), revokeAction({ action_id: actionId })]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(both.map((r) => r.body.root_grants)).toEqual([[jtiOf(root)], [jtiOf(root)]]);
    expect(both.map((r) => r.body.revoked as number).sort()).toEqual([0, 3]);
    const entries = baton.auditEntries(before).filter((e) => e.type === 'token.revocation');
    expect(
      entries
        .map((e) => e.reason as string)
        .map((r) => r.slice(r.lastIndexOf(':') + 2))
        .sort(),
    ).toEqual(['0 tokens', '3 tokens']);
  });

  it("answers an unknown action and another tenant's action alike: 404, audited, nothing revoked", async () => {
    const { root, subagent, actionId } = await threeHops();
    const notFound = { status: 404, body: { error: 'not_found', error_description: 'no such action in your tenant' } };
    const before = baton.auditEntries().length;
    expect(outcome(await revokeAction({ action_id: 'no-such-action' }))).toEqual(notFound);
    expect(outcome(await revokeAction({ action_id: actionId }, globex))).toEqual(notFound);
    for (const t of [root, subagent]) expect(await active(t)).toBe(true);
    expect(
      baton.auditEntries(before).map((e) => ({
        tenant: e.tenant,
        type: e.type,
        decision: e.decision,
        action_id: e.action_id,
        client: e.client,
        reason: e.reason,
      })),
    ).toEqual([
      {
        tenant: 'acme',
        type: 'token.revocation',
        decision: 'refused',
        action_id: null,
        client: 'ops-console',
        reason: 'revocation by action: not_found: no such action in your tenant',
      },
      {
        tenant: 'globex',
        type: 'token.revocation',
        decision: 'refused',
        action_id: null,
        client: 'globex-ops',
        reason: 'revocation by action: not_found: no such action in your tenant',
      },
    ]);
  });

  it('refuses an action that names no token (409), linking the refusal to it', async () => {
    expect((await transfer('not-a-token', 'tokenless')).body).toEqual({
      decision: 'deny',
      action_id: 'tokenless',
      reasons: ['baton:invalid-token'],
    });
    const before = baton.auditEntries().length;
    const description = 'the action names no token: each of its decisions was refused before a valid token was read';
    expect(outcome(await revokeAction({ action_id: 'tokenless' }))).toEqual({
      status: 409,
      body: { error: 'conflict', error_description: description },
    });
    expect(baton.auditEntries(before)).toMatchObject([
      {
        tenant: 'acme',
        type: 'token.revocation',
        decision: 'refused',
        action_id: 'tokenless',
        jti: null,
        root_grant: null,
        client: 'ops-console',
        reason: `revocation by action: conflict: ${description}`,
      },
    ]);
  });

  const syntax = {
    status: 400,
    body: { error: 'invalid_request', error_description: 'action_id must be 1–128 visible ASCII characters' },
  };
  const shape = {
    status: 400,
    body: {
      error: 'invalid_request',
      error_description: 'body must be {"agent": "<agent id>"}, {"user": "<user id>"} or {"action_id": "<action id>"}',
    },
  };
  it.each([
    ['an empty id', '{"action_id":""}', syntax],
    ['a NUL', '{"action_id":"a\\u0000b"}', syntax],
    ['a lone surrogate', '{"action_id":"a\\ud800b"}', syntax],
    ['a space', '{"action_id":"a b"}', syntax],
    ['129 characters', JSON.stringify({ action_id: 'a'.repeat(129) }), syntax],
    ['a 10 KB id', JSON.stringify({ action_id: 'a'.repeat(10_240) }), syntax],
    ['an array', '{"action_id":["ACTION"]}', syntax],
    ['a number', '{"action_id":7}', syntax],
    ['null', '{"action_id":null}', syntax],
    ['another member besides', '{"action_id":"ACTION","agent":"orchestrator"}', shape],
    ['__proto__ holding it', '{"__proto__":{"action_id":"ACTION"}}', shape],
    ['__proto__ besides', '{"action_id":"ACTION","__proto__":{}}', shape],
    ['constructor besides', '{"action_id":"ACTION","constructor":"x"}', shape],
    [
      'an array body',
      '[{"action_id":"ACTION"}]',
      {
        status: 400,
        body: { error: 'invalid_request', error_description: 'request body must be a JSON object' },
      },
    ],
  ])('refuses %s with 400 and revokes nothing', async (_name, body, answer) => {
    const { root, subagent, actionId } = await threeHops();
    expect(outcome(await revokeAction(body.replaceAll('ACTION', actionId)))).toEqual(answer);
    for (const t of [root, subagent]) expect(await active(t)).toBe(true);
  });

  it('is closed to a caller without the admin scope', async () => {
    const { root, actionId } = await threeHops();
    expect(
      outcome(await revokeAction({ action_id: actionId }, await bearerOf(baton, 'ops-console', 'baton:audit'))),
    ).toEqual({
      status: 403,
      body: { error: 'access_denied', error_description: 'the caller lacks the baton:admin scope' },
    });
    expect(await active(root)).toBe(true);
  });
});

describe('an action whose token has expired', () => {
  // Baton's clock is the test's, so the action's token can expire while its grant lives on.
  let offset = 0;
  let later: MemoryBaton;
  beforeAll(async () => {
    later = await memoryBaton({}, { clock: { now: () => Date.now() + offset } });
  });
  afterAll(async () => {
    await later?.close();
  });

  it('still revokes the rest of its code-flow grant: the refreshed access token and the refresh family', async () => {
    const { code, verifier } = await consentedCode(later);
    const redeemed = await redeemCode(later, code, verifier);
    expect(redeemed.status).toBe(200);
    const first = redeemed.body.access_token as string;
    const subagent = await exchangedToken(later, first, tokenTypes.accessToken, 'payments-subagent');
    const decided = await postJson(
      later,
      '/authorize',
      {
        token: subagent,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount: 1, currency: 'EUR' },
        action_id: 'expired-action',
      },
      { authorization: basic('payments') },
    );
    expect(decided.body).toMatchObject({ decision: 'allow' });
    // Past the access tokens' lifetime (300 s) and the clock tolerance, within the refresh token's.
    offset = 600_000;
    expect(await isActive(later, subagent)).toBe(false);
    const refreshed = await refresh(later, redeemed.body.refresh_token as string);
    expect(refreshed.status).toBe(200);
    const second = refreshed.body.access_token as string;
    expect(await isActive(later, second)).toBe(true);

    const result = await postJson(
      later,
      '/admin/revoke',
      { action_id: 'expired-action' },
      await bearerOf(later, 'ops-console', 'baton:admin'),
    );
    const [grant] = result.body.root_grants as string[];
    expect(grant).not.toBe(jtiOf(first));
    expect(outcome(result)).toEqual({
      status: 200,
      body: { revoked: 1, action_id: 'expired-action', root_grants: [grant] },
    });
    expect(await isActive(later, second)).toBe(false);
    const again = await refresh(later, refreshed.body.refresh_token as string);
    expect(outcome(again)).toEqual({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'refresh token has been revoked' },
    });
  });
});
