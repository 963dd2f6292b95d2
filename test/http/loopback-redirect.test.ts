import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redirectUriMatches } from '../../src/core/code-flow/redirect-uri.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { pkce, read, submit } from '../support/consent.js';
import { postToken } from '../support/baton.js';
import { registryFile } from '../support/registry-file.js';

const registered = [
  'http://127.0.0.1/callback',
  'http://[::1]:8080/cb?app=1',
  'https://app.example:8443/cb',
  'http://localhost:3000/console/callback',
];

describe('redirectUriMatches (RFC 8252 §7.3)', () => {
  it.each([
    ['exact loopback', 'http://127.0.0.1/callback'],
    ['127.0.0.1 on an ephemeral port', 'http://127.0.0.1:51234/callback'],
    ['127.0.0.1 on port 1', 'http://127.0.0.1:1/callback'],
    ['127.0.0.1 on port 65535', 'http://127.0.0.1:65535/callback'],
    ['[::1] on another port', 'http://[::1]:49152/cb?app=1'],
    ['[::1] with no port', 'http://[::1]/cb?app=1'],
    ['a registered non-loopback URI, exactly', 'https://app.example:8443/cb'],
    ['a registered localhost URI, exactly', 'http://localhost:3000/console/callback'],
  ])('matches %s', (_, uri) => {
    expect(redirectUriMatches(registered, uri)).toBe(true);
  });

  it.each([
    ['a different path', 'http://127.0.0.1:5000/callback2'],
    ['a trailing slash', 'http://127.0.0.1:5000/callback/'],
    ['no path', 'http://127.0.0.1:5000'],
    ['an added query', 'http://127.0.0.1:5000/callback?x=1'],
    ['a different query', 'http://[::1]:5000/cb?app=2'],
    ['a dropped query', 'http://[::1]:5000/cb'],
    ['a fragment', 'http://127.0.0.1:5000/callback#x'],
    ['https on loopback', 'https://127.0.0.1:5000/callback'],
    ['upper-case scheme', 'HTTP://127.0.0.1:5000/callback'],
    ['localhost instead of 127.0.0.1', 'http://localhost:5000/callback'],
    ['localhost on another port', 'http://localhost:3001/console/callback'],
    ['127.0.0.2', 'http://127.0.0.2:5000/callback'],
    ['127.1', 'http://127.1:5000/callback'],
    ['[::1] for a 127.0.0.1 registration', 'http://[::1]:5000/callback'],
    ['127.0.0.1 for a [::1] registration', 'http://127.0.0.1:8080/cb?app=1'],
    ['IPv4-mapped loopback', 'http://[::ffff:127.0.0.1]:5000/callback'],
    ['a non-loopback host with a port change', 'https://app.example:9443/cb'],
    ['a non-loopback host without the port', 'https://app.example/cb'],
    ['userinfo before an evil host', 'http://127.0.0.1@evil.example:8080/callback'],
    ['userinfo on loopback', 'http://evil@127.0.0.1:8080/callback'],
    ['127.0.0.1 as a subdomain', 'http://127.0.0.1.evil.example:8080/callback'],
    ['encoded dots', 'http://127.0.0.1:5000/%2e%2e/callback'],
    ['dot segments', 'http://127.0.0.1:5000/x/../callback'],
    ['an encoded path', 'http://127.0.0.1:5000/%63allback'],
    ['a backslash', 'http://127.0.0.1:5000\\@evil.example/callback'],
    ['port 0', 'http://127.0.0.1:0/callback'],
    ['a leading zero port', 'http://127.0.0.1:05000/callback'],
    ['port 65536', 'http://127.0.0.1:65536/callback'],
    ['an empty port', 'http://127.0.0.1:/callback'],
    ['a trailing dot host', 'http://127.0.0.1.:5000/callback'],
    ['a space', 'http://127.0.0.1:5000/callback '],
  ])('refuses %s', (_, uri) => {
    expect(redirectUriMatches(registered, uri)).toBe(false);
  });
});

