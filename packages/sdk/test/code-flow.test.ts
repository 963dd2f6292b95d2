import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSecret } from '../../../src/cli/demo-kit.js';
import { startTestBaton, type TestBaton } from '../../../test/support/baton.js';
import { read, submit } from '../../../test/support/consent.js';
import { demoJwk, refusal } from './support.js';
import {
  agentIdentity,
  authorizationUrl,
  batonClient,
  BatonError,
  redeemCode,
  validateCallback,
} from '../src/index.js';

let baton: TestBaton;
const redirectUri = 'http://localhost:3000/callback';

beforeAll(async () => {
  baton = await startTestBaton();
});
afterAll(() => baton?.close());

/** Alice signs in and answers the consent page; returns where Baton sends the browser back. */
async function consent(url: string, decision: 'approve' | 'deny'): Promise<string> {
  const login = await read(await fetch(url, { redirect: 'manual' }));
  const page = await submit(baton, '/oauth2/authorize/login', login, {
    username: 'alice',
    password: 'alice-demo-password',
  });
  const answered = await submit(baton, '/oauth2/authorize/consent', page, { decision });
  if (answered.location === null) throw new Error('the consent did not redirect');
  return answered.location;
}

describe('code flow helpers against a real Baton', () => {
  it('builds a PKCE S256 request naming the agent; the callback is checked; the code is redeemed with the actor proof', async () => {
    const request = await authorizationUrl({
      authorizationEndpoint: `${baton.issuer}/oauth2/authorize`,
      clientId: 'agent-platform',
      redirectUri,
      scope: ['payments:read', 'payments:transfer'],
      requestedActor: 'orchestrator',
    });
    const query = new URL(request.url).searchParams;
    expect(Object.fromEntries(query)).toEqual({
      response_type: 'code',
      client_id: 'agent-platform',
      redirect_uri: redirectUri,
      scope: 'payments:read payments:transfer',
      requested_actor: 'orchestrator',
      state: request.state,
      code_challenge: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      code_challenge_method: 'S256',
    });
    expect(request.codeVerifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const callback = await consent(request.url, 'approve');
    const code = validateCallback(callback, { state: request.state, issuer: baton.issuer });
    const client = batonClient({
      issuer: baton.issuer,
      client: { id: 'agent-platform', secret: demoSecret('agent-platform') },
    });
    const orchestrator = agentIdentity({
      id: 'orchestrator',
      privateJwk: demoJwk('orchestrator'),
      issuer: baton.issuer,
    });
    const token = await redeemCode(client, {
      code,
      codeVerifier: request.codeVerifier,
      redirectUri,
      actor: orchestrator,
    });
    expect(token.claims).toMatchObject({
      sub: 'alice',
      act: { sub: 'orchestrator' },
      actChain: ['alice', 'orchestrator'],
    });
    expect(token.refreshToken).toEqual(expect.any(String));
    // Single use: the same code again is refused, exactly.
    expect(
      await refusal(redeemCode(client, { code, codeVerifier: request.codeVerifier, redirectUri, actor: orchestrator })),
    ).toEqual({
      name: 'OAuthResponseError',
      code: 'invalid_grant',
      description: 'authorization code has already been used; tokens issued from it are revoked',
      status: 400,
    });
  });

  it('throws the error Baton sent back (access_denied) once iss and state match', async () => {
    const request = await authorizationUrl({
      authorizationEndpoint: `${baton.issuer}/oauth2/authorize`,
      clientId: 'agent-platform',
      redirectUri,
      scope: 'payments:read',
      requestedActor: 'orchestrator',
      state: 'chosen-state',
    });
    expect(request.state).toBe('chosen-state');
    const callback = await consent(request.url, 'deny');
    const error = (() => {
      try {
        validateCallback(callback, { state: 'chosen-state', issuer: baton.issuer });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toMatchObject({
      name: 'OAuthResponseError',
      code: 'access_denied',
      status: 302,
      description: 'the user declined',
    });
  });

  it('refuses a lone surrogate in the request rather than sending U+FFFD', async () => {
    await expect(
      authorizationUrl({
        authorizationEndpoint: 'https://baton.example/oauth2/authorize',
        clientId: 'agent-platform',
        redirectUri,
        requestedActor: 'orch\udc00',
      }),
    ).rejects.toMatchObject({
      name: 'BatonError',
      code: 'invalid_request',
      message: 'requested_actor contains a lone surrogate',
    });
  });

  it('refuses a callback from another issuer, for another state, repeated, or without a code, before reading its error', () => {
    const issuer = 'https://baton.example';
    const cases: [string, string][] = [
      ['https://app.example/cb?code=c&state=s', 'invalid_issuer'],
      ['https://app.example/cb?code=c&state=s&iss=https%3A%2F%2Fevil.example', 'invalid_issuer'],
      ['https://app.example/cb?error=access_denied&state=s&iss=https%3A%2F%2Fevil.example', 'invalid_issuer'],
      ['https://app.example/cb?code=c&state=other&iss=https%3A%2F%2Fbaton.example', 'invalid_state'],
      ['https://app.example/cb?error=access_denied&iss=https%3A%2F%2Fbaton.example', 'invalid_state'],
      ['https://app.example/cb?code=c&code=d&state=s&iss=https%3A%2F%2Fbaton.example', 'invalid_response'],
      ['https://app.example/cb?state=s&iss=https%3A%2F%2Fbaton.example', 'invalid_response'],
      ['not a url', 'invalid_response'],
    ];
    const codes = cases.map(([url]) => {
      try {
        validateCallback(url, { state: 's', issuer });
        return 'accepted';
      } catch (e) {
        expect(e).toBeInstanceOf(BatonError);
        return (e as BatonError).code;
      }
    });
    expect(codes).toEqual(cases.map(([, code]) => code));
    expect(
      validateCallback('https://app.example/cb?code=c&state=s&iss=https%3A%2F%2Fbaton.example', { state: 's', issuer }),
    ).toBe('c');
  });
});
