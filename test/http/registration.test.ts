import { discoverAuthorizationServerMetadata, registerClient } from '@modelcontextprotocol/sdk/client/auth.js';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import type { RegistryDocument } from '../../src/core/registry/document.js';
import { basic, bearerOf, postJson, postToken, type PostResult } from '../support/baton.js';
import { consentedCode, pkce, read } from '../support/consent.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

// RFC 7591 registration against a Baton whose registry is stored (in memory here): acme is open to
// anyone, globex only to an initial access token (scope baton:register) of its own.

const redirectUri = 'http://localhost:3000/callback';
const registrarSecret = 'globex-registrar-secret-for-tests-only';
const mcpClient = {
  redirect_uris: [redirectUri],
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  client_name: 'Claude Code (test)',
  client_uri: 'https://claude.ai',
};

type Mode = 'off' | 'open' | 'initial_access_token';

/** Sets each tenant's registration mode in the stored registry; gives ops-console and globex-registrar baton:register. */
async function setUp(baton: MemoryBaton, modes: Record<string, Mode>): Promise<void> {
  await baton.registryStore.edit('test', (doc: RegistryDocument) => ({
    ...doc,
    tenants: doc.tenants.map((t) =>
      modes[t.id] === undefined ? t : { ...t, dynamic_client_registration: { mode: modes[t.id] as Mode } },
    ),
    clients: [
      ...doc.clients.map((c) =>
        c.client_id === 'ops-console' ? { ...c, scope: [...(c.scope ?? []), 'baton:register'] } : c,
      ),
      {
        client_id: 'globex-registrar',
        tenant: 'globex',
        name: 'Globex registrar',
        token_endpoint_auth_method: 'client_secret_basic' as const,
        client_secret_sha256: sha256Hex(registrarSecret),
        grant_types: ['client_credentials' as const],
        scope: ['baton:register'],
      },
    ],
  }));
}

/** The Authorization header of a globex initial access token. */
async function globexToken(baton: MemoryBaton): Promise<Record<string, string>> {
  const token = await postToken(
    baton,
    { grant_type: 'client_credentials', scope: 'baton:register' },
    { authorization: basic('globex-registrar', registrarSecret) },
  );
  expect(token.status, JSON.stringify(token.body)).toBe(200);
  return { authorization: `Bearer ${token.body.access_token as string}` };
}

const register = (baton: MemoryBaton, body: unknown, headers: Record<string, string> = {}): Promise<PostResult> =>
  postJson(baton, '/oauth2/register', body, headers);

/** The stored client `id`, as the registry document holds it. */
async function stored(baton: MemoryBaton, id: string): Promise<Record<string, unknown> | undefined> {
  return (await baton.registryStore.read()).document.clients.find((c) => c.client_id === id) as
    Record<string, unknown> | undefined;
}

const registrations = (baton: MemoryBaton, after: number) =>
  baton.auditEntries(after).filter((e) => e.type === 'registry.registration');

let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton();
  await setUp(baton, { acme: 'open', globex: 'initial_access_token' });
});
afterAll(async () => {
  await baton?.close();
});

describe('discovery', () => {
  it('advertises the registration endpoint in the RFC 8414 metadata', async () => {
    const metadata = (await (await baton.fetch(`${baton.url}/.well-known/oauth-authorization-server`)).json()) as {
      registration_endpoint?: string;
    };
    expect(metadata.registration_endpoint).toBe(`${baton.issuer}/oauth2/register`);
  });

  it('does not advertise it while every tenant has registration off', async () => {
    const quiet = await memoryBaton();
    try {
      const metadata = (await (await quiet.fetch(`${quiet.url}/.well-known/oauth-authorization-server`)).json()) as {
        registration_endpoint?: string;
      };
      expect(metadata).not.toHaveProperty('registration_endpoint');
    } finally {
      await quiet.close();
    }
  });
});

