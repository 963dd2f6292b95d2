import { createHash, randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion } from '../../src/cli/demo-kit.js';
import { formActionSource } from '../../src/http/routes/browser.js';
import { basic, grants, postJson, postToken, tokenTypes } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton({ BATON_CODE_LIFETIME: '1' });
});
afterAll(async () => {
  await baton?.close();
});

const redirectUri = 'http://localhost:3000/callback';
const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};
const grant = [
  { type: 'payment_initiation', actions: ['initiate'], instructedAmount: { currency: 'EUR', amount: '100.00' } },
];

interface Page {
  status: number;
  html: string;
  location: string | null;
  cookie: string | undefined;
  fields: Record<string, string>;
}

async function read(response: Response, cookie?: string): Promise<Page> {
  const html = await response.text();
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g))
    fields[m[1] as string] = (m[2] as string).replaceAll('&amp;', '&');
  const set = response.headers.get('set-cookie');
  return {
    status: response.status,
    html,
    location: response.headers.get('location'),
    cookie: set?.match(/baton_csrf=([^;]+)/)?.[1] ?? cookie,
    fields,
  };
}

async function authorize(params: Record<string, string>): Promise<Page> {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: 'agent-platform',
    redirect_uri: redirectUri,
    scope: 'payments:read payments:transfer',
    state: 'xyz',
    code_challenge_method: 'S256',
    requested_actor: 'orchestrator',
    ...params,
  });
  for (const [k, v] of Object.entries(params)) if (v === '') query.delete(k);
  return read(await baton.fetch(`${baton.url}/oauth2/authorize?${query}`, { redirect: 'manual' }));
}

async function submit(path: string, page: Page, extra: Record<string, string>, cookie = page.cookie): Promise<Page> {
  const response = await baton.fetch(`${baton.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(cookie === undefined ? {} : { cookie: `baton_csrf=${cookie}` }),
    },
    body: new URLSearchParams({ ...page.fields, ...extra }),
  });
  return read(response, cookie);
}

/** Authorization request, sign-in as alice, approval: returns the code and the PKCE verifier. */
async function consentedCode(
  params: Record<string, string> = {},
): Promise<{ code: string; verifier: string; consentPage: Page }> {
  const { verifier, challenge } = pkce();
  const login = await authorize({ code_challenge: challenge, authorization_details: JSON.stringify(grant), ...params });
  expect(login.status, login.html).toBe(200);
  const consentPage = await submit('/oauth2/authorize/login', login, {
    username: 'alice',
    password: 'alice-demo-password',
  });
  expect(consentPage.status, consentPage.html).toBe(200);
  const approved = await submit('/oauth2/authorize/consent', consentPage, { decision: 'approve' });
  expect(approved.status).toBe(302);
  const location = new URL(approved.location as string);
  expect(`${location.origin}${location.pathname}`).toBe(redirectUri);
  expect(location.searchParams.get('state')).toBe('xyz');
  expect(location.searchParams.get('iss')).toBe(baton.issuer);
  return { code: location.searchParams.get('code') as string, verifier, consentPage };
}

/** The token request of the flow; an `extra` value of '' leaves that parameter out. */
const redeem = async (code: string, verifier: string | undefined, extra: Record<string, string> = {}) => {
  const params: Record<string, string> = {
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    ...(verifier === undefined ? {} : { code_verifier: verifier }),
    actor_token: await mintAgentAssertion('orchestrator', baton.issuer),
    actor_token_type: tokenTypes.jwt,
    ...extra,
  };
  for (const [k, v] of Object.entries(params)) if (v === '') delete params[k];
  return postToken(baton, params);
};

const introspect = async (token: string) => {
  const response = await baton.fetch(`${baton.url}/oauth2/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('payments') },
    body: new URLSearchParams({ token }),
  });
  return ((await response.json()) as { active: boolean }).active;
};

