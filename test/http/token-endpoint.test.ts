import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion } from '../../src/cli/demo-kit.js';
import { basic, grants, postToken, tokenTypes } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { jwtBearerAssertionType } from '../../src/core/clients/client-auth.js';

let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton();
});
afterAll(async () => {
  await baton?.close();
});

const asAgent = async (agent: string) => ({
  client_assertion_type: jwtBearerAssertionType,
  client_assertion: await mintAgentAssertion(agent, baton.issuer),
});
const invalidClientHeader = 'Basic realm="baton", error="invalid_client"';

describe('metadata and keys', () => {
  it('publishes RFC 8414 metadata', async () => {
    const response = await baton.fetch(`${baton.url}/.well-known/oauth-authorization-server`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      issuer: baton.issuer,
      authorization_endpoint: `${baton.issuer}/oauth2/authorize`,
      token_endpoint: `${baton.issuer}/oauth2/token`,
      jwks_uri: `${baton.issuer}/.well-known/jwks.json`,
      scopes_supported: [
        'calendar:read',
        'ledger:read',
        'payments:read',
        'payments:transfer',
        'baton:admin',
        'baton:audit',
        'baton:metrics',
        'baton:register',
      ],
      revocation_endpoint: `${baton.issuer}/oauth2/revoke`,
      revocation_endpoint_auth_methods_supported: [
        'private_key_jwt',
        'client_secret_basic',
        'client_secret_post',
        'none',
      ],
      revocation_endpoint_auth_signing_alg_values_supported: ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'RS256', 'PS256'],
      introspection_endpoint: `${baton.issuer}/oauth2/introspect`,
      introspection_endpoint_auth_methods_supported: ['client_secret_basic'],
      grant_types_supported: [grants.exchange, 'client_credentials', 'authorization_code', 'refresh_token'],
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      code_challenge_methods_supported: ['S256'],
      client_id_metadata_document_supported: true,
      authorization_response_iss_parameter_supported: true,
      token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic', 'client_secret_post', 'none'],
      token_endpoint_auth_signing_alg_values_supported: ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'RS256', 'PS256'],
      access_token_signing_alg_values_supported: ['EdDSA'],
      authorization_details_types_supported: ['payment_initiation', 'tool_invocation'],
      token_exchange_token_types_supported: [tokenTypes.accessToken, tokenTypes.jwt, tokenTypes.idToken],
    });
  });

  it('publishes the current and next public keys, without private members', async () => {
    const response = await baton.fetch(`${baton.url}/.well-known/jwks.json`);
    const body = (await response.json()) as { keys: Record<string, unknown>[] };
    expect(body.keys.map((k) => k.kid)).toEqual(baton.signingJwks.keys.map((k) => k.kid));
    for (const key of body.keys) expect(Object.keys(key).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x']);
  });
});

describe('client credentials', () => {
  it('issues an agent token for Baton itself, scoped to what the agent may hold', async () => {
    const result = await postToken(
      baton,
      { grant_type: 'client_credentials', scope: 'payments:read', ...(await asAgent('payments-subagent')) },
      {},
    );
    expect(result.status).toBe(200);
    expect(result.body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 300,
      scope: 'payments:read',
    });
    expect(decodeJwt(result.body.access_token as string)).toEqual({
      iss: baton.issuer,
      sub: 'payments-subagent',
      aud: baton.issuer,
      exp: expect.any(Number),
      iat: expect.any(Number),
      jti: expect.any(String),
      client_id: 'payments-subagent',
      tenant: 'acme',
      scope: 'payments:read',
    });
  });

  it('issues a resource server its own token with a client secret', async () => {
    const result = await postToken(baton, { grant_type: 'client_credentials' }, { authorization: basic('payments') });
    expect(result.status).toBe(200);
    expect(decodeJwt(result.body.access_token as string)).toMatchObject({
      sub: 'payments',
      client_id: 'payments',
      aud: baton.issuer,
      tenant: 'acme',
    });
  });

  it('accepts client_secret_post only for a client registered for it', async () => {
    const result = await postToken(
      baton,
      {
        grant_type: 'client_credentials',
        client_id: 'payments',
        client_secret: 'demo-only-payments-rs-secret-52a9e07d13',
      },
      {},
    );
    expect(result.status).toBe(401);
    expect(result.body).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
  });

  it('refuses a scope the client may not request', async () => {
    const result = await postToken(
      baton,
      { grant_type: 'client_credentials', scope: 'payments:transfer admin' },
      { authorization: basic('agent-platform') },
    );
    expect(result.body).toEqual({
      error: 'invalid_scope',
      error_description: 'scope "admin" exceeds what this client may request',
    });
  });

  it("refuses authorization_details beyond the client's registration", async () => {
    const details = JSON.stringify([{ type: 'tool_invocation', tool: 'search', actions: ['query'] }]);
    const result = await postToken(
      baton,
      { grant_type: 'client_credentials', authorization_details: details },
      { authorization: basic('agent-platform') },
    );
    expect(result.body).toEqual({
      error: 'invalid_authorization_details',
      error_description:
        "authorization_details[0] is not covered: the client's registration holds no tool_invocation entry",
    });
  });
});

