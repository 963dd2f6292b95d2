import { describe, expect, it } from 'vitest';
import {
  actChain,
  assertWellFormed,
  batonClient,
  BatonError,
  metadataUrl,
  OAuthResponseError,
  parseRetryAfter,
  type Fetch,
} from '../src/index.js';
import { refusal } from './support.js';

const issuer = 'https://baton.example';
const tokenEndpoint = `${issuer}/oauth2/token`;
const client = { id: 'agent-platform', secret: 's3cret' };

/** A fetch that answers from a list, one answer per call, and counts the calls. */
function scripted(...answers: (() => Response | Promise<Response>)[]): Fetch & { calls: number } {
  const fake = Object.assign(
    async () => {
      const answer = answers[fake.calls++];
      if (answer === undefined) throw new Error('no answer scripted');
      return answer();
    },
    { calls: 0 },
  );
  return fake;
}

const unavailable = (retryAfter?: string) => () =>
  Response.json(
    { error: 'temporarily_unavailable', error_description: 'retry later' },
    { status: 503, headers: retryAfter === undefined ? {} : { 'retry-after': retryAfter } },
  );

function clientWith(fetch: Fetch, waits: number[] = []) {
  return batonClient({
    issuer,
    tokenEndpoint,
    client,
    fetch,
    retry: { sleep: async (ms) => void waits.push(ms) },
  });
}

describe('requests, errors and retries', () => {
  it('gives up after three attempts and throws the last refusal with its Retry-After', async () => {
    const waits: number[] = [];
    const fetch = scripted(unavailable('1'), unavailable(), unavailable('3'));
    const error = await clientWith(fetch, waits)
      .clientCredentials()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OAuthResponseError);
    expect(error).toMatchObject({ code: 'temporarily_unavailable', status: 503, retryAfterSeconds: 3 });
    // Retry-After when sent, else exponential backoff from 500 ms.
    expect(waits).toEqual([1000, 1000]);
    expect(fetch.calls).toBe(3);
  });

  it('retries a 429 too, but not a Retry-After beyond the limit, nor a 400 or a 500', async () => {
    const rateLimited = () =>
      Response.json({ error: 'temporarily_unavailable' }, { status: 429, headers: { 'retry-after': '60' } });
    const fetch = scripted(rateLimited);
    expect(await refusal(clientWith(fetch).clientCredentials())).toEqual({
      name: 'OAuthResponseError',
      code: 'temporarily_unavailable',
      description: undefined,
      status: 429,
    });
    expect(fetch.calls).toBe(1);
    for (const status of [400, 500]) {
      const once = scripted(() => Response.json({ error: 'server_error' }, { status }));
      await expect(clientWith(once).clientCredentials()).rejects.toMatchObject({ code: 'server_error', status });
      expect(once.calls).toBe(1);
    }
  });

  it('turns network failures and answers that are not OAuth JSON into BatonErrors, never bare Errors', async () => {
    const cases: [string, () => Response | Promise<Response>, Record<string, unknown>][] = [
      [
        'network',
        () => Promise.reject(new TypeError('fetch failed')),
        { name: 'BatonError', code: 'network_error', message: `could not reach ${tokenEndpoint}` },
      ],
      [
        'html error page',
        () => new Response('<html>Bad gateway</html>', { status: 502 }),
        { name: 'BatonError', code: 'invalid_response', message: 'Baton answered HTTP 502 without a JSON body' },
      ],
      [
        'JSON without error',
        () => Response.json({ message: 'nope' }, { status: 400 }),
        {
          name: 'BatonError',
          code: 'invalid_response',
          message: 'Baton answered HTTP 400 without an OAuth error code',
        },
      ],
      [
        'error that is not a string',
        () => Response.json({ error: ['invalid_grant'] }, { status: 400 }),
        {
          name: 'BatonError',
          code: 'invalid_response',
          message: 'Baton answered HTTP 400 without an OAuth error code',
        },
      ],
      [
        '200 not JSON',
        () => new Response('ok', { status: 200 }),
        {
          name: 'BatonError',
          code: 'invalid_response',
          message: 'Baton answered HTTP 200 with a body that is not JSON',
        },
      ],
      [
        '200 JSON array',
        () => Response.json([1]),
        {
          name: 'BatonError',
          code: 'invalid_response',
          message: 'Baton answered HTTP 200 with JSON that is not an object',
        },
      ],
      [
        '200 without access_token',
        () => Response.json({ token_type: 'Bearer' }),
        { name: 'BatonError', code: 'invalid_response', message: 'the token response has no access_token' },
      ],
      [
        '200 access_token not a JWT',
        () => Response.json({ access_token: 'opaque' }),
        { name: 'BatonError', code: 'invalid_response', message: 'the access token is not a JWT' },
      ],
    ];
    const results: Record<string, unknown> = {};
    for (const [name, answer] of cases) results[name] = await refusal(clientWith(scripted(answer)).clientCredentials());
    expect(results).toEqual(Object.fromEntries(cases.map(([name, , expected]) => [name, expected])));
  });

  it('sends the client secret as RFC 6749 Basic, each part form-encoded', async () => {
    let authorization: string | null = null;
    const fetch: Fetch = async (_input, init) => {
      authorization = new Headers(init?.headers).get('authorization');
      return Response.json({ error: 'invalid_client' }, { status: 401 });
    };
    await batonClient({ issuer, tokenEndpoint, fetch, client: { id: 'a b:c', secret: 'p%ss é' } })
      .clientCredentials()
      .catch(() => undefined);
    expect(authorization).toBe(`Basic ${btoa('a+b%3Ac:p%25ss+%C3%A9')}`);
  });

  it('refuses metadata that names another issuer', async () => {
    const fetch = scripted(() =>
      Response.json({ issuer: 'https://evil.example', token_endpoint: 'https://evil.example/t' }),
    );
    expect(await refusal(batonClient({ issuer, fetch, client }).clientCredentials())).toEqual({
      name: 'BatonError',
      code: 'invalid_response',
      message: 'the metadata names issuer https://evil.example, not https://baton.example',
    });
  });
});