describe('open registration', () => {
  it('registers a public MCP client in the open tenant: 201 with the RFC 7591 body, stored, audited', async () => {
    const seq = baton.auditEntries().length;
    const before = Math.floor(Date.now() / 1000);
    const result = await register(baton, mcpClient, { 'x-request-id': 'reg-1' });
    expect(result.status, JSON.stringify(result.body)).toBe(201);
    expect(result.headers.get('cache-control')).toBe('no-store');
    const id = result.body.client_id as string;
    expect(id).toMatch(/^dcr-[A-Za-z0-9_-]{22}$/);
    expect(result.body.client_id_issued_at).toBeGreaterThanOrEqual(before);
    expect(result.body).toEqual({
      client_id: id,
      client_id_issued_at: result.body.client_id_issued_at,
      client_name: 'Claude Code (test)',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      // Every scope acme's resource servers offer, as none was asked for.
      scope: 'payments:read payments:transfer calendar:read',
    });
    expect(await stored(baton, id)).toEqual({
      client_id: id,
      tenant: 'acme',
      name: 'Claude Code (test)',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      scope: ['payments:read', 'payments:transfer', 'calendar:read'],
      redirect_uris: [redirectUri],
      dynamically_registered_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) as unknown,
    });
    const registeredAt = Date.parse((await stored(baton, id))?.dynamically_registered_at as string);
    expect(Math.floor(registeredAt / 1000)).toBe(result.body.client_id_issued_at);
    expect(registrations(baton, seq)).toMatchObject([
      {
        tenant: 'acme',
        decision: 'granted',
        client: null,
        reason: `registered client "${id}" (none) by open registration`,
        request_id: 'reg-1',
      },
    ]);
  });

  it('gives a client usable at once: alice consents, the code is redeemed with PKCE, and its use is recorded', async () => {
    const id = (await register(baton, mcpClient)).body.client_id as string;
    const { code, verifier } = await consentedCode(baton, {
      clientId: id,
      redirectUri,
      scope: 'payments:read',
      agent: null,
    });
    const token = await postToken(
      baton,
      { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: id },
      {},
    );
    expect(token.status, JSON.stringify(token.body)).toBe(200);
    expect(token.body.scope).toBe('payments:read');
    expect(typeof token.body.refresh_token).toBe('string');
    expect(baton.storage.state.clientUses.get(id)).toBeTypeOf('number');
  });

  it("marks a registered client's name on the consent page as not verified, and no registry client's", async () => {
    const id = (await register(baton, { ...mcpClient, client_name: 'Desk <Agent>' })).body.client_id as string;
    /** The consent page's HTML after alice signs in to `clientId`'s authorization request. */
    const consentPage = async (clientId: string, agent: string | null): Promise<string> => {
      const query = new URLSearchParams({
        response_type: 'code',
        client_id: clientId,
        redirect_uri: redirectUri,
        scope: 'payments:read',
        state: 's',
        code_challenge: pkce().challenge,
        code_challenge_method: 'S256',
        ...(agent === null ? {} : { requested_actor: agent }),
      });
      const login = await read(await baton.fetch(`${baton.url}/oauth2/authorize?${query}`, { redirect: 'manual' }));
      const response = await baton.fetch(`${baton.url}/oauth2/authorize/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `baton_csrf=${login.cookie ?? ''}` },
        body: new URLSearchParams({ ...login.fields, username: 'alice', password: 'alice-demo-password' }),
      });
      expect(response.status).toBe(200);
      return response.text();
    };
    expect(await consentPage(id, null)).toContain(
      '<p class="unverified">The name <strong>Desk &lt;Agent&gt;</strong> comes from the application itself and is not verified by Baton.</p>',
    );
    expect(await consentPage('agent-platform', 'orchestrator')).not.toContain('class="unverified"');
  });

  it('makes a secret for the RFC 7591 default method (client_secret_basic), shown once and never listed or logged', async () => {
    const { token_endpoint_auth_method: _none, ...metadata } = mcpClient;
    const result = await register(baton, { ...metadata, scope: 'payments:read' });
    expect(result.status, JSON.stringify(result.body)).toBe(201);
    const id = result.body.client_id as string;
    const secret = result.body.client_secret as string;
    expect(result.body).toMatchObject({
      token_endpoint_auth_method: 'client_secret_basic',
      client_secret_expires_at: 0,
      scope: 'payments:read',
    });
    expect(secret).toMatch(/^[A-Za-z0-9_-]{44}$/);
    expect((await stored(baton, id))?.client_secret_sha256).toBe(sha256Hex(secret));

    // The secret authenticates the client at the token endpoint.
    const { code, verifier } = await consentedCode(baton, {
      clientId: id,
      redirectUri,
      scope: 'payments:read',
      agent: null,
    });
    const token = await postToken(
      baton,
      { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier },
      { authorization: basic(id, secret) },
    );
    expect(token.status, JSON.stringify(token.body)).toBe(200);

    const listed = await baton.fetch(`${baton.url}/admin/clients?limit=200`, {
      headers: await bearerOf(baton, 'ops-console', 'baton:admin'),
    });
    const text = await listed.text();
    const mine = (JSON.parse(text) as { items: Record<string, unknown>[] }).items.find((c) => c.client_id === id);
    expect(mine).toMatchObject({ client_id: id, token_endpoint_auth_method: 'client_secret_basic' });
    expect(mine).not.toHaveProperty('client_secret_sha256');
    expect(text).not.toContain(secret);
    expect(JSON.stringify(baton.logger.lines)).not.toContain(secret);
    expect(JSON.stringify(baton.auditEntries())).not.toContain(secret);
  });

  it('keeps the registered keys of a private_key_jwt client (jwks inline)', async () => {
    const jwk = { ...(await exportJWK((await generateKeyPair('EdDSA')).publicKey)), kid: 'k1' };
    const result = await register(baton, {
      ...mcpClient,
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [jwk] },
    });
    expect(result.status, JSON.stringify(result.body)).toBe(201);
    expect(result.body.jwks).toEqual({ keys: [jwk] });
    expect(result.body).not.toHaveProperty('client_secret');
  });

  it('registers 20 clients at once, each with its own id, all in the registry afterwards', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => register(baton, { ...mcpClient, client_name: `Concurrent ${i}` })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    const ids = results.map((r) => r.body.client_id as string);
    expect(new Set(ids).size).toBe(20);
    const callers = baton.service.registry().callers;
    for (const [i, id] of ids.entries()) {
      expect(callers.get(id)).toMatchObject({ tenant: 'acme', name: `Concurrent ${i}`, authMethod: 'none' });
      expect(await stored(baton, id)).toMatchObject({ name: `Concurrent ${i}` });
    }
  });
});

describe("the MCP TypeScript SDK's own registration", () => {
  it('discovers the endpoint, registers, and parses the answer', async () => {
    const fetchFn = (input: string | URL | Request, init?: RequestInit) => baton.fetch(input, init);
    const metadata = await discoverAuthorizationServerMetadata(baton.issuer, { fetchFn });
    if (metadata === undefined) throw new Error('no authorization server metadata');
    expect(metadata.registration_endpoint).toBe(`${baton.issuer}/oauth2/register`);
    const info = await registerClient(baton.issuer, {
      metadata,
      clientMetadata: {
        redirect_uris: ['http://127.0.0.1:33418/callback'],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        client_name: 'SDK client',
        client_uri: 'https://sdk.example',
      },
      fetchFn,
    });
    expect(info).toMatchObject({
      client_id: expect.stringMatching(/^dcr-/) as unknown,
      client_name: 'SDK client',
      redirect_uris: ['http://127.0.0.1:33418/callback'],
      token_endpoint_auth_method: 'none',
    });
    expect(info.client_secret).toBeUndefined();
  });
});

describe('initial access tokens', () => {
  it("puts the client in the token's tenant (globex, which is not open)", async () => {
    const result = await register(baton, { ...mcpClient, scope: 'ledger:read' }, await globexToken(baton));
    expect(result.status, JSON.stringify(result.body)).toBe(201);
    expect(baton.service.registry().callers.get(result.body.client_id as string)?.tenant).toBe('globex');
    expect(result.body.scope).toBe('ledger:read');
  });

  it('puts it in acme with an acme token, even though acme is also open', async () => {
    const seq = baton.auditEntries().length;
    const result = await register(baton, mcpClient, await bearerOf(baton, 'ops-console', 'baton:register'));
    expect(result.status, JSON.stringify(result.body)).toBe(201);
    expect(baton.service.registry().callers.get(result.body.client_id as string)?.tenant).toBe('acme');
    expect(registrations(baton, seq)).toMatchObject([
      {
        tenant: 'acme',
        decision: 'granted',
        client: 'ops-console',
        reason: `registered client "${result.body.client_id as string}" (none) by initial access token of "ops-console"`,
      },
    ]);
  });

  it('refuses a scope outside the tenant of the token (acme scopes in globex)', async () => {
    const result = await register(baton, { ...mcpClient, scope: 'payments:read' }, await globexToken(baton));
    expect(result.status).toBe(400);
    expect(result.body).toEqual({
      error: 'invalid_client_metadata',
      error_description: 'scope "payments:read" is not offered by any resource server of the tenant',
    });
  });

  it('answers a token without baton:register 403 insufficient_scope, with its Bearer challenge', async () => {
    const result = await register(baton, mcpClient, await bearerOf(baton, 'ops-console', 'baton:admin'));
    expect(result.status).toBe(403);
    expect(result.body).toEqual({
      error: 'insufficient_scope',
      error_description: 'the initial access token lacks the baton:register scope',
    });
    expect(result.headers.get('www-authenticate')).toBe(
      'Bearer realm="baton", error="insufficient_scope", scope="baton:register"',
    );
  });

  it.each([
    [
      'a token Baton never issued',
      'Bearer not-a-token',
      'the initial access token is not valid: bearer token is malformed or unsupported',
    ],
    ['Basic credentials', basic('ops-console'), 'the initial access token must be sent as Authorization: Bearer'],
  ])('answers %s 401 invalid_token, with its Bearer challenge', async (_, authorization, description) => {
    const result = await register(baton, mcpClient, { authorization });
    expect(result.status).toBe(401);
    expect(result.body).toEqual({ error: 'invalid_token', error_description: description });
    expect(result.headers.get('www-authenticate')).toBe(
      'Bearer realm="baton", error="invalid_token", scope="baton:register"',
    );
  });
});

describe('bad metadata', () => {
  const https = 'https://app.example/cb';
  const cases: [string, unknown, string, string][] = [
    ['no redirect_uris', { client_name: 'x' }, 'invalid_redirect_uri', 'redirect_uris is required'],
    [
      'redirect_uris not an array',
      { redirect_uris: https },
      'invalid_redirect_uri',
      'redirect_uris must be a non-empty array',
    ],
    ['empty redirect_uris', { redirect_uris: [] }, 'invalid_redirect_uri', 'redirect_uris must be a non-empty array'],
    [
      '33 redirect URIs',
      { redirect_uris: Array.from({ length: 33 }, (_, i) => `${https}${i}`) },
      'invalid_redirect_uri',
      'redirect_uris may hold at most 32 URIs',
    ],
    ['a relative URI', { redirect_uris: ['/cb'] }, 'invalid_redirect_uri', 'redirect_uris[0] is not an absolute URI'],
    ['a number', { redirect_uris: [https, 7] }, 'invalid_redirect_uri', 'redirect_uris[1] must be a string'],
    [
      'http on a public host',
      { redirect_uris: ['http://app.example/cb'] },
      'invalid_redirect_uri',
      'redirect_uris[0] may use http only on a loopback host (127.0.0.1, [::1] or localhost)',
    ],
    [
      'a private-use scheme',
      { redirect_uris: ['com.example.app:/cb'] },
      'invalid_redirect_uri',
      'redirect_uris[0] must be an https URI, or http on a loopback host',
    ],
    [
      'a javascript: URI',
      { redirect_uris: ['javascript:alert(1)'] },
      'invalid_redirect_uri',
      'redirect_uris[0] must be an https URI, or http on a loopback host',
    ],
    [
      'a fragment',
      { redirect_uris: [`${https}#frag`] },
      'invalid_redirect_uri',
      'redirect_uris[0] must not contain a fragment',
    ],
    [
      'user information',
      { redirect_uris: ['https://user:pw@app.example/cb'] },
      'invalid_redirect_uri',
      'redirect_uris[0] must not contain user information',
    ],
    [
      'a NUL character',
      { redirect_uris: [`${https}\u0000`] },
      'invalid_redirect_uri',
      'redirect_uris[0] contains a NUL character',
    ],
    [
      'a lone surrogate',
      { redirect_uris: [`${https}\uD800`] },
      'invalid_redirect_uri',
      'redirect_uris[0] contains an unpaired UTF-16 surrogate',
    ],
    [
      'a URI over 2048 characters',
      { redirect_uris: [`${https}/${'a'.repeat(2048)}`] },
      'invalid_redirect_uri',
      'redirect_uris[0] is longer than 2048 characters',
    ],
    [
      'response_types token',
      { redirect_uris: [https], response_types: ['token'] },
      'invalid_client_metadata',
      'response_types must be ["code"]: Baton serves the authorization code flow only',
    ],
    [
      'grant_types client_credentials',
      { redirect_uris: [https], grant_types: ['authorization_code', 'client_credentials'] },
      'invalid_client_metadata',
      'grant_types may hold only authorization_code and refresh_token, not "client_credentials"',
    ],
    [
      'refresh_token alone',
      { redirect_uris: [https], grant_types: ['refresh_token'] },
      'invalid_client_metadata',
      'grant_types must include authorization_code (refresh_token only comes with it)',
    ],
    [
      'a huge grant_types array',
      { redirect_uris: [https], grant_types: Array(2000).fill('authorization_code') },
      'invalid_client_metadata',
      'grant_types must be a non-empty array of authorization_code and refresh_token',
    ],
    [
      'grant_types a string',
      { redirect_uris: [https], grant_types: 'authorization_code' },
      'invalid_client_metadata',
      'grant_types must be a non-empty array of authorization_code and refresh_token',
    ],
    [
      'an unknown auth method',
      { redirect_uris: [https], token_endpoint_auth_method: 'tls_client_auth' },
      'invalid_client_metadata',
      'token_endpoint_auth_method must be one of none, client_secret_basic, client_secret_post, private_key_jwt',
    ],
    [
      'private_key_jwt without keys',
      { redirect_uris: [https], token_endpoint_auth_method: 'private_key_jwt' },
      'invalid_client_metadata',
      'private_key_jwt requires jwks or jwks_uri',
    ],
    [
      'jwks_uri without an initial access token',
      { redirect_uris: [https], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://app.example/jwks' },
      'invalid_client_metadata',
      'jwks_uri needs an initial access token; an open registration gives jwks',
    ],
    [
      'a private key in jwks',
      {
        redirect_uris: [https],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'abc', d: 'secret' }] },
      },
      'invalid_client_metadata',
      'jwks.keys.0.d private key material is not allowed in a registry',
    ],
    [
      'a key that cannot be imported',
      {
        redirect_uris: [https],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AA' }] },
      },
      'invalid_client_metadata',
      expect.stringMatching(/^jwks\.keys\.0: key cannot be imported: /) as unknown as string,
    ],
    [
      'jwks with a public client',
      { redirect_uris: [https], token_endpoint_auth_method: 'none', jwks: { keys: [] } },
      'invalid_client_metadata',
      'jwks and jwks_uri are only used with token_endpoint_auth_method private_key_jwt',
    ],
    [
      'an unknown scope',
      { redirect_uris: [https], scope: 'payments:read admin:everything' },
      'invalid_client_metadata',
      'scope "admin:everything" is not offered by any resource server of the tenant',
    ],
    [
      'an operator scope',
      { redirect_uris: [https], scope: 'baton:admin' },
      'invalid_client_metadata',
      'scope "baton:admin" is not offered by any resource server of the tenant',
    ],
    [
      'a scope array',
      { redirect_uris: [https], scope: ['payments:read'] },
      'invalid_client_metadata',
      'scope must be a string',
    ],
    [
      'a badly spaced scope',
      { redirect_uris: [https], scope: 'payments:read  calendar:read' },
      'invalid_client_metadata',
      'scope must be space-separated RFC 6749 scope tokens',
    ],
    [
      'a client_name with NUL',
      { redirect_uris: [https], client_name: 'a\u0000b' },
      'invalid_client_metadata',
      'client_name contains a NUL character',
    ],
    [
      'a huge number as client_name',
      { redirect_uris: [https], client_name: 1e308 },
      'invalid_client_metadata',
      'client_name must be a string',
    ],
    [
      'a client_name over 200 characters',
      { redirect_uris: [https], client_name: 'n'.repeat(201) },
      'invalid_client_metadata',
      'client_name must be 1 to 200 characters',
    ],
    [
      'a blank client_name',
      { redirect_uris: [https], client_name: '  ' },
      'invalid_client_metadata',
      'client_name must be 1 to 200 characters',
    ],
  ];

  it.each(cases)('refuses %s', async (_, body, error, description) => {
    const seq = baton.auditEntries().length;
    const result = await register(baton, body);
    expect(result.status).toBe(400);
    expect(result.headers.get('cache-control')).toBe('no-store');
    expect(result.body).toEqual({ error, error_description: description });
    expect(registrations(baton, seq)).toMatchObject([
      {
        tenant: 'acme',
        decision: 'refused',
        reason: expect.stringMatching(`^open registration: ${error}: `) as unknown,
      },
    ]);
  });

  it('ignores __proto__, constructor and unknown members, as RFC 7591 says of unknown metadata', async () => {
    const result = await register(
      baton,
      `{"redirect_uris":["${redirectUri}"],"token_endpoint_auth_method":"none","__proto__":{"grant_types":["client_credentials"]},"constructor":{"prototype":{"x":1}},"software_statement":"eyJ","logo_uri":"https://x.example/l.png"}`,
    );
    expect(result.status, JSON.stringify(result.body)).toBe(201);
    expect(result.body.grant_types).toEqual(['authorization_code']);
    expect(result.body).not.toHaveProperty('logo_uri');
    expect(({} as Record<string, unknown>).grant_types).toBeUndefined();
  });

  it.each([
    ['a JSON array', '[]', 'application/json', 400, 'request body must be a JSON object'],
    ['a JSON string', '"x"', 'application/json', 400, 'request body must be a JSON object'],
    ['malformed JSON', '{"redirect_uris":', 'application/json', 400, 'request body is not valid JSON'],
    [
      'a form body',
      'redirect_uris=x',
      'application/x-www-form-urlencoded',
      400,
      'content type must be application/json',
    ],
    ['an empty body', '', 'application/json', 400, 'request body is empty'],
    [
      'a body over the size limit',
      `{"client_name":"${'x'.repeat(70_000)}"}`,
      'application/json',
      413,
      'request body is larger than 65536 bytes',
    ],
  ])('refuses %s as invalid_request', async (_, body, type, status, description) => {
    const response = await baton.fetch(`${baton.url}/oauth2/register`, {
      method: 'POST',
      headers: { 'content-type': type },
      body,
    });
    expect(response.status).toBe(status);
    expect(await response.json()).toEqual({ error: 'invalid_request', error_description: description });
  });

  it('answers other methods 405', async () => {
    const response = await baton.fetch(`${baton.url}/oauth2/register`);
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
  });
});

