import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { basic, bearerOf, exchangedToken, grants, postJson, postToken, tokenTypes } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton({ BATON_MAX_CHAIN_LENGTH: '4' });
});
afterAll(async () => {
  await baton?.close();
});

const form = async (path: string, params: Record<string, string>, authorization: string) => {
  const response = await baton.fetch(`${baton.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
    body: new URLSearchParams(params),
  });
  const text = await response.text();
  return {
    status: response.status,
    text,
    body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
  };
};
const introspect = async (token: string) =>
  (await form('/oauth2/introspect', { token }, basic('payments'))).body as Record<string, unknown>;

/** Exchanges `subject` for `actor` (a Baton or identity-provider token). */
const hop = (
  subject: string,
  actor: string,
  type: string = tokenTypes.accessToken,
  extra: Record<string, string> = {},
) => exchangedToken(baton, subject, type, actor, extra);

/** A four-level chain of tokens, each derived from the one before (re-exchanges by the current actor narrow without a new hop). */
async function fourLevels(): Promise<string[]> {
  const user = await mintUserToken('alice', { audience: baton.issuer });
  const t1 = await hop(user, 'orchestrator', tokenTypes.jwt, {
    audience: 'payments',
    scope: 'payments:read payments:transfer',
  });
  const t2 = await hop(t1, 'orchestrator', tokenTypes.accessToken, { scope: 'payments:read payments:transfer' });
  const t3 = await hop(t2, 'payments-subagent', tokenTypes.accessToken, { scope: 'payments:transfer' });
  const t4 = await hop(t3, 'payments-subagent', tokenTypes.accessToken, { scope: 'payments:transfer' });
  return [t1, t2, t3, t4];
}

describe('RFC 7662 introspection', () => {
  it('returns the claims with the full nested act', async () => {
    const [, , t3] = await fourLevels();
    const claims = decodeJwt(t3 as string);
    expect(await introspect(t3 as string)).toEqual({
      active: true,
      iss: baton.issuer,
      sub: 'alice',
      act: { sub: 'payments-subagent', act: { sub: 'orchestrator' } },
      scope: 'payments:transfer',
      client_id: 'agent-platform',
      aud: 'https://payments.example',
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
      tenant: 'acme',
      token_type: 'Bearer',
    });
  });

  it("is inactive for garbage, an identity-provider token, and another tenant's caller", async () => {
    const [t1] = await fourLevels();
    expect(await introspect('garbage')).toEqual({ active: false });
    expect(await introspect(await mintUserToken('alice', { audience: baton.issuer }))).toEqual({ active: false });
    expect((await form('/oauth2/introspect', { token: t1 as string }, basic('ledger'))).body).toEqual({
      active: false,
    });
  });

  it('refuses callers that are not resource servers', async () => {
    const result = await form('/oauth2/introspect', { token: 'x' }, basic('agent-platform'));
    expect({ status: result.status, body: result.body }).toEqual({
      status: 403,
      body: { error: 'access_denied', error_description: 'the caller is not a registered resource server' },
    });
  });
});

describe('RFC 7009 revocation cascading down the chain', () => {
  it('revoking the second token deactivates the third and fourth and leaves the first', async () => {
    const [t1, t2, t3, t4] = (await fourLevels()) as [string, string, string, string];
    // Used before the revocation, so Baton has already verified (and remembers) each of them.
    const transfer = (actionId: string) =>
      postJson(
        baton,
        '/authorize',
        {
          token: t4,
          action: 'payments:transfer',
          resource: { type: 'Account', id: 'acct-1' },
          context: { amount: 1, currency: 'EUR' },
          action_id: actionId,
        },
        { authorization: basic('payments') },
      );
    expect((await transfer('rev-0')).body).toEqual({
      decision: 'allow',
      action_id: 'rev-0',
      reasons: ['transfer-up-to-100'],
    });
    for (const t of [t1, t2, t3, t4]) expect((await introspect(t)).active).toBe(true);
    const revoked = await form('/oauth2/revoke', { token: t2 }, basic('agent-platform'));
    expect({ status: revoked.status, text: revoked.text }).toEqual({ status: 200, text: '' });
    expect((await introspect(t1)).active).toBe(true);
    for (const t of [t2, t3, t4]) expect(await introspect(t)).toEqual({ active: false });

    // Every path refuses a revoked token.
    const exchange = await postToken(baton, {
      grant_type: grants.exchange,
      subject_token: t3,
      subject_token_type: tokenTypes.accessToken,
      actor_token: await mintAgentAssertion('payments-subagent', baton.issuer),
      actor_token_type: tokenTypes.jwt,
    });
    expect(exchange.body).toEqual({ error: 'invalid_request', error_description: 'subject_token has been revoked' });
    const decision = await transfer('rev-1');
    expect(decision.body).toEqual({ decision: 'deny', action_id: 'rev-1', reasons: ['baton:revoked'] });
  });

  it('answers 200 to unknown tokens, and refuses a client the token was not issued to', async () => {
    expect((await form('/oauth2/revoke', { token: 'not-a-token' }, basic('agent-platform'))).status).toBe(200);
    const [t1] = await fourLevels();
    const other = await form('/oauth2/revoke', { token: t1 as string }, basic('payments'));
    expect({ status: other.status, body: other.body }).toEqual({
      status: 400,
      body: { error: 'unauthorized_client', error_description: 'the token was not issued to this client' },
    });
    expect((await introspect(t1 as string)).active).toBe(true);
    const missing = await form('/oauth2/revoke', {}, basic('agent-platform'));
    expect({ status: missing.status, body: missing.body }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'token is required' },
    });
    const unauthenticated = await baton.fetch(`${baton.url}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=x',
    });
    expect(unauthenticated.status).toBe(401);
  });
});