interface ProtocolCase {
  readonly name: string;
  readonly body: string | Record<string, string | string[]>;
  readonly headers: Record<string, string>;
  readonly status: number;
  readonly error: string;
  readonly description: string;
  readonly wwwAuthenticate?: string;
}

const exchangeBody = { grant_type: grants.exchange, subject_token: 'x.y.z', subject_token_type: tokenTypes.jwt };
const platform = { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('agent-platform') };

const protocolCases: ProtocolCase[] = [
  {
    name: 'no grant_type',
    body: { scope: 'a' },
    headers: platform,
    status: 400,
    error: 'invalid_request',
    description: 'grant_type is required',
  },
  {
    name: 'unsupported grant_type',
    body: { grant_type: 'password' },
    headers: platform,
    status: 400,
    error: 'unsupported_grant_type',
    description: 'grant_type "password" is not supported',
  },
  {
    name: 'duplicate parameter',
    body: 'grant_type=client_credentials&scope=a&scope=b',
    headers: platform,
    status: 400,
    error: 'invalid_request',
    description: 'parameter scope is repeated',
  },
  {
    name: 'duplicate grant_type',
    body: 'grant_type=client_credentials&grant_type=client_credentials',
    headers: platform,
    status: 400,
    error: 'invalid_request',
    description: 'parameter grant_type is repeated',
  },
  {
    name: 'JSON instead of a form',
    body: '{"grant_type":"client_credentials"}',
    headers: { ...platform, 'content-type': 'application/json' },
    status: 400,
    error: 'invalid_request',
    description: 'content type must be application/x-www-form-urlencoded',
  },
  {
    name: 'malformed scope',
    body: { grant_type: 'client_credentials', scope: 'a  b' },
    headers: platform,
    status: 400,
    error: 'invalid_request',
    description: 'scope must be space-separated RFC 6749 scope tokens',
  },
  {
    name: 'resource that is not a URI',
    body: { ...exchangeBody, resource: 'payments' },
    headers: platform,
    status: 400,
    error: 'invalid_request',
    description: 'resource must be an absolute URI',
  },
  {
    name: 'too many audiences',
    body: { ...exchangeBody, audience: Array.from({ length: 17 }, (_, i) => `a${i}`) },
    headers: platform,
    status: 400,
    error: 'invalid_request',
    description: 'audience at most 16 values are accepted',
  },
  {
    name: 'oversized body',
    body: `grant_type=client_credentials&pad=${'x'.repeat(70_000)}`,
    headers: platform,
    status: 413,
    error: 'invalid_request',
    description: 'request body is larger than 65536 bytes',
  },
  {
    name: 'binary garbage',
    body: '\u0000\u00ff%%%=&&==',
    headers: platform,
    status: 400,
    error: 'invalid_request',
    description: 'a parameter name contains a NUL character',
  },
  {
    name: 'no client authentication',
    body: { grant_type: 'client_credentials' },
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 401,
    error: 'invalid_client',
    description: 'client authentication is required',
    wwwAuthenticate: invalidClientHeader,
  },
  {
    name: 'wrong client secret',
    body: { grant_type: 'client_credentials' },
    headers: { ...platform, authorization: basic('agent-platform', 'wrong') },
    status: 401,
    error: 'invalid_client',
    description: 'client authentication failed',
    wwwAuthenticate: invalidClientHeader,
  },
  {
    name: 'unknown client',
    body: { grant_type: 'client_credentials' },
    headers: { ...platform, authorization: basic('nobody', 'secret') },
    status: 401,
    error: 'invalid_client',
    description: 'client authentication failed',
    wwwAuthenticate: invalidClientHeader,
  },
  {
    name: 'malformed Basic header',
    body: { grant_type: 'client_credentials' },
    headers: { ...platform, authorization: 'Basic !!!' },
    status: 401,
    error: 'invalid_client',
    description: 'malformed Basic authorization header',
    wwwAuthenticate: invalidClientHeader,
  },
  {
    name: 'two authentication methods',
    body: { grant_type: 'client_credentials', client_id: 'agent-platform', client_secret: 'x' },
    headers: platform,
    status: 401,
    error: 'invalid_client',
    description: 'more than one client authentication method was used',
    wwwAuthenticate: invalidClientHeader,
  },
  {
    name: 'client_id that does not match Basic',
    body: { grant_type: 'client_credentials', client_id: 'payments' },
    headers: platform,
    status: 401,
    error: 'invalid_client',
    description: 'client_id does not match the authenticated client',
    wwwAuthenticate: invalidClientHeader,
  },
  {
    name: 'client assertion of the wrong type',
    body: { grant_type: 'client_credentials', client_assertion_type: 'urn:example:saml', client_assertion: 'x.y.z' },
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 401,
    error: 'invalid_client',
    description: `client_assertion_type must be ${jwtBearerAssertionType}`,
    wwwAuthenticate: invalidClientHeader,
  },
  {
    name: 'grant the client is not allowed',
    body: exchangeBody,
    headers: { ...platform, authorization: basic('payments') },
    status: 400,
    error: 'unauthorized_client',
    description: `client is not allowed the ${grants.exchange} grant`,
  },
];

