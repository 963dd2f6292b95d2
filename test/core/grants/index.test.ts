import { describe, expect, it } from 'vitest';
import { authorizationCode } from '../../../src/core/grants/authorization-code.js';
import { clientCredentials } from '../../../src/core/grants/client-credentials.js';
import { grants, grantsByType } from '../../../src/core/grants/index.js';
import { refreshToken } from '../../../src/core/grants/refresh-token.js';
import { tokenExchange } from '../../../src/core/grants/token-exchange.js';
import { authorizationServerMetadata } from '../../../src/core/metadata.js';
import { compileRegistry, RegistryError } from '../../../src/core/registry/compile.js';
import { registryJsonSchema } from '../../../src/core/registry/json-schema.js';

const registered = [
  'urn:ietf:params:oauth:grant-type:token-exchange',
  'client_credentials',
  'authorization_code',
  'refresh_token',
];
const issuer = 'https://baton.example';

/** A registry of one tenant and one client, `app`, with the given members. */
function registryWith(client: Record<string, unknown>): unknown {
  return {
    tenants: [{ id: 'acme', name: 'Acme' }],
    clients: [
      {
        client_id: 'app',
        tenant: 'acme',
        name: 'App',
        token_endpoint_auth_method: 'client_secret_basic',
        client_secret_sha256: 'ab'.repeat(32),
        redirect_uris: ['https://app.example/callback'],
        ...client,
      },
    ],
  };
}

async function problemsOf(doc: unknown): Promise<readonly { path: string; message: string }[]> {
  try {
    await compileRegistry(doc, { issuer, file: 'registry.json' });
  } catch (error) {
    if (error instanceof RegistryError) return error.problems;
    throw error;
  }
  throw new Error('registry was accepted');
}

describe('the grants index', () => {
  it('lists each grant module once, in order, under its own grant type and audit entry type', () => {
    expect(grants).toEqual([tokenExchange, clientCredentials, authorizationCode, refreshToken]);
    expect(grants.map((grant) => [grant.grantType, grant.auditType, grant.publicClients])).toEqual([
      ['urn:ietf:params:oauth:grant-type:token-exchange', 'token.exchange', false],
      ['client_credentials', 'token.client_credentials', false],
      ['authorization_code', 'token.authorization_code', true],
      ['refresh_token', 'token.refresh', true],
    ]);
    // Each schema answers to the grant type its module declares, and to no other.
    for (const grant of grants) expect(grant.schema.shape.grant_type.values).toEqual(new Set([grant.grantType]));
  });

  it('finds a grant by its type, and nothing by a name an object inherits', () => {
    expect([...grantsByType.keys()]).toEqual(registered);
    for (const grant of grants) expect(grantsByType.get(grant.grantType)).toBe(grant);
    expect(
      ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'password'].map((name) => grantsByType.get(name)),
    ).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it("is what the metadata's grant_types_supported lists", () => {
    expect(authorizationServerMetadata(issuer, ['EdDSA'], [], [], true).grant_types_supported).toEqual(registered);
  });

  it('is what the published registry schema allows a client', () => {
    const schema = registryJsonSchema() as {
      properties: { clients: { items: { properties: { grant_types: unknown } } } };
    };
    expect(schema.properties.clients.items.properties.grant_types).toEqual({
      type: 'array',
      minItems: 1,
      items: { type: 'string', enum: registered },
    });
  });

  it('is what a registry may allow a client: every registered grant type and nothing else', async () => {
    const registry = await compileRegistry(registryWith({ grant_types: registered }), {
      issuer,
      file: 'registry.json',
    });
    expect(registry.callers.get('app')?.grantTypes).toEqual(new Set(registered));
    expect(await problemsOf(registryWith({ grant_types: ['client_credentials', 'password'] }))).toEqual([
      {
        path: '/clients/0/grant_types/1',
        message:
          'Invalid option: expected one of "urn:ietf:params:oauth:grant-type:token-exchange"|"client_credentials"|"authorization_code"|"refresh_token"',
      },
    ]);
  });

  it('lets a public client be registered only for the grants that say so', async () => {
    const publicClient = { token_endpoint_auth_method: 'none', client_secret_sha256: undefined };
    const registry = await compileRegistry(
      registryWith({ ...publicClient, grant_types: ['authorization_code', 'refresh_token'] }),
      { issuer, file: 'registry.json' },
    );
    expect(registry.callers.get('app')?.grantTypes).toEqual(new Set(['authorization_code', 'refresh_token']));
    expect(await problemsOf(registryWith({ ...publicClient, grant_types: registered }))).toEqual([
      {
        path: '/clients/0/grant_types/0',
        message: 'a public client (auth method none) may not use urn:ietf:params:oauth:grant-type:token-exchange',
      },
      {
        path: '/clients/0/grant_types/1',
        message: 'a public client (auth method none) may not use client_credentials',
      },
    ]);
  });

  it('asks a redirect URI of a client allowed the authorization code grant', async () => {
    expect(await problemsOf(registryWith({ grant_types: ['authorization_code'], redirect_uris: undefined }))).toEqual([
      { path: '/clients/0/redirect_uris', message: 'is required for the authorization_code grant' },
    ]);
  });
});
