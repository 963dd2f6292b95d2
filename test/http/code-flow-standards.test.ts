import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { basic, bearerOf, grants, postJson, postToken, tokenTypes } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { consentedCode, isActive, redeemCode, redirectUri, refresh, stillActiveAfter } from '../support/consent.js';
import { jwtBearerAssertionType } from '../../src/core/clients/client-auth.js';

let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton();
});
afterAll(async () => {
  await baton?.close();
});

const outcome = (r: { status: number; body: unknown }) => ({ status: r.status, body: r.body });

/** The code flow's token request with the actor token and type as given: '' leaves a parameter out. */
async function redeemWith(actorToken: string, actorTokenType: string) {
  const { code, verifier } = await consentedCode(baton);
  const params: Record<string, string> = {
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    code_verifier: verifier,
    actor_token: actorToken,
    actor_token_type: actorTokenType,
  };
  for (const [k, v] of Object.entries(params)) if (v === '') delete params[k];
  return postToken(baton, params);
}

const orchestratorToken = async () => {
  const issued = await postToken(
    baton,
    {
      grant_type: 'client_credentials',
      client_assertion_type: jwtBearerAssertionType,
      client_assertion: await mintAgentAssertion('orchestrator', baton.issuer),
    },
    {},
  );
  return issued.body.access_token as string;
};

describe('actor_token at the code flow token request (draft-oauth-ai-agents-on-behalf-of-user-02)', () => {
  it.each([
    ['an assertion without actor_token_type', () => mintAgentAssertion('orchestrator', baton.issuer), ''],
    ['an agent token without actor_token_type', orchestratorToken, ''],
    ['an assertion with actor_token_type jwt', () => mintAgentAssertion('orchestrator', baton.issuer), tokenTypes.jwt],
    ['an agent token with actor_token_type access_token', orchestratorToken, tokenTypes.accessToken],
  ])('accepts %s', async (_name, actor, type) => {
    const result = await redeemWith(await actor(), type);
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    expect(decodeJwt(result.body.access_token as string)).toMatchObject({ sub: 'alice', act: { sub: 'orchestrator' } });
  });

  it.each([
    ['a malformed actor_token without a type', async () => 'not-a-jwt', '', 'actor_token is not a well-formed JWT'],
    [
      "another agent's assertion without a type",
      () => mintAgentAssertion('payments-subagent', baton.issuer),
      '',
      'actor_token does not prove the requested actor',
    ],
    [
      'an unsupported actor_token_type',
      () => mintAgentAssertion('orchestrator', baton.issuer),
      tokenTypes.idToken,
      `actor_token_type "${tokenTypes.idToken}" is not supported`,
    ],
  ])('refuses %s', async (_name, actor, type, description) => {
    expect(outcome(await redeemWith(await actor(), type))).toEqual({
      status: 400,
      body: { error: 'invalid_grant', error_description: description },
    });
  });

  it('still requires actor_token_type with actor_token in a token exchange (RFC 8693)', async () => {
    const result = await postToken(baton, {
      grant_type: grants.exchange,
      subject_token: await mintUserToken('alice', { audience: baton.issuer }),
      subject_token_type: tokenTypes.jwt,
      actor_token: await mintAgentAssertion('orchestrator', baton.issuer),
      audience: 'payments',
    });
    expect(outcome(result)).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'actor_token_type is required with actor_token' },
    });
  });
});

