import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSecret } from '../../../src/cli/demo-kit.js';
import { basic, demoChain, postToken, startTestBaton, type TestBaton } from '../../../test/support/baton.js';
import { authorizer, BatonError, OAuthResponseError, type Authorizer } from '../src/index.js';
import { paymentsAuthorizer } from './support.js';

let baton: TestBaton;
let payments: Authorizer;
let token: string;

beforeAll(async () => {
  baton = await startTestBaton();
  payments = paymentsAuthorizer(baton);
  [, token] = await demoChain(baton);
});
afterAll(async () => {
  await baton?.close();
});

const transfer = (amount: unknown, actionId?: string) => ({
  token,
  action: 'payments:transfer',
  resource: { type: 'Account', id: 'acct-1' },
  context: { amount, currency: 'EUR' },
  ...(actionId === undefined ? {} : { actionId }),
});

/** What a call threw, as `[class, code, message, status, retryAfterSeconds]`. */
async function refusal(call: Promise<unknown>): Promise<unknown[]> {
  const error: unknown = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof BatonError)) throw new Error(`expected a BatonError, got ${String(error)}`);
  return error instanceof OAuthResponseError
    ? [error.constructor.name, error.code, error.message, error.status, error.retryAfterSeconds]
    : [error.constructor.name, error.code, error.message];
}

/** A fetch that answers every request with `response`, keeping what was asked. */
function answering(response: () => Response) {
  const requests: { url: string; init: RequestInit | undefined }[] = [];
  const fetchImpl = (input: string | URL | Request, init?: RequestInit) => {
    requests.push({ url: String(input), init });
    return Promise.resolve(response());
  };
  return { requests, fetch: fetchImpl };
}

