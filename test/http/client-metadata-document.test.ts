import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { RegistryDocument } from '../../src/core/registry/document.js';
import { cacheSeconds } from '../../src/core/clients/metadata-document.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { nodeDocumentFetcher, type ResolvedAddress } from '../../src/adapters/node-document-fetcher.js';
import { postToken } from '../support/baton.js';
import { pkce, read, submit } from '../support/consent.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { registryFile } from '../support/registry-file.js';

/** A document server on loopback: each path answers as `routes` says; `hits` counts requests by path. */
const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
const hits = new Map<string, number>();
let server: Server;
let origin: string;

const json =
  (body: unknown, headers: Record<string, string> = {}) =>
  (_: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };

/** A valid document for the client at `path`. */
const documentAt = (path: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  client_id: `${origin}${path}`,
  client_name: 'Test <MCP> Client',
  logo_uri: 'https://logos.example/mcp.png',
  redirect_uris: ['http://127.0.0.1/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  ...extra,
});

/** Names the test resolver answers for (anything else: not found). */
const names: Record<string, readonly ResolvedAddress[]> = {
  'internal.example': [{ address: '10.0.0.5', family: 4 }],
  'mixed.example': [
    { address: '93.184.215.14', family: 4 },
    { address: '192.168.1.20', family: 4 },
  ],
  'mapped.example': [{ address: '::ffff:10.0.0.1', family: 6 }],
  'cgnat.example': [{ address: '100.64.1.1', family: 4 }],
  'linklocal.example': [{ address: 'fe80::1', family: 6 }],
  'ula.example': [{ address: 'fd00::1', family: 6 }],
  localhost: [{ address: '127.0.0.1', family: 4 }],
};
const resolve = async (host: string): Promise<readonly ResolvedAddress[]> => {
  const found = names[host];
  if (found === undefined) throw new Error(`ENOTFOUND ${host}`);
  return found;
};

let baton: MemoryBaton;
/** A Baton without the development setting: documents over https only. */
let strict: MemoryBaton;

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const route = routes.get(path);
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    } else route(req, res);
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const registry = registryFile((doc) => {
    doc.tenants.push({
      id: 'initech',
      name: 'Initech',
      client_id_metadata_documents: { enabled: false },
    });
    doc.resource_servers.push({
      id: 'crm',
      tenant: 'initech',
      name: 'CRM',
      audience: 'https://crm.initech.example',
      scopes: ['crm:read'],
      actions: ['crm:read'],
      token_endpoint_auth_method: 'client_secret_basic',
      client_secret_sha256: '92b7c20af8e9a94d389d9f13f6bffdad4c95fcca73acb92770ff334677c368d8',
    });
    const globex = doc.tenants.find((t) => t.id === 'globex');
    if (globex === undefined) throw new Error('globex is not in the demo registry');
    globex.client_id_metadata_documents = { enabled: true, allowed_hosts: ['*.globex.example'] };
  });
  const fetcher = nodeDocumentFetcher({ allowHttpLoopback: true, timeoutMs: 1000, resolve });
  baton = await memoryBaton(
    { BATON_REGISTRY: registry, BATON_CIMD_ALLOW_HTTP_LOOPBACK: 'true' },
    { documentFetcher: fetcher },
  );
  strict = await memoryBaton({ BATON_REGISTRY: registry });
});

afterAll(async () => {
  await baton.close();
  await strict.close();
  await new Promise((done) => server.close(done));
});

beforeEach(() => {
  routes.clear();
  hits.clear();
});

interface Authorize {
  readonly clientId: string;
  readonly redirectUri?: string;
  readonly resource?: string | readonly string[] | null;
  readonly scope?: string;
  readonly challenge?: string;
}