describe('tenants without open registration', () => {
  let closed: MemoryBaton;
  beforeAll(async () => {
    closed = await memoryBaton();
    await setUp(closed, { acme: 'initial_access_token', globex: 'off' });
  });
  afterAll(async () => {
    await closed?.close();
  });

  it('answers a request without a token 401 invalid_token, its challenge naming no error (RFC 6750 §3.1)', async () => {
    const result = await register(closed, mcpClient);
    expect(result.status).toBe(401);
    expect(result.body).toEqual({
      error: 'invalid_token',
      error_description:
        'an initial access token (a Baton access token with scope baton:register) is required to register a client',
    });
    expect(result.headers.get('www-authenticate')).toBe('Bearer realm="baton", scope="baton:register"');
  });

  it('refuses a tenant whose registration is off, with its own token, and audits it in that tenant', async () => {
    const seq = closed.auditEntries().length;
    const result = await register(closed, mcpClient, await globexToken(closed));
    expect(result.status).toBe(403);
    expect(result.body).toEqual({
      error: 'access_denied',
      error_description: 'dynamic client registration is off for tenant "globex"',
    });
    expect(registrations(closed, seq)).toMatchObject([
      {
        tenant: 'globex',
        decision: 'refused',
        client: 'globex-registrar',
        reason:
          'initial access token of "globex-registrar": access_denied: dynamic client registration is off for tenant "globex"',
      },
    ]);
  });
});

describe('the rate limit of open registration', () => {
  it('refuses an address over the limit with 429 and a Retry-After', async () => {
    const limited = await memoryBaton({ BATON_RATE_LIMIT: '1' });
    try {
      await setUp(limited, { acme: 'open' });
      const statuses: number[] = [];
      let last: PostResult | undefined;
      for (let i = 0; i < 4; i++) {
        last = await register(limited, mcpClient);
        statuses.push(last.status);
      }
      // A bucket holds two seconds' worth: two pass, then the address waits.
      expect(statuses.slice(0, 2)).toEqual([201, 201]);
      expect(statuses.at(-1)).toBe(429);
      expect(last?.body).toEqual({
        error: 'temporarily_unavailable',
        error_description: 'too many requests from this client; retry later',
      });
      expect(last?.headers.get('retry-after')).toBe('1');
    } finally {
      await limited.close();
    }
  });
});
