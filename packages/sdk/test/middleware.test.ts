import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono, type Context } from 'hono';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoChain, startTestBaton, type TestBaton } from '../../../test/support/baton.js';
import {
  authorizer,
  batonVerifier,
  requireBaton,
  requireBatonNode,
  type Authorizer,
  type BatonRequestState,
  type BatonVerifier,
} from '../src/index.js';
import { paymentsAuthorizer } from './support.js';

const audience = 'https://payments.example';
const metadataUrl = 'https://payments.example/.well-known/oauth-protected-resource';
const realm = `realm="${audience}"`;
const metadata = `resource_metadata="${metadataUrl}"`;

let baton: TestBaton;
let verifier: BatonVerifier;
let payments: Authorizer;
let token: string;
let readOnly: string;

beforeAll(async () => {
  baton = await startTestBaton();
  verifier = batonVerifier({ issuer: baton.issuer });
  payments = paymentsAuthorizer(baton);
  [, token] = await demoChain(baton);
  [, readOnly] = await demoChain(baton, 'payments:read');
});
afterAll(async () => {
  await baton?.close();
});

type Env = { Variables: { baton: BatonRequestState } };

/** The payments API as a Hono app: a balance needing payments:read, a transfer asking Baton. */
function honoApp(ask: Authorizer = payments): Hono<Env> {
  const app = new Hono<Env>();
  app.get(
    '/balance',
    requireBaton({ verifier, audience, scopes: ['payments:read'], resourceMetadataUrl: metadataUrl }),
    (c) => c.json({ chain: c.get('baton').claims.actChain }),
  );
  app.post(
    '/accounts/:id/transfers',
    // Typed with the route's context, the callbacks read its parameters and body.
    requireBaton<Context<Env, '/accounts/:id/transfers'>>({
      verifier,
      audience,
      scopes: ['payments:transfer'],
      resourceMetadataUrl: metadataUrl,
      authorizer: ask,
      action: 'payments:transfer',
      resource: (c) => ({ type: 'Account', id: c.req.param('id') }),
      context: async (c) => ({ ...(await c.req.json<Record<string, unknown>>()), currency: 'EUR' }),
      actionId: (c) => c.req.header('x-request-id'),
    }),
    async (c) => {
      const { actionId, reasons } = c.get('baton');
      return c.json({ actionId, reasons, amount: (await c.req.json<{ amount: number }>()).amount });
    },
  );
  return app;
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const transferTo = (app: Hono<Env>, amount: number, headers: Record<string, string>) =>
  app.request('/accounts/acct-1/transfers', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ amount }),
  });

/** Status, WWW-Authenticate and body of a response. */
async function answer(response: Response): Promise<[number, string | null, unknown]> {
  return [response.status, response.headers.get('www-authenticate'), await response.json()];
}

