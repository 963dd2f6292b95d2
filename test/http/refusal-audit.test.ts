import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { basic, grants, postToken, tokenTypes } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

// Refusals before an endpoint's own logic are audited through a tally bounded per source, route
// and error. The clock Baton is given moves on by hand, so each case opens an interval of its own.
let baton: MemoryBaton;
let offset = 0;
const clock = { now: () => Date.now() + offset };
const nextInterval = () => {
  offset += 61_000;
};
beforeAll(async () => {
  baton = await memoryBaton({}, { clock });
});
afterAll(async () => {
  await baton?.close();
});

interface Entry {
  readonly tenant: string;
  readonly type: string;
  readonly decision: string;
  readonly client: string | null;
  readonly reason: string;
  readonly request_id: string | null;
}
/** The entries appended after `seq`, read from the log's store (another tenant's are not visible to an auditor). */
async function entriesAfter(seq: number): Promise<Entry[]> {
  return baton.auditEntries(seq) as unknown as Entry[];
}
async function head(): Promise<number> {
  return baton.storage.state.head.seq;
}
const send = async (method: string, path: string, headers: Record<string, string>, body?: string) => {
  const response = await baton.fetch(`${baton.url}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: text === '' ? undefined : (JSON.parse(text) as unknown),
    headers: response.headers,
  };
};

const form = 'application/x-www-form-urlencoded';
const json = 'application/json';
const contentTypeForm = 'content type must be application/x-www-form-urlencoded';
const fromAddress = (route: string) => `${route} from address 127.0.0.1`;

interface Case {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly status: number;
  readonly error: string;
  readonly description: string;
  readonly tenant: string;
  readonly client: string | null;
  readonly source: string;
}
const cases: Case[] = [
  {
    name: 'a JSON body at the token endpoint',
    method: 'POST',
    path: '/oauth2/token',
    headers: { 'content-type': json, authorization: basic('agent-platform') },
    body: '{"grant_type":"client_credentials"}',
    status: 400,
    error: 'invalid_request',
    description: contentTypeForm,
    tenant: 'unknown',
    client: null,
    source: fromAddress('POST /oauth2/token'),
  },
  {
    name: 'a repeated parameter at the token endpoint',
    method: 'POST',
    path: '/oauth2/token',
    headers: { 'content-type': form, authorization: basic('agent-platform') },
    body: 'grant_type=client_credentials&scope=a&scope=b',
    status: 400,
    error: 'invalid_request',
    description: 'parameter scope is repeated',
    tenant: 'unknown',
    client: null,
    source: fromAddress('POST /oauth2/token'),
  },
  {
    name: 'too large a body at the token endpoint',
    method: 'POST',
    path: '/oauth2/token',
    headers: { 'content-type': form },
    body: `grant_type=client_credentials&pad=${'x'.repeat(70_000)}`,
    status: 413,
    error: 'invalid_request',
    description: 'request body is larger than 65536 bytes',
    tenant: 'unknown',
    client: null,
    source: fromAddress('POST /oauth2/token'),
  },
  {
    name: 'another method at the token endpoint',
    method: 'GET',
    path: '/oauth2/token',
    headers: {},
    status: 405,
    error: 'invalid_request',
    description: 'use POST',
    tenant: 'unknown',
    client: null,
    source: fromAddress('GET /oauth2/token'),
  },
  {
    name: 'no client authentication at the token endpoint',
    method: 'POST',
    path: '/oauth2/token',
    headers: { 'content-type': form },
    body: 'grant_type=client_credentials',
    status: 401,
    error: 'invalid_client',
    description: 'client authentication is required',
    tenant: 'unknown',
    client: null,
    source: fromAddress('POST /oauth2/token'),
  },
  {
    name: 'an unsupported grant type',
    method: 'POST',
    path: '/oauth2/token',
    headers: { 'content-type': form },
    body: 'grant_type=password',
    status: 400,
    error: 'unsupported_grant_type',
    description: 'grant_type "password" is not supported',
    tenant: 'unknown',
    client: null,
    source: fromAddress('POST /oauth2/token'),
  },
  {
    name: 'a JSON body at revocation',
    method: 'POST',
    path: '/oauth2/revoke',
    headers: { 'content-type': json, authorization: basic('agent-platform') },
    body: '{"token":"x"}',
    status: 400,
    error: 'invalid_request',
    description: contentTypeForm,
    tenant: 'unknown',
    client: null,
    source: fromAddress('POST /oauth2/revoke'),
  },
  {
    name: 'a repeated token at revocation',
    method: 'POST',
    path: '/oauth2/revoke',
    headers: { 'content-type': form, authorization: basic('agent-platform') },
    body: 'token=a&token=b',
    status: 400,
    error: 'invalid_request',
    description: 'parameter token is repeated',
    tenant: 'unknown',
    client: null,
    source: fromAddress('POST /oauth2/revoke'),
  },
  {
    name: 'no client authentication at revocation',
    method: 'POST',
    path: '/oauth2/revoke',
    headers: { 'content-type': form },
    body: 'token=x',
    status: 401,
    error: 'invalid_client',
    description: 'client authentication is required',
    tenant: 'unknown',
    client: null,
    source: fromAddress('POST /oauth2/revoke'),
  },
  {
    name: 'no credentials at introspection',
    method: 'POST',
    path: '/oauth2/introspect',
    headers: { 'content-type': form },
    body: 'token=x',
    status: 401,
    error: 'invalid_client',
    description: 'authentication is required',
    tenant: 'unknown',
    client: null,
    source: fromAddress('POST /oauth2/introspect'),
  },
  {
    name: 'malformed JSON at /authorize',
    method: 'POST',
    path: '/authorize',
    headers: { 'content-type': json, authorization: basic('payments') },
    body: '{"token":',
    status: 400,
    error: 'invalid_request',
    description: 'request body is not valid JSON',
    tenant: 'acme',
    client: 'payments',
    source: 'POST /authorize from client payments',
  },
  {
    name: 'a caller that is no resource server at /authorize',
    method: 'POST',
    path: '/authorize',
    headers: { 'content-type': json, authorization: basic('agent-platform') },
    body: '{}',
    status: 403,
    error: 'access_denied',
    description: 'the caller is not a registered resource server',
    tenant: 'unknown',
    client: null,
    source: fromAddress('POST /authorize'),
  },
  {
    name: 'a form at AuthZEN',
    method: 'POST',
    path: '/access/v1/evaluation',
    headers: { 'content-type': form, authorization: basic('payments') },
    body: 'subject=alice',
    status: 400,
    error: 'invalid_request',
    description: 'content type must be application/json',
    tenant: 'acme',
    client: 'payments',
    source: 'POST /access/v1/evaluation from client payments',
  },
  {
    name: 'a malformed batch at AuthZEN',
    method: 'POST',
    path: '/access/v1/evaluations',
    headers: { 'content-type': json, authorization: basic('payments') },
    body: '{"evaluations":{}}',
    status: 400,
    error: 'invalid_request',
    description: 'evaluations: Invalid input: expected array, received object',
    tenant: 'acme',
    client: 'payments',
    source: 'POST /access/v1/evaluations from client payments',
  },
  {
    name: 'a bad kill-switch body',
    method: 'POST',
    path: '/admin/revoke',
    headers: { 'content-type': json, authorization: basic('ops-console') },
    body: '{"agent":""}',
    status: 400,
    error: 'invalid_request',
    description: 'body must be {"agent": "<agent id>"}, {"user": "<user id>"} or {"action_id": "<action id>"}',
    tenant: 'acme',
    client: 'ops-console',
    source: 'POST /admin/revoke from client ops-console',
  },
  {
    name: 'a policy rollback to a version written in exponent notation',
    method: 'POST',
    path: '/admin/policies/rollback',
    headers: { 'content-type': json, authorization: basic('ops-console') },
    body: '{"version":1e0}',
    status: 400,
    error: 'invalid_request',
    description: 'version must be a positive integer written in digits',
    tenant: 'acme',
    client: 'ops-console',
    source: 'POST /admin/policies/rollback from client ops-console',
  },
  {
    name: 'a reload without the admin scope',
    method: 'POST',
    path: '/admin/policies/reload',
    headers: { 'content-type': json, authorization: basic('agent-platform') },
    body: '{}',
    status: 403,
    error: 'access_denied',
    description: 'the caller lacks the baton:admin scope',
    tenant: 'unknown',
    client: null,
    source: fromAddress('POST /admin/policies/reload'),
  },
  {
    name: 'a range that names no entry at /audit/verify',
    method: 'GET',
    path: '/audit/verify?from=5&to=4',
    headers: { authorization: basic('ops-console') },
    status: 400,
    error: 'invalid_request',
    description: 'from must not be greater than to',
    tenant: 'acme',
    client: 'ops-console',
    source: 'GET /audit/verify from client ops-console',
  },
];

// First, while Baton's clock is still the real one: these requests carry freshly minted tokens.
describe('error descriptions echo a short, sanitized piece of what was sent', () => {
  const platform = { 'content-type': form, authorization: basic('agent-platform') };
  const long = 'x'.repeat(500);
  /** The first `max` characters of an already sanitized text, marked as cut. */
  const cut = (text: string, max: number) => `${Array.from(text).slice(0, max).join('')}…`;
  const exchange = async (extra: Record<string, string>) =>
    new URLSearchParams({
      grant_type: grants.exchange,
      subject_token: await mintUserToken('alice', { audience: baton.issuer }),
      subject_token_type: tokenTypes.jwt,
      actor_token: await mintAgentAssertion('orchestrator', baton.issuer),
      actor_token_type: tokenTypes.jwt,
      ...extra,
    }).toString();

  it.each([
    [
      'a repeated parameter named with controls',
      async () => '%01evil%0Aname%1B[31m=1&%01evil%0Aname%1B[31m=2',
      'invalid_request',
      'parameter \uFFFDevil\uFFFDname\uFFFD[31m is repeated',
    ],
    [
      'a long repeated parameter name',
      async () => `${long}=1&${long}=2`,
      'invalid_request',
      `parameter ${'x'.repeat(64)}… is repeated`,
    ],
    [
      'a grant type with a control, a bidi override and a line separator',
      async () => new URLSearchParams({ grant_type: 'pass\u0001word\u202E\u2028' }).toString(),
      'unsupported_grant_type',
      'grant_type "pass\uFFFDword\uFFFD\uFFFD" is not supported',
    ],
    [
      'a long grant type',
      async () => new URLSearchParams({ grant_type: long }).toString(),
      'unsupported_grant_type',
      `grant_type "${'x'.repeat(64)}…" is not supported`,
    ],
    [
      'a subject token type with controls',
      async () => exchange({ subject_token_type: `urn:\r\nX-Injected: 1${long}` }),
      'invalid_request',
      `subject_token_type "${cut(`urn:\uFFFD\uFFFDX-Injected: 1${long}`, 64)}" is not supported`,
    ],
    [
      'an audience with controls',
      async () => exchange({ audience: `pay\u0007ments\u0001${long}` }),
      'invalid_target',
      `audience "${cut(`pay\uFFFDments\uFFFD${long}`, 120)}" is not a known resource server`,
    ],
    [
      'an unknown authorization_details type',
      async () =>
        exchange({
          audience: 'payments',
          authorization_details: JSON.stringify([{ type: `\u001b]0;pwned\u0007${long}` }]),
        }),
      'invalid_authorization_details',
      `authorization_details[0] has unknown type "${cut(`\uFFFD]0;pwned\uFFFD${long}`, 64)}"`,
    ],
    // The schema validator writes member names percent-encoded in its pointers.
    [
      'an undeclared member named with controls',
      async () =>
        exchange({
          audience: 'payments',
          authorization_details: JSON.stringify([
            { type: 'tool_invocation', tool: 't', actions: ['a'], 'evil\nmember': 1 },
          ]),
        }),
      'invalid_authorization_details',
      'authorization_details[0] /evil%0Amember: is not a member this type declares',
    ],
  ])('%s', async (_name, body, error, description) => {
    const answer = await send('POST', '/oauth2/token', platform, await body());
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 400,
      body: { error, error_description: description },
    });
  });

  it('in the 404 answer too', async () => {
    const answer = await send('GET', `/%00%1B[2J${'y'.repeat(300)}`, {});
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 404,
      body: {
        error: 'not_found',
        error_description: `no route for GET ${cut(`/\uFFFD\uFFFD[2J${'y'.repeat(300)}`, 120)}`,
      },
    });
  });
});

describe('refusals before the endpoint logic are audited', () => {
  it.each(cases)('$name', async (c) => {
    nextInterval();
    const before = await head();
    const requestId = `case-${cases.indexOf(c)}`;
    const answer = await send(c.method, c.path, { ...c.headers, 'x-request-id': requestId }, c.body);
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: c.status,
      body: { error: c.error, error_description: c.description },
    });
    // Summaries of earlier intervals (no request id) may come along; this refusal is one entry of its own.
    expect((await entriesAfter(before)).filter((e) => e.request_id !== null)).toEqual([
      expect.objectContaining({
        tenant: c.tenant,
        type: 'request.refusal',
        decision: 'refused',
        client: c.client,
        reason: `${c.source}: ${c.error} (${c.status}): ${c.description}`,
        request_id: requestId,
      }),
    ]);
  });

  it.each([
    [
      'no token at revocation, by a known client',
      '/oauth2/revoke',
      'token_type_hint=access_token',
      form,
      basic('agent-platform'),
      'token.revocation',
      'agent-platform',
      'invalid_request: token is required',
    ],
    [
      'a JSON body at introspection',
      '/oauth2/introspect',
      '{"token":"x"}',
      json,
      basic('payments'),
      'token.introspection',
      'payments',
      'invalid_request: content type must be application/x-www-form-urlencoded',
    ],
  ])(
    'audits %s, refused once the client is known, as an entry of its own, not through the tally',
    async (_name, path, body, type, authorization, entryType, client, reason) => {
      nextInterval();
      const before = await head();
      const answer = await send('POST', path, { 'content-type': type, authorization }, body);
      expect(answer.status).toBe(400);
      expect((await entriesAfter(before)).map((e) => [e.tenant, e.type, e.decision, e.client, e.reason])).toEqual([
        ['acme', entryType, 'refused', client, reason],
      ]);
    },
  );

  it('audits a refused decision once, as a decision, not again through the tally', async () => {
    nextInterval();
    const before = await head();
    const answer = await send(
      'POST',
      '/authorize',
      { 'content-type': json, authorization: basic('payments') },
      JSON.stringify({
        token: 'x',
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount: -1 },
        action_id: 'once',
      }),
    );
    expect(answer.status).toBe(400);
    expect((await entriesAfter(before)).map((e) => [e.type, e.decision, e.client])).toEqual([
      ['decision', 'refused', 'payments'],
    ]);
  });

  it('still audits a refused grant once, as before (not through the tally)', async () => {
    nextInterval();
    const before = await head();
    const refused = await postToken(baton, { grant_type: 'client_credentials', scope: 'nothing-of-mine' });
    expect(refused.status).toBe(400);
    expect((await entriesAfter(before)).map((e) => [e.type, e.decision, e.reason])).toEqual([
      [
        'token.client_credentials',
        'refused',
        'invalid_scope: scope "nothing-of-mine" exceeds what this client may request',
      ],
    ]);
  });
});

describe('a flood of refusals', () => {
  it('of wrong client secrets writes one entry with the detail, then one count', async () => {
    nextInterval();
    const before = await head();
    const answers = await Promise.all(
      Array.from({ length: 100 }, () =>
        postToken(baton, { grant_type: 'client_credentials' }, { authorization: basic('agent-platform', 'guess') }),
      ),
    );
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([401]));
    expect((await entriesAfter(before)).map((e) => [e.tenant, e.type, e.client, e.reason])).toEqual([
      [
        'unknown',
        'request.refusal',
        null,
        `${fromAddress('POST /oauth2/token')}: invalid_client (401): client authentication failed (wrong secret for client agent-platform)`,
      ],
    ]);
    nextInterval();
    const end = await head();
    await postToken(baton, { grant_type: 'client_credentials' }, { authorization: basic('agent-platform', 'guess') });
    expect((await entriesAfter(end)).map((e) => e.reason.replace(/from \S+Z to \S+Z/, 'from T0 to T1'))).toEqual([
      `${fromAddress('POST /oauth2/token')}: 99 more invalid_client (401) from T0 to T1; the last: client authentication failed`,
      `${fromAddress('POST /oauth2/token')}: invalid_client (401): client authentication failed (wrong secret for client agent-platform)`,
    ]);
  });

  it('writes one entry per source, route and error at once and the exact count of the rest when the interval ends, without failing others', async () => {
    nextInterval();
    const before = await head();
    const flood = Array.from({ length: 300 }, () =>
      send('POST', '/oauth2/token', { 'content-type': json }, '{"grant_type":"client_credentials"}'),
    );
    const wellFormed = Array.from({ length: 20 }, () =>
      postToken(baton, { grant_type: 'client_credentials' }, { authorization: basic('payments') }),
    );
    const [refused, granted] = await Promise.all([Promise.all(flood), Promise.all(wellFormed)]);
    expect(new Set(refused.map((r) => `${r.status} ${JSON.stringify(r.body)}`))).toEqual(
      new Set([`400 {"error":"invalid_request","error_description":"${contentTypeForm}"}`]),
    );
    expect(granted.map((g) => g.status)).toEqual(Array.from({ length: 20 }, () => 200));
    const during = (await entriesAfter(before)).filter((e) => e.type === 'request.refusal');
    expect(during.map((e) => e.reason)).toEqual([
      `${fromAddress('POST /oauth2/token')}: invalid_request (400): ${contentTypeForm}`,
    ]);

    const end = await head();
    nextInterval();
    expect((await send('POST', '/oauth2/token', { 'content-type': json }, '{}')).status).toBe(400);
    const after = await entriesAfter(end);
    expect(after.map((e) => [e.tenant, e.type, e.reason.replace(/from \S+Z to \S+Z/, 'from T0 to T1')])).toEqual([
      [
        'unknown',
        'request.refusal',
        `${fromAddress('POST /oauth2/token')}: 299 more invalid_request (400) from T0 to T1; the last: ${contentTypeForm}`,
      ],
      ['unknown', 'request.refusal', `${fromAddress('POST /oauth2/token')}: invalid_request (400): ${contentTypeForm}`],
    ]);
  });
});