/** An unsigned JWT with this header and payload (the agent side only decodes). */
function jwt(header: object, payload: object): string {
  const part = (value: object) =>
    btoa(JSON.stringify(value)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  return `${part(header)}.${part(payload)}.c2ln`;
}

describe('the exchange request', () => {
  it('sends every parameter, repeats lists, and tells a Baton token from an upstream JWT', async () => {
    const forms: Record<string, string[]>[] = [];
    const issued = jwt({ alg: 'EdDSA', typ: 'at+jwt' }, { iss: issuer, sub: 'alice', act: { sub: 'orchestrator' } });
    const fetch: Fetch = async (_input, init) => {
      const form = new URLSearchParams(String(init?.body));
      forms.push(Object.fromEntries([...new Set(form.keys())].map((k) => [k, form.getAll(k)])));
      return Response.json({
        access_token: issued,
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      });
    };
    const baton = clientWith(fetch);
    const upstream = jwt({ alg: 'EdDSA', typ: 'JWT' }, { iss: 'https://id.acme.example', sub: 'alice' });
    const result = await baton.exchange({
      subjectToken: upstream,
      actor: { token: 'agent-token' },
      audience: ['payments', 'calendar'],
      resource: 'https://payments.example',
      scope: ['payments:read', 'payments:transfer'],
      authorizationDetails: [{ type: 'tool_invocation', tool: 'transfer' }],
      requestedTokenType: 'urn:ietf:params:oauth:token-type:jwt',
    });
    await baton.delegate(issued, {});
    const exchange = 'urn:ietf:params:oauth:grant-type:token-exchange';
    expect(forms).toEqual([
      {
        grant_type: [exchange],
        subject_token: [upstream],
        subject_token_type: ['urn:ietf:params:oauth:token-type:jwt'],
        audience: ['payments', 'calendar'],
        resource: ['https://payments.example'],
        scope: ['payments:read payments:transfer'],
        authorization_details: ['[{"type":"tool_invocation","tool":"transfer"}]'],
        requested_token_type: ['urn:ietf:params:oauth:token-type:jwt'],
        actor_token: ['agent-token'],
        actor_token_type: ['urn:ietf:params:oauth:token-type:access_token'],
      },
      {
        grant_type: [exchange],
        subject_token: [issued],
        subject_token_type: ['urn:ietf:params:oauth:token-type:access_token'],
      },
    ]);
    expect(result.claims).toEqual({
      iss: issuer,
      sub: 'alice',
      act: { sub: 'orchestrator' },
      actChain: ['alice', 'orchestrator'],
    });
    expect([result.expiresIn, result.expiresAt, result.scope, result.refreshToken]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });
});

describe('lone surrogates', () => {
  it('are refused before anything is sent (URL encoding would make them U+FFFD), in every form value', async () => {
    const fetch = scripted();
    const baton = clientWith(fetch);
    const cases = [
      baton.clientCredentials({ scope: 'payments:read\ud800' }),
      baton.clientCredentials({ audience: ['payments', '\udc00x'] }),
      baton.exchange({ subjectToken: 'a.b.c', actor: { token: 'x\ud800' } }),
    ];
    const results = [];
    for (const call of cases) results.push(await refusal(call));
    expect(results).toEqual([
      { name: 'BatonError', code: 'invalid_request', message: 'scope contains a lone surrogate' },
      { name: 'BatonError', code: 'invalid_request', message: 'audience contains a lone surrogate' },
      { name: 'BatonError', code: 'invalid_request', message: 'actor_token contains a lone surrogate' },
    ]);
    expect(fetch.calls).toBe(0);
    // A well-formed pair is text like any other.
    expect(() => assertWellFormed('scope', 'payments:read \ud83d\ude00')).not.toThrow();
  });
});

describe('retry settings', () => {
  it('takes the defaults for NaN, infinite or negative settings, so a 503 is tried three times, no more', async () => {
    for (const attempts of [Number.NaN, Number.POSITIVE_INFINITY, -1]) {
      const waits: number[] = [];
      const fetch = scripted(unavailable(), unavailable(), unavailable(), unavailable());
      const flaky = batonClient({
        issuer,
        tokenEndpoint,
        client,
        fetch,
        retry: { attempts, baseDelayMs: Number.NaN, maxDelaySeconds: -5, sleep: async (ms) => void waits.push(ms) },
      });
      await expect(flaky.clientCredentials()).rejects.toMatchObject({ code: 'temporarily_unavailable', status: 503 });
      expect([fetch.calls, waits]).toEqual([3, [500, 1000]]);
    }
  });
});

describe('actChain', () => {
  it('lists the user then the actors oldest first, and stops at anything that is not an actor', () => {
    expect(actChain({ sub: 'alice', act: { sub: 'c', act: { sub: 'b', act: { sub: 'a' } } } })).toEqual([
      'alice',
      'a',
      'b',
      'c',
    ]);
    expect(actChain({ sub: 'alice' })).toEqual(['alice']);
    expect(actChain({ sub: 'alice', act: 'orchestrator' })).toEqual(['alice']);
    expect(actChain({ sub: 'alice', act: [{ sub: 'x' }] })).toEqual(['alice']);
    expect(actChain({ sub: 'alice', act: { sub: 'b', act: { sub: 7 } } })).toEqual(['alice', 'b']);
    let deep: Record<string, unknown> = { sub: 'last' };
    for (let i = 0; i < 100; i++) deep = { sub: `a${i}`, act: deep };
    expect(actChain({ sub: 'alice', act: deep })).toHaveLength(33);
  });
});

describe('AbortSignal', () => {
  it('an aborted signal stops the call before anything is sent', async () => {
    const fetch = scripted(unavailable());
    const controller = new AbortController();
    controller.abort(new Error('user cancelled'));
    const error = await clientWith(fetch)
      .clientCredentials({ signal: controller.signal })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatonError);
    expect(error).toMatchObject({ code: 'aborted', message: 'the request was aborted' });
    expect((error as BatonError).cause).toEqual(new Error('user cancelled'));
    expect(fetch.calls).toBe(0);
  });

  it('aborts the wait between attempts (the default timer), and the request in flight', async () => {
    const fetch = scripted(unavailable('5'));
    const controller = new AbortController();
    const slow = batonClient({ issuer, tokenEndpoint, client, fetch });
    const pending = slow.clientCredentials({ signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    // The 5 s wait ends with the abort, well within the test's deadline.
    await expect(pending).rejects.toMatchObject({ name: 'BatonError', code: 'aborted' });
    expect(fetch.calls).toBe(1);

    const hanging: Fetch = (_input, init) =>
      new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal?.reason)));
    const inFlight = new AbortController();
    const request = batonClient({ issuer, tokenEndpoint, client, fetch: hanging }).clientCredentials({
      signal: inFlight.signal,
    });
    inFlight.abort();
    await expect(request).rejects.toMatchObject({ name: 'BatonError', code: 'aborted' });
  });
});