describe('authorizer', () => {
  it('allows a transfer of 50 by the sub-agent and denies 150, under the caller’s action ids', async () => {
    expect(await payments.authorize(transfer(50, 'pay-50'))).toEqual({
      allowed: true,
      actionId: 'pay-50',
      reasons: ['transfer-up-to-100'],
    });
    expect(await payments.authorize(transfer(150, 'pay-150'))).toEqual({
      allowed: false,
      actionId: 'pay-150',
      reasons: [],
    });
  });

  it('returns the action id Baton made when the caller gives none', async () => {
    expect(await payments.authorize(transfer(5))).toEqual({
      allowed: true,
      actionId: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      reasons: ['transfer-up-to-100'],
    });
  });

  it('asks with a bearer token the resource server obtained for itself', async () => {
    const own = await postToken(baton, { grant_type: 'client_credentials' }, { authorization: basic('payments') });
    expect(own.status, JSON.stringify(own.body)).toBe(200);
    let asked = 0;
    const withBearer = authorizer({
      issuer: baton.url,
      credentials: {
        bearer: () => {
          asked++;
          return Promise.resolve(own.body.access_token as string);
        },
      },
    });
    expect((await withBearer.authorize(transfer(50, 'bearer-50'))).allowed).toBe(true);
    expect(asked).toBe(1);
  });

  it('throws Baton’s OAuth errors with their code, description and status', async () => {
    const wrongSecret = authorizer({ baseUrl: baton.url, credentials: { clientId: 'payments', clientSecret: 'nope' } });
    expect(await refusal(wrongSecret.authorize(transfer(50)))).toEqual([
      'OAuthResponseError',
      'invalid_client',
      'invalid_client: client authentication failed',
      401,
      undefined,
    ]);
    expect(await refusal(payments.authorize(transfer(50, 'has space')))).toEqual([
      'OAuthResponseError',
      'invalid_request',
      'invalid_request: action_id must be 1–128 visible ASCII characters',
      400,
      undefined,
    ]);
    // An agent platform is a client, not a resource server: it may not ask for decisions.
    const notAServer = authorizer({
      baseUrl: baton.url,
      credentials: { clientId: 'agent-platform', clientSecret: demoSecret('agent-platform') },
    });
    expect(await refusal(notAServer.authorize(transfer(50)))).toEqual([
      'OAuthResponseError',
      'access_denied',
      'access_denied: the caller is not a registered resource server',
      403,
      undefined,
    ]);
  });

  it('sends form-encoded Basic credentials and the body Baton reads', async () => {
    const stub = answering(() => Response.json({ decision: 'deny', action_id: 'x', reasons: [] }));
    const odd = authorizer({
      baseUrl: 'https://baton.example/',
      credentials: { clientId: 'rs one:é', clientSecret: 'p%s s' },
      fetch: stub.fetch,
    });
    await odd.authorize({ token: 't', action: 'a', resource: { type: 'T', id: 'i' }, actionId: 'id-1' });
    const [request] = stub.requests;
    expect(request?.url).toBe('https://baton.example/authorize');
    const headers = new Headers(request?.init?.headers);
    const decoded = new TextDecoder().decode(
      Uint8Array.from(atob((headers.get('authorization') ?? '').slice('Basic '.length)), (c) => c.charCodeAt(0)),
    );
    expect(decoded).toBe('rs+one%3A%C3%A9:p%25s+s');
    expect(JSON.parse(request?.init?.body as string)).toEqual({
      token: 't',
      action: 'a',
      resource: { type: 'T', id: 'i' },
      action_id: 'id-1',
    });
  });

  it('reads Retry-After from a 503', async () => {
    const busy = authorizer({
      baseUrl: 'https://baton.example',
      credentials: { clientId: 'payments', clientSecret: 's' },
      fetch: answering(
        () =>
          new Response(JSON.stringify({ error: 'temporarily_unavailable', error_description: 'retry later' }), {
            status: 503,
            headers: { 'content-type': 'application/json', 'retry-after': '3' },
          }),
      ).fetch,
    });
    expect(await refusal(busy.authorize(transfer(50)))).toEqual([
      'OAuthResponseError',
      'temporarily_unavailable',
      'temporarily_unavailable: retry later',
      503,
      3,
    ]);
  });

  it('reports an unreachable Baton as network_error and an unreadable answer as invalid_response', async () => {
    const down = authorizer({
      baseUrl: 'http://127.0.0.1:1',
      credentials: { clientId: 'payments', clientSecret: 's' },
    });
    expect(await refusal(down.authorize(transfer(50)))).toEqual([
      'BatonError',
      'network_error',
      'could not reach http://127.0.0.1:1/authorize',
    ]);
    const answers: [() => Response, string][] = [
      [() => new Response('<html>bad gateway</html>', { status: 502 }), 'answered HTTP 502 without JSON'],
      [() => Response.json({ message: 'oops' }, { status: 500 }), 'answered HTTP 500 without an OAuth error'],
      [
        () => Response.json({ decision: 'maybe', action_id: 'x', reasons: [] }),
        'answered a decision of the wrong shape',
      ],
      [() => Response.json({ decision: 'allow', action_id: 7, reasons: [] }), 'answered a decision of the wrong shape'],
      [
        () => Response.json({ decision: 'allow', action_id: 'x', reasons: [1] }),
        'answered a decision of the wrong shape',
      ],
      [() => Response.json([{ decision: 'allow' }]), 'answered HTTP 200 without an OAuth error'],
    ];
    for (const [response, message] of answers) {
      const odd = authorizer({
        baseUrl: 'https://baton.example',
        credentials: { clientId: 'payments', clientSecret: 's' },
        fetch: answering(response).fetch,
      });
      expect(await refusal(odd.authorize(transfer(50))), message).toEqual([
        'BatonError',
        'invalid_response',
        `https://baton.example/authorize ${message}`,
      ]);
    }
  });

  it('rejects with the abort reason when its signal is aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('the user went away');
    controller.abort(reason);
    await expect(payments.authorize({ ...transfer(50), signal: controller.signal })).rejects.toBe(reason);
  });

  it('needs a base URL or an issuer', () => {
    expect(() => authorizer({ credentials: { clientId: 'payments', clientSecret: 's' } })).toThrow(
      new BatonError('invalid_configuration', 'an authorizer needs a baseUrl or an issuer'),
    );
  });
});