describe('loopback redirect URIs at /oauth2/authorize', () => {
  let baton: MemoryBaton;
  beforeAll(async () => {
    const registry = registryFile((doc) => {
      const console = doc.clients.find((c) => c.client_id === 'agent-console');
      if (console === undefined) throw new Error('agent-console is not in the demo registry');
      console.redirect_uris = ['http://127.0.0.1/console/callback', 'http://[::1]/console/callback'];
    });
    baton = await memoryBaton({ BATON_REGISTRY: registry });
  });
  afterAll(async () => baton.close());

  const authorize = (redirectUri: string, challenge: string): Promise<Response> =>
    baton.fetch(
      `${baton.url}/oauth2/authorize?${new URLSearchParams({
        response_type: 'code',
        client_id: 'agent-console',
        redirect_uri: redirectUri,
        scope: 'payments:read',
        state: 'st',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      })}`,
      { redirect: 'manual' },
    );

  it.each([['http://127.0.0.1:53124/console/callback'], ['http://[::1]:61000/console/callback']])(
    'signs in and redeems a code for %s, a registered loopback URI on another port',
    async (redirectUri) => {
      const { verifier, challenge } = pkce();
      const loginResponse = await authorize(redirectUri, challenge);
      expect(loginResponse.status).toBe(200);
      const login = await read(loginResponse);
      const consent = await submit(baton, '/oauth2/authorize/login', login, {
        username: 'alice',
        password: 'alice-demo-password',
      });
      const approved = await baton.fetch(`${baton.url}/oauth2/authorize/consent`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `baton_csrf=${consent.cookie ?? ''}` },
        body: new URLSearchParams({ ...consent.fields, decision: 'approve' }),
      });
      // CSP cannot name an IPv6 literal: the form ends in a page that sends the browser on (see browser.ts).
      const target = approved.headers.get('location') ?? approved.headers.get('refresh')?.replace(/^0; url=/, '') ?? '';
      const location = new URL(target);
      expect(`${location.origin}${location.pathname}`).toBe(redirectUri);
      const code = location.searchParams.get('code') ?? '';
      // The code is bound to the URI as used, port included: another port is refused.
      const otherPort = redirectUri.replace(/:(\d+)\//, ':1234/');
      const wrong = await postToken(
        baton,
        {
          grant_type: 'authorization_code',
          code,
          redirect_uri: otherPort,
          code_verifier: verifier,
          client_id: 'agent-console',
        },
        {},
      );
      expect(wrong.status).toBe(400);
      expect(wrong.body).toEqual({
        error: 'invalid_grant',
        error_description: 'redirect_uri does not match the authorization request',
      });
    },
  );

  it('redeems with the exact redirect URI used, port included', async () => {
    const { verifier, challenge } = pkce();
    const redirectUri = 'http://127.0.0.1:40001/console/callback';
    const login = await read(await authorize(redirectUri, challenge));
    const consent = await submit(baton, '/oauth2/authorize/login', login, {
      username: 'alice',
      password: 'alice-demo-password',
    });
    const approved = await submit(baton, '/oauth2/authorize/consent', consent, { decision: 'approve' });
    const code = new URL(approved.location ?? '').searchParams.get('code') ?? '';
    const token = await postToken(
      baton,
      {
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri,
        code_verifier: verifier,
        client_id: 'agent-console',
      },
      {},
    );
    expect(token.status).toBe(200);
    expect(token.body.token_type).toBe('Bearer');
  });

  it.each([
    ['localhost', 'http://localhost:53124/console/callback'],
    ['https', 'https://127.0.0.1:53124/console/callback'],
    ['127.0.0.2', 'http://127.0.0.2:53124/console/callback'],
    ['a different path', 'http://127.0.0.1:53124/console/other'],
    ['a query', 'http://127.0.0.1:53124/console/callback?x=1'],
    ['userinfo', 'http://127.0.0.1@evil.example:53124/console/callback'],
    ['encoded dots', 'http://127.0.0.1:53124/console/%2e%2e/console/callback'],
  ])('answers %s with the error page, never a redirect', async (_, redirectUri) => {
    const response = await authorize(redirectUri, pkce().challenge);
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(await response.text()).toContain('The address to return to is not registered for this application.');
  });
});