function authorize(target: MemoryBaton, request: Authorize): Promise<Response> {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: request.clientId,
    redirect_uri: request.redirectUri ?? 'http://127.0.0.1:51234/callback',
    scope: request.scope ?? 'payments:read',
    state: 'st',
    code_challenge: request.challenge ?? pkce().challenge,
    code_challenge_method: 'S256',
  });
  const resource = request.resource === undefined ? 'https://payments.example' : request.resource;
  for (const r of resource === null ? [] : typeof resource === 'string' ? [resource] : resource)
    query.append('resource', r);
  return target.fetch(`${target.url}/oauth2/authorize?${query}`, { redirect: 'manual' });
}

/** The message of an error page, as a reader sees it (tags gone, entities decoded). */
async function pageMessage(response: Response): Promise<string> {
  const html = await response.text();
  const alert = /<p role="alert">([\s\S]*?)<\/p>/.exec(html)?.[1] ?? '';
  return alert
    .replace(/<[^>]+>/g, '')
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&amp;', '&');
}

/** Expects the error page (400, no redirect) with `message`. */
async function expectErrorPage(response: Response, message: string): Promise<void> {
  expect(response.status).toBe(400);
  expect(response.headers.get('location')).toBeNull();
  expect(await pageMessage(response)).toBe(message);
}

const unusable = (reason: string) => `The application's client metadata document cannot be used: ${reason}.`;
const unfetchable = (reason: string) => unusable(`the client metadata document could not be fetched: ${reason}`);

