import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { discoverOAuthProtectedResourceMetadata } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSecret } from '../../src/cli/demo-kit.js';
import { bearerOf, demoChain, startTestBaton, type TestBaton } from '../../test/support/baton.js';
import { startPaymentsMcpServer, type RunningPaymentsMcpServer } from './server.js';

let baton: TestBaton;
let server: RunningPaymentsMcpServer;
let token: string;

beforeAll(async () => {
  baton = await startTestBaton();
  [, token] = await demoChain(baton);
  server = await startPaymentsMcpServer({
    issuer: baton.issuer,
    audience: 'https://payments.example',
    resourceServer: { id: 'payments', secret: demoSecret('payments') },
  });
});
afterAll(async () => {
  await server?.close();
  await baton?.close();
});

/** An MCP client connected to the example with `bearer` (the MCP SDK's own client and transport). */
async function connect(bearer: string): Promise<Client> {
  const client = new Client({ name: 'test-agent', version: '0.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(server.url), {
      requestInit: { headers: { authorization: `Bearer ${bearer}` } },
    }),
  );
  return client;
}

const metadataUrl = () => server.url.replace('/mcp', '/.well-known/oauth-protected-resource/mcp');

describe('the payments MCP server', () => {
  it('lists both tools to a caller with a Baton token', async () => {
    const client = await connect(token);
    const { tools } = await client.listTools();
    expect(tools.map((t) => [t.name, Object.keys(t.inputSchema.properties ?? {})])).toEqual([
      ['get_balance', []],
      ['transfer', ['amount', 'currency', 'iban']],
    ]);
    await client.close();
  });

  it('runs a transfer of 50 that Baton allows, refuses 150 as a tool error, and audits the decision with the chain', async () => {
    const client = await connect(token);
    const iban = 'DE89370400440532013000';
    const allowed = (await client.callTool({
      name: 'transfer',
      arguments: { amount: 50, currency: 'EUR', iban },
    })) as CallToolResult;
    const [allowedText] = allowed.content as { type: 'text'; text: string }[];
    const actionId = /\(action id ([0-9a-f-]{36})\)$/.exec(allowedText?.text ?? '')?.[1];
    expect([allowed.isError, allowedText?.text]).toEqual([
      undefined,
      `Transferred 50 EUR to ${iban} for alice → orchestrator → payments-subagent (action id ${actionId})`,
    ]);

    const refused = (await client.callTool({
      name: 'transfer',
      arguments: { amount: 150, currency: 'EUR', iban },
    })) as CallToolResult;
    const [refusedText] = refused.content as { type: 'text'; text: string }[];
    const refusedId = /\(action id ([0-9a-f-]{36})\)/.exec(refusedText?.text ?? '')?.[1];
    expect(refused).toEqual({
      isError: true,
      content: [
        { type: 'text', text: `Baton denied payments:transfer (action id ${refusedId}): no policy permits it` },
      ],
    });
    expect(refusedId).not.toBe(actionId);
    await client.close();

    const auditor = await bearerOf(baton, 'ops-console', 'baton:audit');
    const response = await fetch(`${baton.url}/audit/actions/${actionId}`, { headers: auditor });
    const trail = (await response.json()) as { entries: { entry: Record<string, unknown> }[] };
    // The trail of an action: the exchanges that made its token, then the decision, with the chain.
    const pick = ({ type, decision, action_id, actor_chain, user, client }: Record<string, unknown>) => ({
      type,
      decision,
      action_id,
      actor_chain,
      user,
      client,
    });
    expect([response.status, trail.entries.map((e) => pick(e.entry))]).toEqual([
      200,
      [
        {
          type: 'token.exchange',
          decision: 'granted',
          action_id: null,
          actor_chain: ['orchestrator'],
          user: 'alice',
          client: 'agent-platform',
        },
        {
          type: 'token.exchange',
          decision: 'granted',
          action_id: null,
          actor_chain: ['payments-subagent', 'orchestrator'],
          user: 'alice',
          client: 'agent-platform',
        },
        {
          type: 'decision',
          decision: 'allow',
          action_id: actionId,
          actor_chain: ['payments-subagent', 'orchestrator'],
          user: 'alice',
          client: 'payments',
        },
      ],
    ]);
  });

  it('reads the balance, 50 less after the transfer, after asking Baton for payments:read', async () => {
    const client = await connect(token);
    expect(await client.callTool({ name: 'get_balance', arguments: {} })).toEqual({
      content: [{ type: 'text', text: 'Balance of acct-1: 950 EUR' }],
    });
    await client.close();
  });

  it('serves its RFC 9728 metadata where the MCP client looks first, naming Baton', async () => {
    const response = await fetch(metadataUrl());
    expect([response.status, await response.json()]).toEqual([
      200,
      {
        resource: server.url,
        authorization_servers: [baton.issuer],
        bearer_methods_supported: ['header'],
        scopes_supported: ['payments:read', 'payments:transfer'],
        resource_name: 'Baton payments MCP',
      },
    ]);
  });

  it('answers 401 with the MCP SDK challenge naming the metadata, without a token or with a refused one', async () => {
    const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} };
    const post = (headers: Record<string, string>) =>
      fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
        body: JSON.stringify(initialize),
      });
    const none = await post({});
    expect([none.status, none.headers.get('www-authenticate'), await none.json()]).toEqual([
      401,
      `Bearer error="invalid_token", error_description="Missing Authorization header", resource_metadata="${metadataUrl()}"`,
      { error: 'invalid_token', error_description: 'Missing Authorization header' },
    ]);
    const bad = await post({ authorization: 'Bearer x.y.z' });
    expect([bad.status, bad.headers.get('www-authenticate')]).toEqual([
      401,
      `Bearer error="invalid_token", error_description="the token is not a well-formed signed JWT", resource_metadata="${metadataUrl()}"`,
    ]);
  });

  it('turns away an MCP client without a token, which finds Baton through the metadata', async () => {
    const client = new Client({ name: 'anonymous', version: '0.0.0' });
    const error = await client.connect(new StreamableHTTPClientTransport(new URL(server.url))).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect([error instanceof StreamableHTTPError, (error as StreamableHTTPError).code]).toEqual([true, 401]);
    // The MCP SDK client's own discovery (path-aware well-known URL first) finds the document.
    const metadata = await discoverOAuthProtectedResourceMetadata(new URL(server.url));
    expect(metadata.authorization_servers).toEqual([baton.issuer]);
  });
});