describe('the on-behalf-of code flow', () => {
  it('runs from consent to a decision, with the audit chain from the consent on', async () => {
    const { code, verifier, consentPage } = await consentedCode();
    expect(consentPage.html).toContain(
      '<strong>Acme Agent Platform</strong> (<code>agent-platform</code>) asks for access.',
    );
    expect(consentPage.html).toContain(
      'let the agent <strong>Acme Orchestrator</strong> (<code>orchestrator</code>) act for you',
    );
    expect(consentPage.html).toContain('<li>transfer up to 100.00 EUR</li>');
    expect(consentPage.html).toContain('<li>use the permission <code>payments:transfer</code></li>');

    const tokens = await redeem(code, verifier);
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    expect(tokens.body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 300,
      scope: 'payments:read payments:transfer',
      authorization_details: grant,
      refresh_token: expect.any(String),
    });
    expect(decodeJwt(tokens.body.access_token as string)).toMatchObject({
      sub: 'alice',
      act: { sub: 'orchestrator' },
      client_id: 'agent-platform',
      // Without RFC 8707 resource: every acme resource server offering the scopes (the payments API
      // and the example payments MCP server).
      aud: ['https://payments.example', 'http://localhost:3001/mcp'],
      tenant: 'acme',
      authorization_details: grant,
    });

    const down = await postToken(baton, {
      grant_type: grants.exchange,
      subject_token: tokens.body.access_token as string,
      subject_token_type: tokenTypes.accessToken,
      actor_token: await mintAgentAssertion('payments-subagent', baton.issuer),
      actor_token_type: tokenTypes.jwt,
      scope: 'payments:transfer',
    });
    expect(decodeJwt(down.body.access_token as string).act).toEqual({
      sub: 'payments-subagent',
      act: { sub: 'orchestrator' },
    });
    const decision = await postJson(
      baton,
      '/authorize',
      {
        token: down.body.access_token,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount: 50, currency: 'EUR' },
        action_id: 'flow-1',
      },
      { authorization: basic('payments') },
    );
    expect(decision.body).toEqual({ decision: 'allow', action_id: 'flow-1', reasons: ['transfer-up-to-100'] });

    const auditor = await postToken(
      baton,
      { grant_type: 'client_credentials', scope: 'baton:audit' },
      { authorization: basic('ops-console') },
    );
    const trail = (await (
      await baton.fetch(`${baton.url}/audit/actions/flow-1`, {
        headers: { authorization: `Bearer ${auditor.body.access_token as string}` },
      })
    ).json()) as { entries: { verified: boolean; entry: Record<string, unknown> }[] };
    expect(trail.entries.map((e) => [e.entry.type, e.entry.decision, e.verified])).toEqual([
      ['authorization.consent', 'granted', true],
      ['token.authorization_code', 'granted', true],
      ['token.exchange', 'granted', true],
      ['decision', 'allow', true],
    ]);
  });

  it('works for a public client with PKCE alone', async () => {
    const { verifier, challenge } = pkce();
    const login = await read(
      await baton.fetch(
        `${baton.url}/oauth2/authorize?${new URLSearchParams({ response_type: 'code', client_id: 'agent-console', redirect_uri: 'http://localhost:3000/console/callback', scope: 'payments:read', code_challenge: challenge, code_challenge_method: 'S256' })}`,
        { redirect: 'manual' },
      ),
    );
    const consent = await submit('/oauth2/authorize/login', login, {
      username: 'alice',
      password: 'alice-demo-password',
    });
    const approved = await submit('/oauth2/authorize/consent', consent, { decision: 'approve' });
    const code = new URL(approved.location as string).searchParams.get('code') as string;
    const tokens = await postToken(
      baton,
      {
        grant_type: 'authorization_code',
        client_id: 'agent-console',
        code,
        redirect_uri: 'http://localhost:3000/console/callback',
        code_verifier: verifier,
      },
      {},
    );
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    expect(decodeJwt(tokens.body.access_token as string)).toMatchObject({
      sub: 'alice',
      client_id: 'agent-console',
      scope: 'payments:read',
    });
    expect(decodeJwt(tokens.body.access_token as string).act).toBeUndefined();
  });

  it('rotates refresh tokens, keeps act and details, and revokes the family on replay', async () => {
    const { code, verifier } = await consentedCode();
    const first = await redeem(code, verifier);
    const second = await postToken(baton, {
      grant_type: 'refresh_token',
      refresh_token: first.body.refresh_token as string,
    });
    expect(second.status).toBe(200);
    expect(decodeJwt(second.body.access_token as string)).toMatchObject({
      sub: 'alice',
      act: { sub: 'orchestrator' },
      authorization_details: grant,
    });
    const replay = await postToken(baton, {
      grant_type: 'refresh_token',
      refresh_token: first.body.refresh_token as string,
    });
    expect(replay.body).toEqual({
      error: 'invalid_grant',
      error_description: 'refresh token has already been used; its family is revoked',
    });
    expect(await introspect(first.body.access_token as string)).toBe(false);
    expect(await introspect(second.body.access_token as string)).toBe(false);
    const afterReplay = await postToken(baton, {
      grant_type: 'refresh_token',
      refresh_token: second.body.refresh_token as string,
    });
    expect(afterReplay.body).toEqual({ error: 'invalid_grant', error_description: 'refresh token has been revoked' });
  });
});