describe('requireBaton (Hono)', () => {
  it('hands the verified claims to the handler', async () => {
    const response = await honoApp().request('/balance', { headers: bearer(token) });
    expect(await answer(response)).toEqual([200, null, { chain: ['alice', 'orchestrator', 'payments-subagent'] }]);
  });

  it('challenges a request without a Bearer token, with no error code (RFC 6750 §3.1)', async () => {
    for (const headers of [{}, { authorization: 'Basic cGF5bWVudHM6eA==' }, { authorization: 'Bearerish x' }]) {
      const response = await honoApp().request('/balance', { headers });
      expect(await answer(response), JSON.stringify(headers)).toEqual([
        401,
        `Bearer ${realm}, ${metadata}`,
        { error_description: 'a Bearer token is required' },
      ]);
      expect(response.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('answers 400 invalid_request to a malformed Bearer credential', async () => {
    for (const authorization of ['Bearer', 'Bearer ', `Bearer ${token} extra`, 'Bearer a,b', 'bearer "quoted"']) {
      const response = await honoApp().request('/balance', { headers: { authorization } });
      expect(await answer(response), authorization).toEqual([
        400,
        `Bearer ${realm}, error="invalid_request", error_description="the Authorization header is not a well-formed Bearer credential", ${metadata}`,
        {
          error: 'invalid_request',
          error_description: 'the Authorization header is not a well-formed Bearer credential',
        },
      ]);
    }
  });

  it('answers 401 invalid_token, saying why, to a token that does not verify', async () => {
    const payload = decodeJwt(token);
    const cases: [string, string][] = [
      [
        await baton.signAsBaton({ ...payload, aud: 'https://calendar.example' }),
        `the token is not for audience ${audience}`,
      ],
      [await baton.signAsBaton({ ...payload, exp: 1 }), 'the token has expired'],
      [`${token.slice(0, -8)}AAAAAAAA`, 'the token signature does not verify'],
      ['not-a-jwt', 'the token is not a well-formed signed JWT'],
    ];
    for (const [bad, description] of cases) {
      const response = await honoApp().request('/balance', { headers: bearer(bad) });
      expect(await answer(response), description).toEqual([
        401,
        `Bearer ${realm}, error="invalid_token", error_description="${description}", ${metadata}`,
        { error: 'invalid_token', error_description: description },
      ]);
    }
  });

  it('keeps only what RFC 6750 allows in challenge values: quotes, backslashes and non-ASCII become ?', async () => {
    const odd = 'urn:pay:"\u00fcmlaut\\';
    const app = new Hono<Env>();
    app.get('/', requireBaton({ verifier, audience: odd }), (c) => c.text('unreachable'));
    const response = await app.request('/', { headers: bearer(token) });
    expect(await answer(response)).toEqual([
      401,
      'Bearer realm="urn:pay:??mlaut?", error="invalid_token", error_description="the token is not for audience urn:pay:??mlaut?"',
      { error: 'invalid_token', error_description: `the token is not for audience ${odd}` },
    ]);
  });

  it('answers 403 insufficient_scope, naming the scope needed, before asking Baton', async () => {
    let asked = 0;
    const counting: Authorizer = { authorize: (r) => (asked++, payments.authorize(r)) };
    const response = await transferTo(honoApp(counting), 50, bearer(readOnly));
    expect(await answer(response)).toEqual([
      403,
      `Bearer ${realm}, error="insufficient_scope", error_description="the token lacks the scope payments:transfer", scope="payments:transfer", ${metadata}`,
      { error: 'insufficient_scope', error_description: 'the token lacks the scope payments:transfer' },
    ]);
    expect(asked).toBe(0);
  });

  it('asks Baton: a transfer of 50 reaches the handler with the action id, 150 is refused with 403', async () => {
    const allowed = await transferTo(honoApp(), 50, { ...bearer(token), 'x-request-id': 'req-50' });
    expect(await answer(allowed)).toEqual([
      200,
      null,
      { actionId: 'req-50', reasons: ['transfer-up-to-100'], amount: 50 },
    ]);
    const denied = await transferTo(honoApp(), 150, { ...bearer(token), 'x-request-id': 'req-150' });
    expect(await answer(denied)).toEqual([
      403,
      null,
      { error: 'access_denied', error_description: 'Baton denied payments:transfer', action_id: 'req-150' },
    ]);
  });

  it('fails closed with 503 when Baton cannot be asked', async () => {
    const down = authorizer({
      baseUrl: 'http://127.0.0.1:1',
      credentials: { clientId: 'payments', clientSecret: 's' },
    });
    const response = await transferTo(honoApp(down), 50, bearer(token));
    expect(await answer(response)).toEqual([
      503,
      null,
      { error: 'temporarily_unavailable', error_description: 'Baton could not be consulted' },
    ]);
  });

  it('refuses options that ask /authorize without saying what to ask', () => {
    expect(() => requireBaton({ verifier, audience, authorizer: payments, action: 'payments:transfer' })).toThrow(
      'asking /authorize needs an authorizer, an action and a resource',
    );
  });
});

describe('requireBatonNode', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    const guard = requireBatonNode<IncomingMessage & { baton?: BatonRequestState }>({
      verifier,
      audience,
      scopes: ['payments:transfer'],
      resourceMetadataUrl: metadataUrl,
      authorizer: payments,
      action: 'payments:transfer',
      resource: () => ({ type: 'Account', id: 'acct-1' }),
      context: (req) => {
        const amount = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('amount'));
        if (amount < 0) throw new Error('negative amounts are the handler’s bug');
        return { amount, currency: 'EUR' };
      },
    });
    server = createServer((req: IncomingMessage & { baton?: BatonRequestState }, res: ServerResponse) => {
      void guard(req, res, (error) => {
        res.setHeader('content-type', 'application/json');
        if (error !== undefined) {
          res.statusCode = 500;
          res.end(JSON.stringify({ error: 'server_error' }));
          return;
        }
        res.end(JSON.stringify({ chain: req.baton?.claims.actChain, actionId: req.baton?.actionId }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  it('hands the claims and Baton’s action id to the handler on an allow', async () => {
    const [status, challenge, body] = await answer(await fetch(`${url}/?amount=50`, { headers: bearer(token) }));
    expect([status, challenge, body]).toEqual([
      200,
      null,
      { chain: ['alice', 'orchestrator', 'payments-subagent'], actionId: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/) },
    ]);
  });

  it('answers the same refusals as the Hono middleware', async () => {
    expect(await answer(await fetch(`${url}/?amount=50`))).toEqual([
      401,
      `Bearer ${realm}, ${metadata}`,
      { error_description: 'a Bearer token is required' },
    ]);
    expect(await answer(await fetch(`${url}/?amount=50`, { headers: bearer('x.y.z') }))).toEqual([
      401,
      `Bearer ${realm}, error="invalid_token", error_description="the token is not a well-formed signed JWT", ${metadata}`,
      { error: 'invalid_token', error_description: 'the token is not a well-formed signed JWT' },
    ]);
    expect((await answer(await fetch(`${url}/?amount=50`, { headers: bearer(readOnly) })))[0]).toBe(403);
    const denied = await fetch(`${url}/?amount=150`, { headers: bearer(token) });
    expect(await answer(denied)).toEqual([
      403,
      null,
      {
        error: 'access_denied',
        error_description: 'Baton denied payments:transfer',
        action_id: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      },
    ]);
    expect(denied.headers.get('cache-control')).toBe('no-store');
  });

  it('passes an error thrown by its own callbacks to next', async () => {
    expect(await answer(await fetch(`${url}/?amount=-1`, { headers: bearer(token) }))).toEqual([
      500,
      null,
      { error: 'server_error' },
    ]);
  });
});
