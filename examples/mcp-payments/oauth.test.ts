import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSecret } from '../../src/cli/demo-kit.js';
import { bearerOf, exchangedToken, startTestBaton, tokenTypes, type TestBaton } from '../../test/support/baton.js';
import { read, type Page } from '../../test/support/consent.js';
import { selfSignedCertificate } from '../../test/support/tls.js';
import { startPaymentsMcpServer, type RunningPaymentsMcpServer } from './server.js';

// The must-show of issue #20: the MCP TypeScript SDK's own client, with its own OAuth code, finds
// Baton through the example server's protected resource metadata, registers itself (RFC 7591),
// gets alice's consent through Baton's sign-in and consent pages, and calls the tools, which ask
// Baton per call. Nothing of Baton's SDK runs on the client side.

const iban = 'DE89370400440532013000';

/** The browser's side of the redirect: a loopback server that keeps each callback's query. */
interface Callback {
  readonly uri: string;
  readonly received: URL[];
  close(): Promise<void>;
}

async function startCallback(): Promise<Callback> {
  const received: URL[] = [];
  const server: Server = createServer((req, res) => {
    received.push(new URL(req.url ?? '/', 'http://127.0.0.1'));
    res.writeHead(200, { 'content-type': 'text/plain' }).end('Signed in. You may close this window.');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    uri: `http://127.0.0.1:${port}/callback`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** An MCP client's OAuth state, kept in memory: what a desktop client would keep on disk. */
class MemoryOAuthProvider implements OAuthClientProvider {
  information: OAuthClientInformationMixed | undefined;
  saved: OAuthTokens | undefined;
  verifier = '';
  /** Where the SDK sent the user: the authorization request, as the test's "browser" opens it. */
  authorizationUrl: URL | undefined;

  /** Set: the client identifies itself with this client ID metadata document instead of registering. */
  readonly clientMetadataUrl?: string;

  constructor(
    readonly redirectUrl: string,
    clientMetadataUrl?: string,
  ) {
    if (clientMetadataUrl !== undefined) this.clientMetadataUrl = clientMetadataUrl;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'Test MCP client',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return this.information;
  }
  saveClientInformation(information: OAuthClientInformationMixed) {
    this.information = information;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
}

/**
 * A client ID metadata document served over https on loopback, with a self-signed certificate
 * made now (the MCP SDK uses a metadata URL only if it is https).
 */
interface DocumentHost {
  /** The certificate, which Baton is told to trust (BATON_CIMD_LOOPBACK_CA_FILE). */
  readonly caFile: string;
  /** Serves `document` at `/client.json` once the URL is known; answers the URL. */
  serve(document: (url: string) => Record<string, unknown>): Promise<string>;
  readonly fetches: number;
  close(): Promise<void>;
}

function documentHost(): DocumentHost {
  const { key, cert, certFile } = selfSignedCertificate();
  let body = '';
  let fetches = 0;
  const server = createHttpsServer({ key, cert }, (req, res) => {
    fetches += 1;
    if (req.url !== '/client.json') res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  return {
    caFile: certFile,
    get fetches() {
      return fetches;
    },
    async serve(document) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/client.json`;
      body = JSON.stringify(document(url));
      return url;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let baton: TestBaton;
let server: RunningPaymentsMcpServer;
let callback: Callback;
let admin: Record<string, string>;
let documents: DocumentHost;

beforeAll(async () => {
  // The demo registry, with acme open to dynamic client registration, and without the demo's entry
  // for this server (at :3001): the test registers it below at the port it gets.
  const registry = JSON.parse(readFileSync('policies/registry.json', 'utf8')) as {
    tenants: { id: string }[];
    resource_servers: { id: string }[];
  };
  registry.tenants = registry.tenants.map((t) =>
    t.id === 'acme' ? { ...t, dynamic_client_registration: { mode: 'open' } } : t,
  );
  registry.resource_servers = registry.resource_servers.filter((rs) => rs.id !== 'mcp-payments');
  const dir = mkdtempSync(join(tmpdir(), 'baton-mcp-oauth-'));
  const registryFile = join(dir, 'registry.json');
  writeFileSync(registryFile, JSON.stringify(registry));
  documents = documentHost();
  // The development setting lets Baton fetch client ID metadata documents from loopback, trusting
  // the document host's own certificate there.
  baton = await startTestBaton({
    BATON_REGISTRY: registryFile,
    BATON_CIMD_ALLOW_HTTP_LOOPBACK: 'true',
    BATON_CIMD_LOOPBACK_CA_FILE: documents.caFile,
  });
  admin = await bearerOf(baton, 'ops-console', 'baton:admin');

  // The MCP server is a resource server of acme whose audience is its own MCP URL, known once it
  // listens: registered first (its secret is made then), its audience set when the URL is known.
  const entity = {
    id: 'mcp-payments',
    name: 'Payments MCP server',
    audience: 'https://mcp-payments.invalid/not-yet-listening',
    scopes: ['payments:read', 'payments:transfer'],
    actions: ['payments:read', 'payments:transfer'],
    token_endpoint_auth_method: 'client_secret_basic',
  };
  const created = await adminCall('POST', '/admin/resource_servers', entity);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  server = await startPaymentsMcpServer({
    issuer: baton.issuer,
    resourceServer: { id: entity.id, secret: created.body.client_secret as string },
  });
  const updated = await adminCall('PUT', `/admin/resource_servers/${entity.id}`, {
    ...entity,
    audience: server.url,
  });
  expect(updated.status, JSON.stringify(updated.body)).toBe(200);
  callback = await startCallback();
});
afterAll(async () => {
  await documents?.close();
  await callback?.close();
  await server?.close();
  await baton?.close();
});

async function adminCall(
  method: string,
  path: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${baton.url}${path}`, {
    method,
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** A page of Baton's browser flow with its text, for what the user is shown. */
type ShownPage = Page & { readonly status: number; readonly text: string };

async function shown(response: Response, cookie?: string): Promise<ShownPage> {
  const html = await response.clone().text();
  // The text a reader sees: tags dropped, entities that the pages escape restored, spaces collapsed.
  const text = html
    .replace(/<(style|script)[^>]*>[\s\S]*?<\/\1>/g, '')
    .replace(/<\/?(strong|code)>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&')
    .replace(/\s+/g, ' ')
    .trim();
  return { ...(await read(response, cookie)), status: response.status, text };
}

async function post(path: string, page: Page, extra: Record<string, string>): Promise<ShownPage> {
  const response = await fetch(`${baton.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `baton_csrf=${page.cookie ?? ''}` },
    body: new URLSearchParams({ ...page.fields, ...extra }),
  });
  return shown(response, page.cookie);
}

/**
 * What alice's browser does with the authorization URL the MCP client opened: signs in, reads the
 * consent page, approves, and follows Baton's redirect to the client's loopback callback.
 */
async function aliceApproves(authorizationUrl: URL): Promise<{ consent: ShownPage; callbackUrl: URL }> {
  const login = await shown(await fetch(authorizationUrl, { redirect: 'manual' }));
  expect(login.status, login.text).toBe(200);
  const consent = await post('/oauth2/authorize/login', login, {
    username: 'alice',
    password: 'alice-demo-password',
  });
  expect(consent.status, consent.text).toBe(200);
  const approved = await post('/oauth2/authorize/consent', consent, { decision: 'approve' });
  expect(approved.location).not.toBeNull();
  const before = callback.received.length;
  await fetch(approved.location as string);
  const callbackUrl = callback.received[before];
  if (callbackUrl === undefined) throw new Error('the browser did not reach the callback');
  return { consent, callbackUrl };
}

/** Text of a tool result's single text item. */
const textOf = (result: CallToolResult): string => (result.content as { type: 'text'; text: string }[])[0]?.text ?? '';
const actionIdOf = (text: string): string | undefined => /\(action id ([0-9a-f-]{36})\)/.exec(text)?.[1];

/** An action's audit trail, read as the auditor: each entry's members that name the chain. */
async function trailOf(actionId: string): Promise<{ status: number; entries: Record<string, unknown>[] }> {
  const auditor = await bearerOf(baton, 'ops-console', 'baton:audit');
  const response = await fetch(`${baton.url}/audit/actions/${actionId}`, { headers: auditor });
  const trail = (await response.json()) as { entries: { entry: Record<string, unknown> }[] };
  const pick = ({ type, decision, action_id, actor_chain, user, client, audience }: Record<string, unknown>) => ({
    type,
    decision,
    action_id,
    actor_chain,
    user,
    client,
    audience,
  });
  return { status: response.status, entries: trail.entries.map((e) => pick(e.entry)) };
}

describe('an MCP client signing in through Baton with dynamic client registration', () => {
  let provider: MemoryOAuthProvider;
  let consent: ShownPage;
  let client: Client;

  it('is sent to Baton: discovery through the protected resource metadata, registration, then the authorization request', async () => {
    provider = new MemoryOAuthProvider(callback.uri);
    const first = new Client({ name: 'test-mcp-client', version: '0.0.0' });
    const error = await first
      .connect(new StreamableHTTPClientTransport(new URL(server.url), { authProvider: provider }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(UnauthorizedError);

    // Registered at Baton (RFC 7591) in acme, the open tenant.
    const clientId = provider.information?.client_id ?? '';
    expect(clientId).toMatch(/^dcr-[A-Za-z0-9_-]{22}$/);
    expect(provider.information).toMatchObject({
      client_id: clientId,
      client_name: 'Test MCP client',
      redirect_uris: [callback.uri],
      token_endpoint_auth_method: 'none',
      scope: 'payments:read payments:transfer',
    });
    // The authorization request the SDK built: Baton's endpoint, PKCE S256, and the MCP server as resource.
    const url = provider.authorizationUrl as URL;
    expect(`${url.origin}${url.pathname}`).toBe(`${baton.issuer}/oauth2/authorize`);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      response_type: 'code',
      client_id: clientId,
      code_challenge: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) as unknown,
      code_challenge_method: 'S256',
      redirect_uri: callback.uri,
      scope: 'payments:read payments:transfer',
      resource: server.url,
    });
  });

  it('gets alice’s consent on a page that names the MCP client as the one acting for her', async () => {
    const clientId = provider.information?.client_id ?? '';
    const approval = await aliceApproves(provider.authorizationUrl as URL);
    consent = approval.consent;
    expect(consent.text).toBe(
      `Allow access · Baton Allow access? Signed in as alice. Test MCP client (${clientId}) asks for access. ` +
        'The name Test MCP client comes from the application itself and is not verified by Baton. ' +
        'Test MCP client will act for you. It will be able to use the permission payments:read use the permission payments:transfer Allow Deny',
    );
    const code = approval.callbackUrl.searchParams.get('code');
    expect(Object.fromEntries(approval.callbackUrl.searchParams)).toEqual({ code, iss: baton.issuer });

    // The SDK redeems the code (PKCE, resource) and keeps the tokens; a new transport connects with them.
    const transport = new StreamableHTTPClientTransport(new URL(server.url), { authProvider: provider });
    await transport.finishAuth(code as string);
    const claims = decodeJwt(provider.saved?.access_token ?? '');
    expect(claims).toMatchObject({ iss: baton.issuer, sub: 'alice', aud: server.url, client_id: clientId });
    expect(claims).not.toHaveProperty('act');
    client = new Client({ name: 'test-mcp-client', version: '0.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { authProvider: provider }));
  });

  it('calls transfer for 50 (allowed) and 150 (refused as a tool error), each audited with the chain', async () => {
    const clientId = provider.information?.client_id ?? '';
    const allowed = (await client.callTool({
      name: 'transfer',
      arguments: { amount: 50, currency: 'EUR', iban },
    })) as CallToolResult;
    const allowedId = actionIdOf(textOf(allowed));
    expect(allowed).toEqual({
      content: [{ type: 'text', text: `Transferred 50 EUR to ${iban} for alice (action id ${allowedId})` }],
    });
    const refused = (await client.callTool({
      name: 'transfer',
      arguments: { amount: 150, currency: 'EUR', iban },
    })) as CallToolResult;
    const refusedId = actionIdOf(textOf(refused));
    expect(refused).toEqual({
      isError: true,
      content: [
        { type: 'text', text: `Baton denied payments:transfer (action id ${refusedId}): no policy permits it` },
      ],
    });
    expect(refusedId).not.toBe(allowedId);

    // Each trail: alice's consent to the MCP client and the code redemption that made the token,
    // then the decision the MCP server asked for, all for the MCP server's audience.
    const grant = (type: string) => ({
      type,
      decision: 'granted',
      action_id: null,
      actor_chain: [],
      user: 'alice',
      client: clientId,
      audience: [server.url],
    });
    const issued = [grant('authorization.consent'), grant('token.authorization_code')];
    const decision = (actionId: string | undefined, outcome: string) => ({
      type: 'decision',
      decision: outcome,
      action_id: actionId,
      actor_chain: [],
      user: 'alice',
      client: 'mcp-payments',
      audience: [server.url],
    });
    expect(await trailOf(allowedId as string)).toEqual({
      status: 200,
      entries: [...issued, decision(allowedId, 'allow')],
    });
    expect(await trailOf(refusedId as string)).toEqual({
      status: 200,
      entries: [...issued, decision(refusedId, 'deny')],
    });
    await client.close();
  });

  it('is bound to this MCP server: a server for another audience refuses the token (401)', async () => {
    const other = await startPaymentsMcpServer({
      issuer: baton.issuer,
      audience: 'https://payments.example',
      resourceServer: { id: 'payments', secret: demoSecret('payments') },
    });
    try {
      const response = await fetch(other.url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${provider.saved?.access_token ?? ''}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }),
      });
      expect([response.status, response.headers.get('www-authenticate')]).toEqual([
        401,
        `Bearer error="invalid_token", error_description="the token is not for audience https://payments.example", ` +
          `resource_metadata="${other.url.replace('/mcp', '/.well-known/oauth-protected-resource/mcp')}"`,
      ]);
    } finally {
      await other.close();
    }
  });

  it('hands the MCP client’s token down to agents by token exchange, and the tools see and audit the act chain', async () => {
    const clientId = provider.information?.client_id ?? '';
    const mcpToken = provider.saved?.access_token ?? '';
    // As today: agent-platform exchanges the token alice gave the MCP client for orchestrator, then
    // for payments-subagent; the audience stays the MCP server's.
    const hop1 = await exchangedToken(baton, mcpToken, tokenTypes.accessToken, 'orchestrator');
    const hop2 = await exchangedToken(baton, hop1, tokenTypes.accessToken, 'payments-subagent');
    expect(decodeJwt(hop2)).toMatchObject({
      sub: 'alice',
      aud: server.url,
      act: { sub: 'payments-subagent', act: { sub: 'orchestrator' } },
    });

    const subAgent = new Client({ name: 'payments-subagent', version: '0.0.0' });
    await subAgent.connect(
      new StreamableHTTPClientTransport(new URL(server.url), {
        requestInit: { headers: { authorization: `Bearer ${hop2}` } },
      }),
    );
    const result = (await subAgent.callTool({
      name: 'transfer',
      arguments: { amount: 20, currency: 'EUR', iban },
    })) as CallToolResult;
    const actionId = actionIdOf(textOf(result));
    expect(result).toEqual({
      content: [
        {
          type: 'text',
          text: `Transferred 20 EUR to ${iban} for alice → orchestrator → payments-subagent (action id ${actionId})`,
        },
      ],
    });
    await subAgent.close();

    // The trail runs from alice's consent to the MCP client through both exchanges to the decision.
    const entry = (type: string, decision: string, chain: string[], by: string, action: string | null = null) => ({
      type,
      decision,
      action_id: action,
      actor_chain: chain,
      user: 'alice',
      client: by,
      audience: [server.url],
    });
    expect(await trailOf(actionId as string)).toEqual({
      status: 200,
      entries: [
        entry('authorization.consent', 'granted', [], clientId),
        entry('token.authorization_code', 'granted', [], clientId),
        entry('token.exchange', 'granted', ['orchestrator'], 'agent-platform'),
        entry('token.exchange', 'granted', ['payments-subagent', 'orchestrator'], 'agent-platform'),
        entry('decision', 'allow', ['payments-subagent', 'orchestrator'], 'mcp-payments', actionId),
      ],
    });
  });
});

describe('an MCP client signing in through Baton with a client ID metadata document', () => {
  it('identifies itself by its document’s URL, gets alice’s consent, and calls transfer for 50 and 150', async () => {
    // Any port of 127.0.0.1 matches the document's loopback redirect URI (RFC 8252 §7.3).
    const documentUrl = await documents.serve((url) => ({
      client_id: url,
      client_name: 'Test MCP client (document)',
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }));
    const provider = new MemoryOAuthProvider(callback.uri, documentUrl);
    const error = await new Client({ name: 'test-mcp-client', version: '0.0.0' })
      .connect(new StreamableHTTPClientTransport(new URL(server.url), { authProvider: provider }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(UnauthorizedError);
    // No registration: the document's URL is the client_id (Baton advertises support in its metadata).
    expect(provider.information?.client_id).toBe(documentUrl);
    const url = provider.authorizationUrl as URL;
    expect(Object.fromEntries(url.searchParams)).toEqual({
      response_type: 'code',
      client_id: documentUrl,
      code_challenge: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) as unknown,
      code_challenge_method: 'S256',
      redirect_uri: callback.uri,
      scope: 'payments:read payments:transfer',
      resource: server.url,
    });

    const { consent, callbackUrl } = await aliceApproves(url);
    expect(consent.text).toBe(
      `Allow access · Baton Allow access? Signed in as alice. Test MCP client (document) (${documentUrl}) asks for access. ` +
        'The name Test MCP client (document) comes from the application itself and is not verified by Baton. ' +
        'Test MCP client (document) will act for you. ' +
        'It will be able to use the permission payments:read use the permission payments:transfer Allow Deny',
    );
    const transport = new StreamableHTTPClientTransport(new URL(server.url), { authProvider: provider });
    await transport.finishAuth(callbackUrl.searchParams.get('code') as string);
    expect(decodeJwt(provider.saved?.access_token ?? '')).toMatchObject({
      sub: 'alice',
      aud: server.url,
      client_id: documentUrl,
    });
    expect(documents.fetches).toBeGreaterThanOrEqual(1);

    const client = new Client({ name: 'test-mcp-client', version: '0.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { authProvider: provider }));
    const allowed = (await client.callTool({
      name: 'transfer',
      arguments: { amount: 50, currency: 'EUR', iban },
    })) as CallToolResult;
    const allowedId = actionIdOf(textOf(allowed));
    expect(allowed).toEqual({
      content: [{ type: 'text', text: `Transferred 50 EUR to ${iban} for alice (action id ${allowedId})` }],
    });
    const refused = (await client.callTool({
      name: 'transfer',
      arguments: { amount: 150, currency: 'EUR', iban },
    })) as CallToolResult;
    const refusedId = actionIdOf(textOf(refused));
    expect(refused).toEqual({
      isError: true,
      content: [
        { type: 'text', text: `Baton denied payments:transfer (action id ${refusedId}): no policy permits it` },
      ],
    });
    await client.close();

    const entry = (type: string, decision: string, by: string, action: string | null = null) => ({
      type,
      decision,
      action_id: action,
      actor_chain: [],
      user: 'alice',
      client: by,
      audience: [server.url],
    });
    for (const [actionId, outcome] of [
      [allowedId, 'allow'],
      [refusedId, 'deny'],
    ] as const) {
      expect(await trailOf(actionId as string)).toEqual({
        status: 200,
        entries: [
          entry('authorization.consent', 'granted', documentUrl),
          entry('token.authorization_code', 'granted', documentUrl),
          entry('decision', outcome, 'mcp-payments', actionId as string),
        ],
      });
    }
  });
});

describe('the consent page when a client names an agent with requested_actor', () => {
  it('names that agent as the one acting for the user, not the client', async () => {
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: 'agent-platform',
      redirect_uri: 'http://localhost:3000/callback',
      scope: 'payments:read payments:transfer',
      resource: server.url,
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      requested_actor: 'orchestrator',
    });
    const login = await shown(await fetch(`${baton.url}/oauth2/authorize?${query}`, { redirect: 'manual' }));
    const consent = await post('/oauth2/authorize/login', login, {
      username: 'alice',
      password: 'alice-demo-password',
    });
    expect([consent.status, consent.text]).toEqual([
      200,
      'Allow access · Baton Allow access? Signed in as alice. Acme Agent Platform (agent-platform) asks for access. ' +
        'It wants to let the agent Acme Orchestrator (orchestrator) act for you. ' +
        'It will be able to use the permission payments:read use the permission payments:transfer Allow Deny',
    ]);
  });
});