describe('the browser pages', () => {
  it('allow forms to end only at Baton and the validated redirect URI origin, and are never cached, framed, sniffed or referred', async () => {
    const login = await authorize({ code_challenge: pkce().challenge });
    const consentResponse = await baton.fetch(`${baton.url}/oauth2/authorize/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `baton_csrf=${login.cookie as string}` },
      body: new URLSearchParams({ ...login.fields, username: 'alice', password: 'alice-demo-password' }),
    });
    const pageHeaders = {
      'cache-control': 'no-store',
      'content-security-policy':
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http://localhost:3000; frame-ancestors 'none'; base-uri 'none'",
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      'content-language': 'en',
    };
    const loginResponse = await baton.fetch(
      `${baton.url}/oauth2/authorize?${new URLSearchParams({ response_type: 'code', client_id: 'agent-platform', redirect_uri: redirectUri, scope: 'payments:read', code_challenge: pkce().challenge, code_challenge_method: 'S256' })}`,
    );
    for (const response of [loginResponse, consentResponse]) {
      expect(response.status).toBe(200);
      expect(Object.fromEntries(Object.keys(pageHeaders).map((h) => [h, response.headers.get(h)]))).toEqual(
        pageHeaders,
      );
    }
    const errorResponse = await baton.fetch(`${baton.url}/oauth2/authorize?client_id=nobody`);
    expect(errorResponse.headers.get('content-security-policy')).toBe(
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
  });

  it('sends the code in a redirect that is never cached', async () => {
    const login = await authorize({ code_challenge: pkce().challenge });
    const consent = await submit('/oauth2/authorize/login', login, {
      username: 'alice',
      password: 'alice-demo-password',
    });
    const response = await baton.fetch(`${baton.url}/oauth2/authorize/consent`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: `baton_csrf=${consent.cookie as string}`,
      },
      body: new URLSearchParams({ ...consent.fields, decision: 'approve' }),
    });
    expect(response.status).toBe(302);
    expect(new URL(response.headers.get('location') as string).searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{44}$/);
    expect({
      cacheControl: response.headers.get('cache-control'),
      referrer: response.headers.get('referrer-policy'),
    }).toEqual({ cacheControl: 'no-store', referrer: 'no-referrer' });
  });

  it('marks JSON answers nosniff too', async () => {
    const response = await baton.fetch(`${baton.url}/.well-known/oauth-authorization-server`);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it.each([
    ['https://client.example/cb?x=1', 'https://client.example'],
    ['http://127.0.0.1:53682/callback', 'http://127.0.0.1:53682'],
    ['https://client.example:8443/a/b', 'https://client.example:8443'],
    ['com.example.app:/oauth2redirect', 'com.example.app:'],
    ['http://[::1]:8080/callback', undefined],
  ])('names %s in form-action as %s', (uri, source) => {
    expect(formActionSource(uri)).toBe(source);
  });

  it('answers one consent once, however many times and however fast its form is sent', async () => {
    const login = await authorize({ code_challenge: pkce().challenge });
    const consent = await submit('/oauth2/authorize/login', login, {
      username: 'alice',
      password: 'alice-demo-password',
    });
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        submit('/oauth2/authorize/consent', consent, { decision: i % 2 === 0 ? 'approve' : 'deny' }),
      ),
    );
    const redirects = answers.filter((a) => a.status === 302);
    expect(redirects).toHaveLength(1);
    const refused = answers.filter((a) => a.status !== 302);
    expect(refused.map((a) => a.status)).toEqual(Array(11).fill(400));
    for (const page of refused)
      expect(page.html).toContain(
        '<p role="alert">This request has already been answered. Start again from the application.</p>',
      );
    const again = await submit('/oauth2/authorize/consent', consent, { decision: 'approve' });
    expect(again.status).toBe(400);
  });

  it('tells an expired sign-in request from a forged one', async () => {
    const forged = await submit(
      '/oauth2/authorize/login',
      {
        status: 200,
        html: '',
        location: null,
        cookie: 'x'.repeat(44),
        fields: { request: 'not-a-jwt', csrf_token: 'x'.repeat(44) },
      },
      { username: 'alice', password: 'alice-demo-password' },
    );
    expect(forged.status).toBe(403);
    expect(forged.html).toContain(
      '<p role="alert">This form has expired or was not sent from this site. Start again from the application.</p>',
    );
  });

  it('speaks German or French when asked, and English otherwise', async () => {
    const ask = async (language: string) => {
      const response = await baton.fetch(`${baton.url}/oauth2/authorize?client_id=nobody`, {
        headers: { 'accept-language': language },
      });
      const html = await response.text();
      return {
        language: response.headers.get('content-language'),
        lang: /<html lang="([^"]+)">/.exec(html)?.[1],
        alert: /<p role="alert">([^<]+)<\/p>/.exec(html)?.[1],
      };
    };
    expect(await ask('de-CH, de;q=0.9, en;q=0.5')).toEqual({
      language: 'de',
      lang: 'de',
      alert: 'Die Anwendung, die Sie hierher geschickt hat, ist nicht für die Anmeldung registriert.',
    });
    expect(await ask('fr')).toEqual({
      language: 'fr',
      lang: 'fr',
      alert: 'L’application qui vous a envoyé ici n’est pas enregistrée pour la connexion.',
    });
    expect(await ask('ja, es;q=0.8')).toEqual({
      language: 'en',
      lang: 'en',
      alert: 'The application that sent you here is not registered for sign-in.',
    });
  });
});

describe('code flow refusals', () => {
  const redirectError = (page: Page) => {
    expect(page.status).toBe(302);
    const url = new URL(page.location as string);
    return {
      error: url.searchParams.get('error'),
      description: url.searchParams.get('error_description'),
      state: url.searchParams.get('state'),
    };
  };

  it.each([
    ['missing PKCE', { code_challenge: '' }, 'invalid_request', 'code_challenge is required (PKCE)'],
    [
      'plain PKCE',
      { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' },
      'invalid_request',
      'code_challenge_method must be S256',
    ],
    [
      'an unknown requested_actor',
      { code_challenge: pkce().challenge, requested_actor: 'ghost' },
      'invalid_request',
      'requested_actor is not a registered agent of this tenant',
    ],
    [
      "another tenant's requested_actor",
      { code_challenge: pkce().challenge, requested_actor: 'globex-assistant' },
      'invalid_request',
      'requested_actor is not a registered agent of this tenant',
    ],
    [
      'a scope the client may not request',
      { code_challenge: pkce().challenge, scope: 'ledger:read' },
      'invalid_scope',
      'scope "ledger:read" exceeds what this client may request',
    ],
    [
      'a response_type other than code',
      { code_challenge: pkce().challenge, response_type: 'token' },
      'invalid_request',
      'response_type must be code',
    ],
  ])('sends %s back to the client with its state', async (_name, params, error, description) => {
    expect(redirectError(await authorize(params))).toEqual({ error, description, state: 'xyz' });
  });

  it('refuses a requested_actor the client may not request', async () => {
    const page = await read(
      await baton.fetch(
        `${baton.url}/oauth2/authorize?${new URLSearchParams({ response_type: 'code', client_id: 'agent-console', redirect_uri: 'http://localhost:3000/console/callback', scope: 'payments:read', code_challenge: pkce().challenge, code_challenge_method: 'S256', requested_actor: 'payments-subagent', state: 's' })}`,
        { redirect: 'manual' },
      ),
    );
    expect(redirectError(page)).toEqual({
      error: 'invalid_request',
      description: 'requested_actor is not an agent this client may request',
      state: 's',
    });
  });

  it.each([
    ['an unknown client', { client_id: 'nobody' }, 'The application that sent you here is not registered for sign-in.'],
    [
      'an unregistered redirect URI',
      { redirect_uri: 'https://evil.example/cb' },
      'The address to return to is not registered for this application.',
    ],
  ])('shows an error page, never a redirect, for %s', async (_name, params, message) => {
    const page = await authorize({ code_challenge: pkce().challenge, ...params });
    expect({ status: page.status, location: page.location }).toEqual({ status: 400, location: null });
    expect(page.html).toContain(`<p role="alert">${message}</p>`);
  });

  it('shows an error page for a repeated parameter', async () => {
    const page = await read(
      await baton.fetch(`${baton.url}/oauth2/authorize?client_id=agent-platform&client_id=agent-console`, {
        redirect: 'manual',
      }),
    );
    expect({ status: page.status, location: page.location }).toEqual({ status: 400, location: null });
    expect(page.html).toContain('<p role="alert">parameter client_id is repeated</p>');
  });

  it('refuses a sign-in or consent form without its CSRF token', async () => {
    const login = await authorize({ code_challenge: pkce().challenge });
    const noCookie = await submit(
      '/oauth2/authorize/login',
      login,
      { username: 'alice', password: 'alice-demo-password' },
      'forged',
    );
    expect(noCookie.status).toBe(403);
    const consent = await submit('/oauth2/authorize/login', login, {
      username: 'alice',
      password: 'alice-demo-password',
    });
    const withoutField = await submit(
      '/oauth2/authorize/consent',
      { ...consent, fields: { request: consent.fields.request as string } },
      { decision: 'approve' },
    );
    expect(withoutField.status).toBe(403);
    expect(withoutField.html).toContain('This form has expired or was not sent from this site.');
  });

  it('refuses a wrong password and lets the user try again', async () => {
    const login = await authorize({ code_challenge: pkce().challenge });
    const again = await submit('/oauth2/authorize/login', login, { username: 'alice', password: 'nope' });
    expect(again.status).toBe(200);
    expect(again.html).toContain('<p class="error" role="alert">The user name or password is not right.</p>');
  });

  it('sends a denial back as access_denied', async () => {
    const login = await authorize({ code_challenge: pkce().challenge });
    const consent = await submit('/oauth2/authorize/login', login, {
      username: 'alice',
      password: 'alice-demo-password',
    });
    expect(redirectError(await submit('/oauth2/authorize/consent', consent, { decision: 'deny' }))).toEqual({
      error: 'access_denied',
      description: 'the user declined',
      state: 'xyz',
    });
  });

  it.each([
    [
      'a wrong verifier',
      async (code: string) => redeem(code, pkce().verifier),
      'invalid_grant',
      'code_verifier does not match the code_challenge',
    ],
    ['no verifier', async (code: string) => redeem(code, undefined), 'invalid_request', 'code_verifier is required'],
    [
      'a wrong redirect URI',
      async (code: string, verifier: string) => redeem(code, verifier, { redirect_uri: 'http://localhost:3000/other' }),
      'invalid_grant',
      'redirect_uri does not match the authorization request',
    ],
    [
      'no actor token',
      async (code: string, verifier: string) => redeem(code, verifier, { actor_token: '', actor_token_type: '' }),
      'invalid_grant',
      'actor_token is required: the code was issued for agent "orchestrator"',
    ],
    [
      'an actor token for another agent',
      async (code: string, verifier: string) =>
        redeem(code, verifier, { actor_token: await mintAgentAssertion('payments-subagent', baton.issuer) }),
      'invalid_grant',
      'actor_token does not prove the requested actor',
    ],
    [
      'an unknown code',
      async (_code: string, verifier: string) => redeem('nonsense', verifier),
      'invalid_grant',
      'authorization code is invalid',
    ],
  ])('refuses a token request with %s', async (_name, send, error, description) => {
    const { code, verifier } = await consentedCode();
    const result = await send(code, verifier);
    expect({ status: result.status, body: result.body }).toEqual({
      status: 400,
      body: { error, error_description: description },
    });
  });

  it('refuses a reused code and revokes the tokens issued from it', async () => {
    const { code, verifier } = await consentedCode();
    const first = await redeem(code, verifier);
    expect(first.status).toBe(200);
    const again = await redeem(code, verifier);
    expect(again.body).toEqual({
      error: 'invalid_grant',
      error_description: 'authorization code has already been used; tokens issued from it are revoked',
    });
    expect(await introspect(first.body.access_token as string)).toBe(false);
  });

  it('refuses an expired code', async () => {
    const { code, verifier } = await consentedCode();
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect((await redeem(code, verifier)).body).toEqual({
      error: 'invalid_grant',
      error_description: 'authorization code has expired',
    });
  });
});