/** POSTs to /oauth2/revoke; returns status and raw body text. */
async function revoke(form: Record<string, string>, authorization: string = basic('agent-platform')) {
  const response = await baton.fetch(`${baton.url}/oauth2/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
    body: new URLSearchParams(form),
  });
  return { status: response.status, text: await response.text() };
}

/** A consented grant, redeemed: its access token, refresh token, and a token exchanged down from the access token. */
async function grantWithTokens() {
  const { code, verifier } = await consentedCode(baton);
  const issued = await redeemCode(baton, code, verifier);
  expect(issued.status).toBe(200);
  const down = await postToken(baton, {
    grant_type: grants.exchange,
    subject_token: issued.body.access_token as string,
    subject_token_type: tokenTypes.accessToken,
    actor_token: await mintAgentAssertion('payments-subagent', baton.issuer),
    actor_token_type: tokenTypes.jwt,
    scope: 'payments:transfer',
  });
  expect(down.status).toBe(200);
  return {
    access: issued.body.access_token as string,
    refreshToken: issued.body.refresh_token as string,
    derived: down.body.access_token as string,
  };
}

describe('RFC 7009 revocation of refresh tokens', () => {
  it.each([
    ['without a hint', {}],
    ['with token_type_hint=refresh_token', { token_type_hint: 'refresh_token' }],
    ['with the wrong hint (access_token)', { token_type_hint: 'access_token' }],
    ['with an unknown hint, which is ignored', { token_type_hint: 'id_token' }],
  ])('revokes the refresh token, its family and every access token of its grant, %s', async (_name, hint) => {
    const { access, refreshToken, derived } = await grantWithTokens();
    expect(await revoke({ token: refreshToken, ...hint })).toEqual({ status: 200, text: '' });
    expect(outcome(await refresh(baton, refreshToken))).toEqual({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'refresh token has been revoked' },
    });
    expect(await stillActiveAfter([baton], [access, derived], 1000)).toEqual([]);
  });

  it('revokes the live family when the client revokes a refresh token it has already rotated', async () => {
    const { refreshToken } = await grantWithTokens();
    const rotated = await refresh(baton, refreshToken);
    expect(rotated.status).toBe(200);
    expect(await revoke({ token: refreshToken })).toEqual({ status: 200, text: '' });
    expect(outcome(await refresh(baton, rotated.body.refresh_token as string))).toEqual({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'refresh token has been revoked' },
    });
    expect(await stillActiveAfter([baton], [rotated.body.access_token as string], 1000)).toEqual([]);
  });

  it('still revokes an access token with token_type_hint=refresh_token, and only what derives from it', async () => {
    const { access, refreshToken, derived } = await grantWithTokens();
    expect(await revoke({ token: derived, token_type_hint: 'refresh_token' })).toEqual({ status: 200, text: '' });
    expect(await stillActiveAfter([baton], [derived], 1000)).toEqual([]);
    expect(await isActive(baton, access)).toBe(true);
    expect((await refresh(baton, refreshToken)).status).toBe(200);
  });

  it('lets a public client revoke its own refresh token', async () => {
    const publicClient = {
      clientId: 'agent-console',
      redirectUri: 'http://localhost:3000/console/callback',
      scope: 'payments:read',
      agent: null,
    };
    const { code, verifier } = await consentedCode(baton, publicClient);
    const tokens = await postToken(
      baton,
      {
        grant_type: 'authorization_code',
        client_id: publicClient.clientId,
        code,
        redirect_uri: publicClient.redirectUri,
        code_verifier: verifier,
      },
      {},
    );
    expect(tokens.status).toBe(200);
    const response = await baton.fetch(`${baton.url}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: publicClient.clientId, token: tokens.body.refresh_token as string }),
    });
    expect({ status: response.status, text: await response.text() }).toEqual({ status: 200, text: '' });
    const again = await postToken(
      baton,
      {
        grant_type: 'refresh_token',
        client_id: publicClient.clientId,
        refresh_token: tokens.body.refresh_token as string,
      },
      {},
    );
    expect(outcome(again)).toEqual({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'refresh token has been revoked' },
    });
    expect(await stillActiveAfter([baton], [tokens.body.access_token as string], 1000)).toEqual([]);
  });

  it("answers 200 to an unknown token and to another tenant's refresh token, and leaves them be", async () => {
    const { access, refreshToken } = await grantWithTokens();
    expect(await revoke({ token: 'no-such-refresh-token', token_type_hint: 'refresh_token' })).toEqual({
      status: 200,
      text: '',
    });
    expect(await revoke({ token: refreshToken }, basic('globex-platform'))).toEqual({ status: 200, text: '' });
    expect(await revoke({ token: access }, basic('globex-platform'))).toEqual({ status: 200, text: '' });
    expect(await isActive(baton, access)).toBe(true);
    expect((await refresh(baton, refreshToken)).status).toBe(200);
  });

  it('refuses, and audits, a client of the same tenant revoking a refresh token issued to another', async () => {
    const { access, refreshToken } = await grantWithTokens();
    const response = await baton.fetch(`${baton.url}/oauth2/revoke`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basic('ops-console'),
        'x-request-id': 'foreign-refresh',
      },
      body: new URLSearchParams({ token: refreshToken }),
    });
    expect({ status: response.status, body: await response.json() }).toEqual({
      status: 400,
      body: { error: 'unauthorized_client', error_description: 'the token was not issued to this client' },
    });
    const [entry] = baton.auditEntries().filter((e) => e.request_id === 'foreign-refresh');
    expect(entry ?? {}).toMatchObject({
      type: 'token.revocation',
      decision: 'refused',
      client: 'ops-console',
      tenant: 'acme',
      reason: 'unauthorized_client: the token was not issued to this client',
    });
    expect(await isActive(baton, access)).toBe(true);
    expect((await refresh(baton, refreshToken)).status).toBe(200);
  });

  it('audits the revocation of a grant with how many tokens it reached', async () => {
    const { refreshToken } = await grantWithTokens();
    const response = await baton.fetch(`${baton.url}/oauth2/revoke`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basic('agent-platform'),
        'x-request-id': 'refresh-revoked',
      },
      body: new URLSearchParams({ token: refreshToken }),
    });
    expect(response.status).toBe(200);
    const entries = baton.auditEntries().filter((e) => e.request_id === 'refresh-revoked');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      type: 'token.revocation',
      decision: 'applied',
      client: 'agent-platform',
      root_grant: expect.any(String),
      reason: expect.stringMatching(
        /^revoked grant \S+ \(its refresh tokens and every token issued under it\): 2 tokens$/,
      ),
    });
  });
});

describe('kill switches reach code-flow grants', () => {
  const admin = () => bearerOf(baton, 'ops-console', 'baton:admin');

  it.each([
    ['the user', { user: 'alice' }],
    ['the agent consented to', { agent: 'orchestrator' }],
  ])('revoking everything of %s also stops its refresh tokens and unredeemed codes', async (_name, target) => {
    const { access, refreshToken, derived } = await grantWithTokens();
    const pending = await consentedCode(baton);
    const result = await postJson(baton, '/admin/revoke', target, await admin());
    expect(result.status).toBe(200);
    expect(outcome(await refresh(baton, refreshToken))).toEqual({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'refresh token has been revoked' },
    });
    expect(outcome(await redeemCode(baton, pending.code, pending.verifier))).toEqual({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'authorization code has been revoked' },
    });
    expect(await stillActiveAfter([baton], [access, derived], 1000)).toEqual([]);
    // A grant made after the kill switch works.
    const { code, verifier } = await consentedCode(baton);
    expect((await redeemCode(baton, code, verifier)).status).toBe(200);
  });
});
