import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { Request, Response } from 'express';
import { z } from 'zod';
import {
  authorizer,
  authorizeToolCall,
  batonClaimsOf,
  batonTokenVerifier,
  batonVerifier,
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  type Authorizer,
} from '@baton-sts/sdk';

/** The one account this demo server holds (alice's, in the demo registry's entities.json). */
const account = { type: 'Account', id: 'acct-1' } as const;

/** Each MCP tool and the Baton action it asks for (the actions the payments resource server offers). */
export const toolActions = { get_balance: 'payments:read', transfer: 'payments:transfer' } as const;

export interface PaymentsMcpServerOptions {
  /** Baton's issuer URL (its tokens' `iss`, its metadata and /authorize). */
  readonly issuer: string;
  /**
   * The audience of the tokens this server accepts: by default its own MCP URL (`url`), which an
   * MCP client names as RFC 8707 `resource` and Baton binds the token to, when the resource server
   * is registered with that audience. The exchanged-token example uses `https://payments.example`.
   */
  readonly audience?: string;
  /**
   * The MCP endpoint's public URL, its RFC 9728 `resource` (e.g. `http://localhost:3001/mcp`);
   * by default `http://host:port/mcp` as bound. Its path is where the endpoint is served.
   */
  readonly url?: string;
  /** This resource server's credentials at Baton, for /authorize. */
  readonly resourceServer: { readonly id: string; readonly secret: string };
  readonly port?: number;
  readonly host?: string;
}

export interface RunningPaymentsMcpServer {
  /** The MCP endpoint: `url` if given, else `http://host:port/mcp`. */
  readonly url: string;
  /** The audience its tokens must carry. */
  readonly audience: string;
  close(): Promise<void>;
}

/** What a tool answers when Baton says no: an MCP tool error the model can read, not a protocol error. */
function denied(action: string, actionId: string, reasons: readonly string[]): CallToolResult {
  const why = reasons.length === 0 ? 'no policy permits it' : `reasons: ${reasons.join(', ')}`;
  return { isError: true, content: [{ type: 'text', text: `Baton denied ${action} (action id ${actionId}): ${why}` }] };
}

/** One MCP server whose tools ask Baton before they touch `ledger`. */
function paymentsServer(baton: Authorizer, ledger: { balance: number }): McpServer {
  const server = new McpServer({ name: 'baton-payments', version: '0.1.0' });

  const decide = (tool: keyof typeof toolActions, authInfo: AuthInfo | undefined, args: Record<string, unknown>) => {
    // requireBearerAuth runs before the transport, so every call carries a verified token.
    if (authInfo === undefined) throw new Error('no verified token reached the tool');
    return authorizeToolCall(baton, {
      token: authInfo.token,
      tool: toolActions[tool],
      args,
      resource: account,
      actionId: randomUUID(),
    });
  };

  server.registerTool(
    'get_balance',
    { description: 'The balance of the account, in EUR.' },
    async (extra): Promise<CallToolResult> => {
      const decision = await decide('get_balance', extra.authInfo, {});
      if (!decision.allowed) return denied(toolActions.get_balance, decision.actionId, decision.reasons);
      return { content: [{ type: 'text', text: `Balance of ${account.id}: ${ledger.balance} EUR` }] };
    },
  );

  server.registerTool(
    'transfer',
    {
      description: 'Transfers an amount from the account to an IBAN.',
      inputSchema: {
        amount: z.number().positive(),
        currency: z.string().length(3),
        iban: z.string().min(15).max(34),
      },
    },
    async ({ amount, currency, iban }, extra): Promise<CallToolResult> => {
      // The policies read the creditor's IBAN as creditor_iban (policies/baton.cedarschema).
      const decision = await decide('transfer', extra.authInfo, { amount, currency, creditor_iban: iban });
      if (!decision.allowed) return denied(toolActions.transfer, decision.actionId, decision.reasons);
      ledger.balance -= amount;
      const by = extra.authInfo && batonClaimsOf(extra.authInfo)?.actChain.join(' → ');
      return {
        content: [
          {
            type: 'text',
            text: `Transferred ${amount} ${currency} to ${iban} for ${by} (action id ${decision.actionId})`,
          },
        ],
      };
    },
  );
  return server;
}

/** Starts the payments MCP server over streamable HTTP, its tools guarded by Baton. */
export async function startPaymentsMcpServer(options: PaymentsMcpServerOptions): Promise<RunningPaymentsMcpServer> {
  const { issuer, resourceServer, port = 0, host = '127.0.0.1' } = options;
  const baton = authorizer({
    issuer,
    credentials: { clientId: resourceServer.id, clientSecret: resourceServer.secret },
  });

  // The account outlives each request's MCP server.
  const ledger = { balance: 1_000 };
  // createMcpExpressApp: express with JSON bodies and, on a loopback host, DNS rebinding protection.
  const app = createMcpExpressApp({ host });
  // The resource is this server's own address, known once it listens: routes are mounted then.
  const listener: Server = await new Promise((resolve, reject) => {
    const server = app.listen(port, host, (error?: Error) => (error ? reject(error) : resolve(server)));
  });
  const { port: bound } = listener.address() as AddressInfo;
  const url = options.url ?? `http://${host.includes(':') ? `[${host}]` : host}:${bound}/mcp`;
  const audience = options.audience ?? url;
  const path = new URL(url).pathname;
  const resourceMetadataUrl = protectedResourceMetadataUrl(url);
  const verifier = batonTokenVerifier({
    verifier: batonVerifier({ issuer }),
    audience,
    toError: (error) => new InvalidTokenError(error.message),
  });

  app.get(new URL(resourceMetadataUrl).pathname, (_req: Request, res: Response) => {
    const scopes = Object.values(toolActions);
    res.json(protectedResourceMetadata({ resource: url, issuer, scopes, name: 'Baton payments MCP' }));
  });
  // Stateless: each POST gets its own server and transport, so no session outlives its request.
  app.post(path, requireBearerAuth({ verifier, resourceMetadataUrl }), async (req: Request, res: Response) => {
    const server = paymentsServer(baton, ledger);
    const transport = new StreamableHTTPServerTransport({});
    res.on('close', () => void Promise.all([transport.close(), server.close()]));
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  // Without sessions there is no stream to GET and nothing to DELETE.
  app.all(path, (_req: Request, res: Response) => {
    res
      .set('Allow', 'POST')
      .status(405)
      .json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
  });
  return {
    url,
    audience,
    close: () =>
      new Promise<void>((resolve, reject) => {
        listener.closeAllConnections();
        listener.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