describe('kill switches', () => {
  const admin = () => bearerOf(baton, 'ops-console', 'baton:admin');

  it('reaches every token of an agent across two chains, and audits one entry with the count', async () => {
    const user = () => mintUserToken('alice', { audience: baton.issuer });
    const a1 = await hop(await user(), 'orchestrator', tokenTypes.jwt, { audience: 'payments' });
    const a2 = await hop(a1, 'payments-subagent');
    const b1 = await hop(await user(), 'orchestrator', tokenTypes.jwt, { audience: 'calendar' });
    const other = await hop(await user(), 'payments-subagent', tokenTypes.jwt, { audience: 'payments' });
    const result = await postJson(baton, '/admin/revoke', { agent: 'orchestrator' }, await admin());
    expect(result.status).toBe(200);
    expect(result.body.revoked).toBeGreaterThanOrEqual(3);
    for (const t of [a1, a2, b1]) expect(await introspect(t)).toEqual({ active: false });
    expect((await introspect(other)).active).toBe(true);
  });

  it('revokes everything a user granted', async () => {
    const t = await hop(await mintUserToken('bob', { audience: baton.issuer }), 'payments-subagent', tokenTypes.jwt, {
      audience: 'payments',
    });
    expect((await postJson(baton, '/admin/revoke', { user: 'bob' }, await admin())).body).toEqual({ revoked: 1 });
    expect(await introspect(t)).toEqual({ active: false });
  });

  it('refuses a malformed request and callers without the admin scope', async () => {
    expect((await postJson(baton, '/admin/revoke', { agent: 'x', user: 'y' }, await admin())).body).toEqual({
      error: 'invalid_request',
      error_description: 'body must be {"agent": "<agent id>"}, {"user": "<user id>"} or {"action_id": "<action id>"}',
    });
    expect(
      (await postJson(baton, '/admin/revoke', { agent: 'x' }, { authorization: basic('agent-platform') })).status,
    ).toBe(403);
  });
});