describe('discovery', () => {
  it('is shared: one caller aborting during it leaves it to the other, and metadata is read once', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const urls: string[] = [];
    const fetch: Fetch = async (input) => {
      urls.push(String(input));
      if (String(input).includes('.well-known')) {
        await held;
        return Response.json({ issuer, token_endpoint: tokenEndpoint });
      }
      return Response.json({ error: 'invalid_client' }, { status: 401 });
    };
    const baton = batonClient({ issuer, fetch, client });
    const leaving = new AbortController();
    const gone = baton.clientCredentials({ signal: leaving.signal });
    const staying = baton.clientCredentials();
    leaving.abort();
    await expect(gone).rejects.toMatchObject({ name: 'BatonError', code: 'aborted' });
    release();
    await expect(staying).rejects.toMatchObject({ name: 'OAuthResponseError', code: 'invalid_client', status: 401 });
    expect(urls).toEqual([`${issuer}/.well-known/oauth-authorization-server`, tokenEndpoint]);
  });

  it('puts the well-known segment before an issuer path (RFC 8414 §3.1)', () => {
    expect(['https://b.example', 'https://b.example/', 'https://b.example/tenant/acme/'].map(metadataUrl)).toEqual([
      'https://b.example/.well-known/oauth-authorization-server',
      'https://b.example/.well-known/oauth-authorization-server',
      'https://b.example/.well-known/oauth-authorization-server/tenant/acme',
    ]);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates, and ignores anything else', () => {
    const clock = { now: () => Date.parse('2026-12-01T10:00:00Z') };
    expect(
      ['3', ' 0 ', 'Tue, 01 Dec 2026 10:00:07 GMT', 'Tue, 01 Dec 2026 09:00:00 GMT', '-1', '1e3', 'soon', ''].map((v) =>
        parseRetryAfter(v, clock),
      ),
    ).toEqual([3, 0, 7, 0, undefined, undefined, undefined, undefined]);
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});