/** Signs alice in and approves: the consent page's HTML and the URL Baton sends the browser to. */
async function consent(login: Response): Promise<{ consentHtml: string; consentCsp: string; location: URL }> {
  expect(login.status).toBe(200);
  const loginPage = await read(login);
  const consentResponse = await baton.fetch(`${baton.url}/oauth2/authorize/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: `baton_csrf=${loginPage.cookie ?? ''}`,
    },
    body: new URLSearchParams({ ...loginPage.fields, username: 'alice', password: 'alice-demo-password' }),
  });
  const consentCsp = consentResponse.headers.get('content-security-policy') ?? '';
  const consentHtml = await consentResponse.clone().text();
  const consentPage = await read(consentResponse, loginPage.cookie);
  const approved = await submit(baton, '/oauth2/authorize/consent', consentPage, { decision: 'approve' });
  return { consentHtml, consentCsp, location: new URL(approved.location ?? 'missing:') };
}

describe('a client identified by a metadata document', () => {
  it('signs in with PKCE and redeems its code and refresh token as a public client, its name marked as not verified', async () => {
    const path = '/clients/mcp.json';
    routes.set(path, json(documentAt(path), { 'cache-control': 'max-age=600' }));
    const clientId = `${origin}${path}`;
    const { verifier, challenge } = pkce();
    const redirectUri = 'http://127.0.0.1:51234/callback';
    const login = await authorize(baton, { clientId, redirectUri, challenge });
    const loginHtml = await login.clone().text();
    // Sign-in names the URL the document came from, not the name it claims.
    expect(loginHtml).toContain(`<strong>${clientId}</strong> asks you to sign in.`);
    const { consentHtml, consentCsp, location } = await consent(login);
    expect(consentHtml).toContain('<strong>Test &lt;MCP&gt; Client</strong>');
    expect(consentHtml).toContain(
      '<p class="unverified">The name <strong>Test &lt;MCP&gt; Client</strong> comes from the application itself and is not verified by Baton.</p>',
    );
    expect(consentHtml).toContain('<img src="https://logos.example/mcp.png" alt="" width="48" height="48">');
    expect(consentCsp).toContain('img-src https://logos.example/mcp.png;');
    expect(`${location.origin}${location.pathname}`).toBe(redirectUri);
    const code = location.searchParams.get('code') ?? '';

    const token = await postToken(
      baton,
      {
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri,
        code_verifier: verifier,
        client_id: clientId,
        resource: 'https://payments.example',
      },
      {},
    );
    expect(token.status, JSON.stringify(token.body)).toBe(200);
    const claims = decodeJwt(token.body.access_token as string);
    expect(claims).toMatchObject({
      aud: 'https://payments.example',
      sub: 'alice',
      client_id: clientId,
      scope: 'payments:read',
    });
    expect(claims.tenant ?? 'acme').toBe('acme');

    const refreshed = await postToken(
      baton,
      { grant_type: 'refresh_token', refresh_token: token.body.refresh_token as string, client_id: clientId },
      {},
    );
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    // max-age=600: fetched once for the authorization request and both token requests.
    expect(hits.get(path)).toBe(1);

    const entries = baton.auditEntries().filter((e) => e.client === clientId);
    expect(entries.map((e) => [e.type, e.decision, e.tenant])).toEqual([
      ['authorization.login', 'granted', 'acme'],
      ['authorization.consent', 'granted', 'acme'],
      ['token.authorization_code', 'granted', 'acme'],
      ['token.refresh', 'granted', 'acme'],
    ]);
  });

  it('fetches a document once for concurrent requests', async () => {
    const path = '/clients/concurrent.json';
    routes.set(path, (req, res) =>
      setTimeout(() => json(documentAt(path), { 'cache-control': 'no-store' })(req, res), 100),
    );
    const clientId = `${origin}${path}`;
    const answers = await Promise.all([1, 2, 3, 4].map(() => authorize(baton, { clientId })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(hits.get(path)).toBe(1);
  });

  it.each([
    [undefined, 300],
    ['max-age=600', 600],
    ['public, max-age=0', 60],
    ['max-age=30', 60],
    ['max-age=999999999', 86400],
    ['max-age=-5', 300],
    ['MAX-AGE=120, must-revalidate', 120],
    ['no-store', 0],
    ['max-age=600, no-cache', 0],
  ])('keeps a document with Cache-Control %s for %i s', (header, seconds) => {
    expect(cacheSeconds(header)).toBe(seconds);
  });

  it('fetches a no-store document again for every request', async () => {
    const path = '/clients/no-store.json';
    routes.set(path, json(documentAt(path), { 'cache-control': 'no-store' }));
    const clientId = `${origin}${path}`;
    expect((await authorize(baton, { clientId })).status).toBe(200);
    expect((await authorize(baton, { clientId })).status).toBe(200);
    expect(hits.get(path)).toBe(2);
  });

  it('is refused at the token endpoint with invalid_client (401) when its document cannot be used', async () => {
    const clientId = `${origin}/clients/gone.json`;
    const token = await postToken(
      baton,
      {
        grant_type: 'authorization_code',
        code: 'x'.repeat(43),
        redirect_uri: 'http://127.0.0.1:51234/callback',
        code_verifier: 'v'.repeat(43),
        client_id: clientId,
      },
      {},
    );
    expect(token.status).toBe(401);
    expect(token.body).toEqual({
      error: 'invalid_client',
      error_description:
        'the client metadata document cannot be used: the client metadata document could not be fetched: the server answered 404',
    });
  });

  it('cannot redeem a code for a resource the code was not bound to (invalid_target)', async () => {
    const path = '/clients/narrow.json';
    routes.set(path, json(documentAt(path)));
    const clientId = `${origin}${path}`;
    const { verifier, challenge } = pkce();
    const { location } = await consent(await authorize(baton, { clientId, challenge }));
    const token = await postToken(
      baton,
      {
        grant_type: 'authorization_code',
        code: location.searchParams.get('code') ?? '',
        redirect_uri: 'http://127.0.0.1:51234/callback',
        code_verifier: verifier,
        client_id: clientId,
        resource: 'https://calendar.example',
      },
      {},
    );
    expect(token.status).toBe(400);
    expect(token.body).toEqual({
      error: 'invalid_target',
      error_description: 'resource "https://calendar.example" is not one the grant was made for',
    });
  });

  it('asks only for scopes its tenant offers: another tenant’s scope is invalid_scope, sent back to it', async () => {
    const path = '/clients/scoped.json';
    routes.set(path, json(documentAt(path)));
    const response = await authorize(baton, { clientId: `${origin}${path}`, scope: 'ledger:read' });
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get('location') ?? '');
    expect(location.searchParams.get('error')).toBe('invalid_scope');
  });
});

/** Issues a code to the document client at `path` (served with `extra`) for alice in acme. */
async function codeFor(path: string, extra: Record<string, unknown> = {}) {
  routes.set(path, json(documentAt(path, extra)));
  const clientId = `${origin}${path}`;
  const { verifier, challenge } = pkce();
  const { location } = await consent(await authorize(baton, { clientId, challenge }));
  const code = location.searchParams.get('code');
  if (code === null) throw new Error(`no code: ${location.href}`);
  return {
    clientId,
    form: {
      grant_type: 'authorization_code',
      code,
      redirect_uri: 'http://127.0.0.1:51234/callback',
      code_verifier: verifier,
    },
  };
}

/** Changes the registry in force for the rest of one test. */
async function withRegistry(change: (doc: RegistryDocument) => RegistryDocument, run: () => Promise<void>) {
  let before: RegistryDocument | undefined;
  await baton.registryStore.edit('test', (doc) => {
    before = doc;
    return change(doc);
  });
  try {
    await run();
  } finally {
    await baton.registryStore.edit('test', () => before as RegistryDocument);
  }
}

describe('the tenant of a document client at the token endpoint: the one of the grant it redeems', () => {
  it('is refused (invalid_client, 401) when that tenant has since turned documents off', async () => {
    const { clientId, form } = await codeFor('/clients/tenant-off.json');
    await withRegistry(
      (doc) => ({
        ...doc,
        tenants: doc.tenants.map((t) =>
          t.id === 'acme' ? { ...t, client_id_metadata_documents: { enabled: false } } : t,
        ),
      }),
      async () => {
        const token = await postToken(baton, { ...form, client_id: clientId }, {});
        expect(token.status).toBe(401);
        expect(token.body).toEqual({
          error: 'invalid_client',
          error_description: 'tenant acme does not accept clients identified by a metadata document',
        });
        expect(baton.auditEntries().at(-1)).toMatchObject({
          tenant: 'acme',
          type: 'token.authorization_code',
          decision: 'refused',
          client: clientId,
        });
      },
    );
  });

  it('is refused (invalid_client, 401) when the client is suspended in that tenant, and refused sign-in there', async () => {
    const { clientId, form } = await codeFor('/clients/suspended.json');
    await withRegistry(
      (doc) => ({
        ...doc,
        suspensions: [
          ...doc.suspensions,
          { tenant: 'acme', kind: 'client', id: clientId, reason: 'test', since: '2026-01-01T00:00:00Z' },
        ],
      }),
      async () => {
        const token = await postToken(baton, { ...form, client_id: clientId }, {});
        expect(token.status).toBe(401);
        expect(token.body).toEqual({ error: 'invalid_client', error_description: `client ${clientId} is suspended` });
        const again = await authorize(baton, { clientId });
        expect(again.status).toBe(302);
        const location = new URL(again.headers.get('location') ?? '');
        expect(location.searchParams.get('error')).toBe('access_denied');
        expect(location.searchParams.get('error_description')).toBe(`client ${clientId} is suspended`);
      },
    );
  });

  it('cannot redeem another client’s code, nor a code with a registered client’s credentials', async () => {
    const { form } = await codeFor('/clients/victim.json');
    const path = '/clients/thief.json';
    routes.set(path, json(documentAt(path)));
    const token = await postToken(baton, { ...form, client_id: `${origin}${path}` }, {});
    expect(token.status).toBe(400);
    expect(token.body).toEqual({
      error: 'invalid_grant',
      error_description: 'authorization code was issued to another client',
    });
  });

  it('authenticates a private_key_jwt client with the keys at its jwks_uri', async () => {
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    routes.set('/clients/keys.json', json({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'EdDSA' }] }));
    const { clientId, form } = await codeFor('/clients/signed.json', {
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: `${origin}/clients/keys.json`,
    });
    const assertion = (subject: string) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA', kid: 'k1' })
        .setIssuer(subject)
        .setSubject(subject)
        .setAudience(`${baton.issuer}/oauth2/token`)
        .setIssuedAt()
        .setExpirationTime('1m')
        .setJti(Math.random().toString(36).slice(2))
        .sign(privateKey);
    // client_id alone does not do for a private_key_jwt client.
    const unauthenticated = await postToken(baton, { ...form, client_id: clientId }, {});
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.body).toEqual({
      error: 'invalid_client',
      error_description: 'client authentication is required',
    });
    const token = await postToken(
      baton,
      {
        ...form,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: await assertion(clientId),
      },
      {},
    );
    expect(token.status, JSON.stringify(token.body)).toBe(200);
    expect(decodeJwt(token.body.access_token as string)).toMatchObject({ client_id: clientId, sub: 'alice' });
  });
});

describe('refusals at /oauth2/authorize: an error page (400), never a redirect', () => {
  it('without a resource', async () => {
    const path = '/clients/ok.json';
    routes.set(path, json(documentAt(path)));
    await expectErrorPage(
      await authorize(baton, { clientId: `${origin}${path}`, resource: null }),
      'A client identified by a metadata document must name the resource it wants (RFC 8707 resource).',
    );
    expect(hits.get(path)).toBeUndefined();
  });

  it('for a resource that is not a registered resource server', async () => {
    await expectErrorPage(
      await authorize(baton, { clientId: `${origin}/clients/ok.json`, resource: 'https://nope.example' }),
      'The resource https://nope.example is not a registered resource server.',
    );
  });

  it('for resources of two tenants', async () => {
    await expectErrorPage(
      await authorize(baton, {
        clientId: `${origin}/clients/ok.json`,
        resource: ['https://payments.example', 'https://ledger.globex.example'],
      }),
      'The resources asked for belong to different tenants.',
    );
  });

  it('when the tenant has turned documents off (nothing fetched, refusal audited in that tenant)', async () => {
    const path = '/clients/ok.json';
    const clientId = `${origin}${path}`;
    await expectErrorPage(
      await authorize(baton, { clientId, resource: 'https://crm.initech.example', scope: 'crm:read' }),
      'This application cannot sign in here: tenant initech does not accept clients identified by a metadata document.',
    );
    expect(hits.get(path)).toBeUndefined();
    expect(baton.auditEntries().at(-1)).toMatchObject({
      tenant: 'initech',
      type: 'authorization.login',
      decision: 'refused',
      client: clientId,
      reason:
        'invalid_client: This application cannot sign in here: tenant initech does not accept clients identified by a metadata document.',
    });
  });

  it('when the host is not one the tenant allows', async () => {
    await expectErrorPage(
      await authorize(baton, {
        clientId: `${origin}/clients/ok.json`,
        resource: 'https://ledger.globex.example',
        scope: 'ledger:read',
      }),
      'This application cannot sign in here: tenant globex does not accept client metadata documents from host 127.0.0.1.',
    );
  });

  it('for an http URL without the development setting', async () => {
    const path = '/clients/ok.json';
    routes.set(path, json(documentAt(path)));
    await expectErrorPage(
      await authorize(strict, { clientId: `${origin}${path}` }),
      unusable('client_id must be an https URL'),
    );
    expect(hits.get(path)).toBeUndefined();
  });

  it.each([
    [
      'https on localhost (loopback is for the http development setting only)',
      'https://localhost/client.json',
      'localhost',
    ],
    ['a name the resolver answers with 10.0.0.5', 'https://internal.example/client.json', 'internal.example'],
    ['a name with one private address among public ones', 'https://mixed.example/client.json', 'mixed.example'],
    ['an IPv4-mapped IPv6 address', 'https://mapped.example/client.json', 'mapped.example'],
    ['a CGNAT address', 'https://cgnat.example/client.json', 'cgnat.example'],
    ['a link-local IPv6 address', 'https://linklocal.example/client.json', 'linklocal.example'],
    ['a unique-local IPv6 address', 'https://ula.example/client.json', 'ula.example'],
    ['a private IPv4 literal', 'https://192.168.0.1/client.json', '192.168.0.1'],
    ['the metadata address', 'https://169.254.169.254/latest/meta-data', '169.254.169.254'],
    ['a loopback IPv6 literal over https', 'https://[::1]/client.json', '[::1]'],
  ])('for %s', async (_, clientId, host) => {
    await expectErrorPage(
      await authorize(baton, { clientId }),
      unfetchable(`the host ${host} resolves to an address that is not public`),
    );
  });

  it.each([
    ['a URL with no path', () => `${origin}/`, 'client_id must have a path (the document it names)'],
    ['a fragment', () => `${origin}/c.json#x`, 'client_id must not contain a fragment'],
    ['userinfo', () => `http://user@127.0.0.1:1/c.json`, 'client_id must not contain userinfo'],
    ['encoded dot segments', () => `${origin}/a/%2e%2e/c.json`, 'client_id must not contain dot segments'],
    [
      'a URL not in normal form',
      () => `${origin.replace('http', 'HTTP')}/c.json`,
      'client_id must be a URL in normal form',
    ],
    ['plain http to another host', () => 'http://mcp.example/c.json', 'client_id must be an https URL'],
  ])('for a client_id with %s', async (_, clientId, reason) => {
    await expectErrorPage(await authorize(baton, { clientId: clientId() }), unusable(reason));
  });

  it('for a redirect to a private address', async () => {
    routes.set('/clients/moved.json', (_, res) => {
      res.writeHead(302, { location: 'https://10.0.0.7/client.json' });
      res.end();
    });
    await expectErrorPage(
      await authorize(baton, { clientId: `${origin}/clients/moved.json` }),
      unfetchable('the host 10.0.0.7 resolves to an address that is not public'),
    );
  });

  it('for a redirect to plain http elsewhere', async () => {
    routes.set('/clients/moved-to-http.json', (_, res) => {
      res.writeHead(301, { location: 'http://mcp.example/client.json' });
      res.end();
    });
    await expectErrorPage(
      await authorize(baton, { clientId: `${origin}/clients/moved-to-http.json` }),
      unfetchable(
        'http://mcp.example/client.json is not an https URL (plain http is allowed only to 127.0.0.1, localhost or [::1])',
      ),
    );
  });

  it('for more than 3 redirects', async () => {
    for (let i = 0; i < 5; i++)
      routes.set(`/clients/hop${i}.json`, (_, res) => {
        res.writeHead(307, { location: `/clients/hop${i + 1}.json` });
        res.end();
      });
    await expectErrorPage(
      await authorize(baton, { clientId: `${origin}/clients/hop0.json` }),
      unfetchable('more than 3 redirects'),
    );
    expect(hits.get('/clients/hop3.json')).toBe(1);
    expect(hits.get('/clients/hop4.json')).toBeUndefined();
  });

  it('for a document larger than 5 KiB (declared)', async () => {
    const path = '/clients/big.json';
    routes.set(path, json(documentAt(path, { padding: 'x'.repeat(6000) })));
    await expectErrorPage(
      await authorize(baton, { clientId: `${origin}${path}` }),
      unfetchable('the response is larger than 5120 bytes'),
    );
  });

  it('for a document larger than 5 KiB (streamed without a length)', async () => {
    const path = '/clients/stream.json';
    routes.set(path, (_, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      for (let i = 0; i < 10; i++) res.write(' '.repeat(1000));
      res.end('{}');
    });
    await expectErrorPage(
      await authorize(baton, { clientId: `${origin}${path}` }),
      unfetchable('the response is larger than 5120 bytes'),
    );
  });

  it('for a server that does not answer in time', async () => {
    const path = '/clients/slow.json';
    routes.set(path, () => undefined);
    const started = performance.now();
    await expectErrorPage(
      await authorize(baton, { clientId: `${origin}${path}` }),
      unfetchable('no answer within 1000 ms'),
    );
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('for a document not served as JSON', async () => {
    const path = '/clients/html.json';
    routes.set(path, (_, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(JSON.stringify(documentAt(path)));
    });
    await expectErrorPage(
      await authorize(baton, { clientId: `${origin}${path}` }),
      unusable('the client metadata document is not served as JSON'),
    );
  });

  it('for a body that is not JSON', async () => {
    const path = '/clients/broken.json';
    routes.set(path, json('{"client_id": '));
    await expectErrorPage(
      await authorize(baton, { clientId: `${origin}${path}` }),
      unusable('the document is not valid JSON'),
    );
  });

  it('for a document whose client_id differs from its URL', async () => {
    const path = '/clients/other.json';
    routes.set(path, json(documentAt('/clients/someone-else.json')));
    await expectErrorPage(
      await authorize(baton, { clientId: `${origin}${path}` }),
      unusable("the document's client_id is not the URL it was fetched from"),
    );
  });

  it.each([
    [
      'client_secret_basic',
      { token_endpoint_auth_method: 'client_secret_basic' },
      "the document's token_endpoint_auth_method must be none or private_key_jwt",
    ],
    ['a client_secret', { client_secret: 's3cret' }, 'the document must not contain client_secret'],
    [
      'private_key_jwt without jwks_uri',
      { token_endpoint_auth_method: 'private_key_jwt' },
      "the document's jwks_uri is required for private_key_jwt",
    ],
    [
      'the client_credentials grant',
      { grant_types: ['client_credentials'] },
      "the document's grant_types.0 must be authorization_code or refresh_token",
    ],
    ['no redirect URIs', { redirect_uris: [] }, "the document's redirect_uris must name at least one redirect URI"],
    [
      'a javascript: redirect URI',
      { redirect_uris: ['javascript:alert(1)'] },
      "the document's redirect_uris.0 must be https, http to a loopback host, or app.scheme:",
    ],
    [
      'a name with a control character',
      { client_name: 'evil\u0000name' },
      "the document's client_name must be printable text",
    ],
  ])('for a document with %s', async (_, extra, reason) => {
    const path = `/clients/bad-${Math.random().toString(36).slice(2)}.json`;
    routes.set(path, json(documentAt(path, extra)));
    await expectErrorPage(await authorize(baton, { clientId: `${origin}${path}` }), unusable(reason));
  });

  it('for a redirect URI the document does not name, on loopback or elsewhere', async () => {
    const path = '/clients/ok.json';
    routes.set(path, json(documentAt(path)));
    for (const redirectUri of [
      'http://127.0.0.1:5000/other',
      'http://localhost:5000/callback',
      'https://evil.example/callback',
    ])
      await expectErrorPage(
        await authorize(baton, { clientId: `${origin}${path}`, redirectUri }),
        'The address to return to is not registered for this application.',
      );
  });
});

