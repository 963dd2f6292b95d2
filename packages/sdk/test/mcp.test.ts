import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import type { OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import express from 'express';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { basic, demoChain, startTestBaton, type TestBaton } from '../../../test/support/baton.js';
import {
  authorizer,
  authorizeToolCall,
  batonClaimsOf,
  batonTokenVerifier,
  batonVerifier,
  type Authorizer,
  type BatonVerifier,
} from '../src/index.js';
import { paymentsAuthorizer } from './support.js';

const audience = 'https://payments.example';
const resourceMetadata = 'https://mcp.example/.well-known/oauth-protected-resource/mcp';
let baton: TestBaton;
let verifier: BatonVerifier;
let payments: Authorizer;
let token: string;
let readOnly: string;
let listener: Server;
let base: string;
/** The AuthInfo the last request reached its handler with. */
let seen: AuthInfo | undefined;

/** The MCP SDK's bearer middleware in front of a handler that keeps what it saw. */
function mount(app: express.Express, path: string, options: Parameters<typeof requireBearerAuth>[0]): void {
  app.get(path, requireBearerAuth(options), (req, res) => {
    seen = req.auth;
    res.json({ ok: true });
  });
}

/** What the MCP server answers to `token` at `path`. */
async function call(path: string, bearer?: string) {
  const response = await fetch(`${base}${path}`, {
    headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` },
  });
  return { status: response.status, challenge: response.headers.get('www-authenticate'), body: await response.json() };
}

/** The MCP SDK's 401 for a token Baton's verifier refused with `description`. */
const invalidToken = (description: string) => ({
  status: 401,
  challenge: `Bearer error="invalid_token", error_description="${description}", resource_metadata="${resourceMetadata}"`,
  body: { error: 'invalid_token', error_description: description },
});

beforeAll(async () => {
  baton = await startTestBaton();
  verifier = batonVerifier({ issuer: baton.issuer });
  payments = paymentsAuthorizer(baton);
  [, token] = await demoChain(baton);
  [, readOnly] = await demoChain(baton, 'payments:read');
  const toError = (error: { message: string }) => new InvalidTokenError(error.message);
  const app = express();
  mount(app, '/mcp', {
    verifier: batonTokenVerifier({ verifier, audience, toError }),
    resourceMetadataUrl: resourceMetadata,
  });
  mount(app, '/calendar-mcp', {
    verifier: batonTokenVerifier({ verifier, audience: 'https://calendar.example', toError }),
    resourceMetadataUrl: resourceMetadata,
  });
  mount(app, '/transfers', {
    verifier: batonTokenVerifier({ verifier, audience, toError }),
    requiredScopes: ['payments:transfer'],
  });
  // Baton's keys out of reach: nothing is known about the token.
  mount(app, '/unreachable', {
    verifier: batonTokenVerifier({ verifier: batonVerifier({ issuer: 'http://127.0.0.1:1' }), audience, toError }),
  });
  listener = await new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server));
  });
  base = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;
});
beforeEach(() => {
  seen = undefined;
});
afterAll(async () => {
  listener?.closeAllConnections();
  await new Promise((resolve) => listener?.close(resolve));
  await baton?.close();
});

describe('batonTokenVerifier behind the MCP SDK requireBearerAuth', () => {
  it('is an OAuthTokenVerifier: a Baton token reaches the handler as req.auth with the claims and act chain', async () => {
    const mcp: OAuthTokenVerifier = batonTokenVerifier({ verifier, audience, toError: (e) => e });
    expect(await call('/mcp', token)).toEqual({ status: 200, challenge: null, body: { ok: true } });
    const claims = await verifier.verify(token, { audience });
    const expected: AuthInfo = {
      token,
      clientId: 'agent-platform',
      scopes: ['payments:read', 'payments:transfer'],
      expiresAt: claims.expiresAt,
      resource: new URL(audience),
      extra: { baton: claims },
    };
    expect(seen).toEqual(expected);
    expect(await mcp.verifyAccessToken(token)).toEqual(expected);
    expect(batonClaimsOf(seen!)?.actChain).toEqual(['alice', 'orchestrator', 'payments-subagent']);
  });

  it('answers 401 invalid_token with the resource metadata for no token, an expired, a forged or another audience’s token', async () => {
    const payload = decodeJwt(token);
    const now = Math.floor(Date.now() / 1000);
    const expired = await baton.signAsBaton({ ...payload, iat: now - 600, exp: now - 300 });
    const [header, body, signature] = token.split('.') as [string, string, string];
    const raised = btoa(JSON.stringify({ ...payload, scope: 'payments:read payments:transfer payments:admin' }))
      .replace(/=+$/, '')
      .replace(/\+/g, '-')
      .replace(/\//g, '_');
    expect(raised).not.toBe(body);
    const forged = `${header}.${raised}.${signature}`;

    expect(await call('/mcp')).toEqual(invalidToken('Missing Authorization header'));
    expect(await call('/mcp', expired)).toEqual(invalidToken('the token has expired'));
    expect(await call('/mcp', forged)).toEqual(invalidToken('the token signature does not verify'));
    expect(await call('/mcp', 'x.y.z')).toEqual(invalidToken('the token is not a well-formed signed JWT'));
    expect(await call('/calendar-mcp', token)).toEqual(
      invalidToken('the token is not for audience https://calendar.example'),
    );
    expect(seen).toBeUndefined();
  });

  it('lets a revoked token through (verification is offline) and Baton refuses its tool calls', async () => {
    const [, revoked] = await demoChain(baton);
    const revocation = await fetch(`${baton.issuer}/oauth2/revoke`, {
      method: 'POST',
      headers: { authorization: basic('agent-platform'), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: revoked }).toString(),
    });
    expect(revocation.status).toBe(200);
    expect(await call('/mcp', revoked)).toEqual({ status: 200, challenge: null, body: { ok: true } });
    const args = { amount: 50, currency: 'EUR' };
    const resource = { type: 'Account', id: 'acct-1' };
    expect(
      await authorizeToolCall(payments, {
        token: revoked,
        tool: 'payments:transfer',
        args,
        resource,
        actionId: 'revoked-1',
      }),
    ).toEqual({ allowed: false, actionId: 'revoked-1', reasons: ['baton:revoked'] });
  });

  it('answers 403 insufficient_scope when the token lacks a required scope', async () => {
    expect(await call('/transfers', readOnly)).toEqual({
      status: 403,
      challenge: 'Bearer error="insufficient_scope", error_description="Insufficient scope", scope="payments:transfer"',
      body: { error: 'insufficient_scope', error_description: 'Insufficient scope' },
    });
    expect(await call('/transfers', token)).toEqual({ status: 200, challenge: null, body: { ok: true } });
  });

  it('does not blame the token when Baton’s keys cannot be read: the MCP SDK answers 500', async () => {
    expect(await call('/unreachable', token)).toEqual({
      status: 500,
      challenge: null,
      body: { error: 'server_error', error_description: 'Internal Server Error' },
    });
  });

  it('names no resource when the audience is not a URL', async () => {
    const info = await batonTokenVerifier({
      verifier: { issuer: '', verify: () => verifier.verify(token, { audience }) },
      audience: 'payments',
      toError: (e) => e,
    }).verifyAccessToken(token);
    expect('resource' in info).toBe(false);
  });
});

describe('authorizeToolCall', () => {
  it('asks Baton with the tool name as the action and its arguments as the context: 50 allowed, 150 denied', async () => {
    const ask = (amount: number, actionId: string) =>
      authorizeToolCall(payments, {
        token,
        tool: 'payments:transfer',
        args: { amount, currency: 'EUR' },
        resource: { type: 'Account', id: 'acct-1' },
        actionId,
      });
    expect(await ask(50, 'tool-50')).toEqual({ allowed: true, actionId: 'tool-50', reasons: ['transfer-up-to-100'] });
    expect(await ask(150, 'tool-150')).toEqual({ allowed: false, actionId: 'tool-150', reasons: [] });
  });

  it('sends the default Tool resource and the arguments as Baton reads them', async () => {
    const bodies: unknown[] = [];
    const recording = authorizer({
      baseUrl: 'https://baton.example',
      credentials: { clientId: 'payments', clientSecret: 's' },
      fetch: (_input, init) => {
        bodies.push(JSON.parse(init?.body as string));
        return Promise.resolve(Response.json({ decision: 'deny', action_id: 'a', reasons: [] }));
      },
    });
    await authorizeToolCall(recording, { token: 't', tool: 'search', args: { q: 'x' } });
    expect(bodies).toEqual([
      { token: 't', action: 'search', resource: { type: 'Tool', id: 'search' }, context: { q: 'x' } },
    ]);
  });
});
