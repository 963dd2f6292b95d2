import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoChain, startTestBaton, type TestBaton } from '../../../test/support/baton.js';
import {
  authorizer,
  authorizeToolCall,
  BatonError,
  batonClaimsOf,
  batonTokenVerifier,
  batonVerifier,
  type Authorizer,
  type BatonVerifier,
} from '../src/index.js';
import { paymentsAuthorizer } from './support.js';

/** The MCP TypeScript SDK's AuthInfo and OAuthTokenVerifier as it declares them (server/auth/types.ts, provider.ts). */
interface AuthInfo {
  token: string;
  clientId: string;
  scopes: string[];
  expiresAt: number;
  resource?: URL;
  extra?: Record<string, unknown>;
}
interface OAuthTokenVerifier {
  verifyAccessToken(token: string): Promise<AuthInfo>;
}
/** Stands for the MCP SDK's InvalidTokenError, which its requireBearerAuth turns into a 401. */
class InvalidTokenError extends Error {}

const audience = 'https://payments.example';
let baton: TestBaton;
let verifier: BatonVerifier;
let payments: Authorizer;
let token: string;

beforeAll(async () => {
  baton = await startTestBaton();
  verifier = batonVerifier({ issuer: baton.issuer });
  payments = paymentsAuthorizer(baton);
  [, token] = await demoChain(baton);
});
afterAll(async () => {
  await baton?.close();
});

describe('batonTokenVerifier', () => {
  it('is an MCP OAuthTokenVerifier whose AuthInfo carries the Baton claims', async () => {
    const mcp: OAuthTokenVerifier = batonTokenVerifier({ verifier, audience });
    const info = await mcp.verifyAccessToken(token);
    const claims = await verifier.verify(token, { audience });
    expect(info).toEqual({
      token,
      clientId: 'agent-platform',
      scopes: ['payments:read', 'payments:transfer'],
      expiresAt: claims.expiresAt,
      resource: new URL(audience),
      extra: { baton: claims },
    });
    expect(batonClaimsOf(info)?.actChain).toEqual(['alice', 'orchestrator', 'payments-subagent']);
  });

  it('throws the error toError makes, or the BatonError itself', async () => {
    const mapped = batonTokenVerifier({ verifier, audience, toError: (e) => new InvalidTokenError(e.message) });
    const error: unknown = await mapped.verifyAccessToken('x.y.z').catch((e: unknown) => e);
    expect([error instanceof InvalidTokenError, (error as Error).message]).toEqual([
      true,
      'the token is not a well-formed signed JWT',
    ]);
    const plain = batonTokenVerifier({ verifier, audience: 'https://calendar.example' });
    const refused: unknown = await plain.verifyAccessToken(token).catch((e: unknown) => e);
    expect([refused instanceof BatonError, (refused as BatonError).code, (refused as BatonError).message]).toEqual([
      true,
      'invalid_token',
      'the token is not for audience https://calendar.example',
    ]);
  });

  it('names no resource when the audience is not a URL', async () => {
    const info = await batonTokenVerifier({
      verifier: { issuer: '', verify: () => verifier.verify(token, { audience }) },
      audience: 'payments',
    }).verifyAccessToken(token);
    expect('resource' in info).toBe(false);
  });
});

describe('authorizeToolCall', () => {
  it('asks Baton with the tool name as the action and its arguments as the context: 50 allowed, 150 denied', async () => {
    const call = (amount: number, actionId: string) =>
      authorizeToolCall(payments, {
        token,
        tool: 'payments:transfer',
        args: { amount, currency: 'EUR' },
        resource: { type: 'Account', id: 'acct-1' },
        actionId,
      });
    expect(await call(50, 'tool-50')).toEqual({ allowed: true, actionId: 'tool-50', reasons: ['transfer-up-to-100'] });
    expect(await call(150, 'tool-150')).toEqual({ allowed: false, actionId: 'tool-150', reasons: [] });
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