describe('the resource (RFC 8707) of a registered client', () => {
  it('that is not a registered resource server is invalid_target, sent back to the redirect URI', async () => {
    const response = await baton.fetch(
      `${baton.url}/oauth2/authorize?${new URLSearchParams({
        response_type: 'code',
        client_id: 'agent-console',
        redirect_uri: 'http://localhost:3000/console/callback',
        scope: 'payments:read',
        state: 'st',
        code_challenge: pkce().challenge,
        code_challenge_method: 'S256',
        resource: 'https://nope.example',
      })}`,
      { redirect: 'manual' },
    );
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get('location') ?? '');
    expect(Object.fromEntries(location.searchParams)).toEqual({
      error: 'invalid_target',
      error_description: 'resource "https://nope.example" is not a known resource server',
      state: 'st',
      iss: baton.issuer,
    });
  });
});

describe('metadata', () => {
  it('advertises client ID metadata documents and the resource servers’ scopes, sorted', async () => {
    const response = await baton.fetch(`${baton.url}/.well-known/oauth-authorization-server`);
    expect(await response.json()).toMatchObject({
      client_id_metadata_document_supported: true,
      scopes_supported: [
        'calendar:read',
        'crm:read',
        'ledger:read',
        'payments:read',
        'payments:transfer',
        'baton:admin',
        'baton:audit',
        'baton:metrics',
        'baton:register',
      ],
    });
  });
});