describe('token endpoint protocol errors', () => {
  it.each(protocolCases)('$name', async (c) => {
    const response = await baton.fetch(`${baton.url}/oauth2/token`, {
      method: 'POST',
      headers: c.headers,
      body:
        typeof c.body === 'string'
          ? c.body
          : new URLSearchParams(
              Object.entries(c.body).flatMap(([k, v]) =>
                Array.isArray(v) ? v.map((one): [string, string] => [k, one]) : [[k, v] as [string, string]],
              ),
            ),
    });
    expect({ status: response.status, body: await response.json() }).toEqual({
      status: c.status,
      body: { error: c.error, error_description: c.description },
    });
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('www-authenticate')).toBe(c.wwwAuthenticate ?? null);
  });

  it('refuses a replayed client assertion', async () => {
    const auth = await asAgent('orchestrator');
    expect((await postToken(baton, { grant_type: 'client_credentials', ...auth }, {})).status).toBe(200);
    const replay = await postToken(baton, { grant_type: 'client_credentials', ...auth }, {});
    expect({ status: replay.status, body: replay.body }).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'client_assertion has already been used' },
    });
  });

  it('refuses a client assertion signed by another agent', async () => {
    const forged = await mintAgentAssertion('payments-subagent', baton.issuer);
    const [header, , signature] = forged.split('.');
    const claims = Buffer.from(
      JSON.stringify({ ...decodeJwt(forged), iss: 'orchestrator', sub: 'orchestrator' }),
    ).toString('base64url');
    const result = await postToken(
      baton,
      {
        grant_type: 'client_credentials',
        client_assertion_type: jwtBearerAssertionType,
        client_assertion: `${header}.${claims}.${signature}`,
      },
      {},
    );
    expect({ status: result.status, body: result.body }).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'client_assertion is signed with an unknown key' },
    });
  });

  it('answers 405 to other methods and 404 to unknown paths, as JSON', async () => {
    const get = await baton.fetch(`${baton.url}/oauth2/token`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const missing = await baton.fetch(`${baton.url}/nope`);
    expect({ status: missing.status, body: await missing.json() }).toEqual({
      status: 404,
      body: { error: 'not_found', error_description: 'no route for GET /nope' },
    });
  });

  it('never logs a token or secret', () => {
    const logged = JSON.stringify(baton.logger.lines);
    expect(logged).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
    expect(logged).not.toContain('demo-only-');
  });
});
