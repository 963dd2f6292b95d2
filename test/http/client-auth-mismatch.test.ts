import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoKey, demoSecret, mintAgentAssertion } from '../../src/cli/demo-kit.js';
import { basic, postToken } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { jwtBearerAssertionType } from '../../src/core/clients/client-auth.js';

// Refusals before the client is known are audited through a tally that writes the first of each
// interval at once (see RefusalTally); Baton's clock moves on by hand so each request opens one.
let offset = 0;
const clock = { now: () => Date.now() + offset };
let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton({}, { clock });
});
afterAll(async () => {
  await baton?.close();
});

const invalidClientHeader = 'Basic realm="baton", error="invalid_client"';
const callerHeader = 'Basic realm="baton", Bearer realm="baton"';
const twoMethods = 'more than one client authentication method was used';
let serial = 0;

/** An assertion whose `iss` and `sub` differ (signed by the subject's key). */
async function assertionFor(iss: string, sub: string): Promise<string> {
  const { key, kid } = await demoKey(sub);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', kid })
    .setIssuer(iss)
    .setSubject(sub)
    .setAudience(baton.issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .setJti(`mismatch-${(serial += 1)}`)
    .sign(key);
}

interface MismatchCase {
  readonly name: string;
  readonly authorization?: () => Promise<string>;
  readonly body: () => Promise<Record<string, string>>;
  readonly description: string;
  /** What the audit entry adds for logs. */
  readonly detail?: string;
}
const reason = (c: MismatchCase) => `invalid_client: ${c.description}${c.detail === undefined ? '' : ` (${c.detail})`}`;
/** The tally's entry for a refusal before the client is known. */
const tallied = (route: string, c: MismatchCase) => ({
  type: 'request.refusal',
  decision: 'refused',
  reason: `POST ${route} from address 127.0.0.1: invalid_client (401): ${c.description}${c.detail === undefined ? '' : ` (${c.detail})`}`,
});

/** Client authentication that names two clients, or two methods, or a scheme the endpoint does not take. */
const clientCases: MismatchCase[] = [
  {
    name: 'Basic and client_secret in the body',
    authorization: async () => basic('agent-platform'),
    body: async () => ({ client_id: 'agent-platform', client_secret: demoSecret('agent-platform') }),
    description: twoMethods,
  },
  {
    name: 'Basic and a client assertion',
    authorization: async () => basic('agent-platform'),
    body: async () => ({
      client_assertion_type: jwtBearerAssertionType,
      client_assertion: await mintAgentAssertion('orchestrator', baton.issuer),
    }),
    description: twoMethods,
  },
  {
    name: 'Basic and a lone client_assertion_type',
    authorization: async () => basic('agent-platform'),
    body: async () => ({ client_assertion_type: jwtBearerAssertionType }),
    description: twoMethods,
  },
  {
    name: 'client_secret and a client assertion in the body',
    body: async () => ({
      client_id: 'orchestrator',
      client_secret: 'x',
      client_assertion_type: jwtBearerAssertionType,
      client_assertion: await mintAgentAssertion('orchestrator', baton.issuer),
    }),
    description: twoMethods,
  },
  {
    name: 'Basic for one client and client_id of another',
    authorization: async () => basic('agent-platform'),
    body: async () => ({ client_id: 'payments' }),
    description: 'client_id does not match the authenticated client',
  },
  {
    name: 'client_id other than the assertion subject',
    body: async () => ({
      client_id: 'payments-subagent',
      client_assertion_type: jwtBearerAssertionType,
      client_assertion: await mintAgentAssertion('orchestrator', baton.issuer),
    }),
    description: 'client_id does not match the client_assertion',
  },
  {
    name: 'client_id equal to the assertion issuer but not its subject',
    body: async () => ({
      client_id: 'orchestrator',
      client_assertion_type: jwtBearerAssertionType,
      client_assertion: await assertionFor('orchestrator', 'payments-subagent'),
    }),
    description: 'client_id does not match the client_assertion',
  },
  {
    name: 'an assertion whose issuer is not its subject',
    body: async () => ({
      client_assertion_type: jwtBearerAssertionType,
      client_assertion: await assertionFor('orchestrator', 'payments-subagent'),
    }),
    description: 'client_assertion has an unexpected issuer',
    detail: 'unexpected "iss" claim value',
  },
  {
    name: 'a Bearer header',
    authorization: async () => 'Bearer x.y.z',
    body: async () => ({}),
    description: 'the Authorization header must use the Basic scheme at this endpoint',
  },
  {
    name: 'a Bearer header and a client assertion',
    authorization: async () => 'Bearer x.y.z',
    body: async () => ({
      client_assertion_type: jwtBearerAssertionType,
      client_assertion: await mintAgentAssertion('orchestrator', baton.issuer),
    }),
    description: 'the Authorization header must use the Basic scheme at this endpoint',
  },
  {
    name: 'client_secret without client_id',
    body: async () => ({ client_secret: demoSecret('agent-platform') }),
    description: 'client_id is required with client_secret',
  },
  {
    name: 'client_assertion_type without client_assertion',
    body: async () => ({ client_assertion_type: jwtBearerAssertionType }),
    description: 'client_assertion is required with client_assertion_type',
  },
];

/** Sends a form and returns status, body, challenge, and the audit entry recorded for it. */
async function send(path: string, form: Record<string, string>, authorization: string | undefined) {
  const requestId = `mismatch-request-${(serial += 1)}`;
  offset += 61_000;
  const response = await baton.fetch(`${baton.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-request-id': requestId,
      ...(authorization === undefined ? {} : { authorization }),
    },
    body: new URLSearchParams(form),
  });
  const text = await response.text();
  const audited = baton
    .auditEntries()
    .filter((e) => e.request_id === requestId)
    .map((e) => ({ type: e.type, decision: e.decision, reason: e.reason }));
  return {
    status: response.status,
    body: text === '' ? undefined : (JSON.parse(text) as unknown),
    challenge: response.headers.get('www-authenticate'),
    audited,
  };
}

describe('client authentication that is ambiguous or names two clients is invalid_client (401)', () => {
  it('still takes a client_id that names the authenticated client', async () => {
    // First, while Baton's clock is still the real one the assertions are minted on.
    expect(
      (
        await postToken(
          baton,
          { grant_type: 'client_credentials', client_id: 'agent-platform' },
          { authorization: basic('agent-platform') },
        )
      ).status,
    ).toBe(200);
    expect(
      (
        await postToken(
          baton,
          {
            grant_type: 'client_credentials',
            client_id: 'orchestrator',
            client_assertion_type: jwtBearerAssertionType,
            client_assertion: await mintAgentAssertion('orchestrator', baton.issuer),
          },
          {},
        )
      ).status,
    ).toBe(200);
    expect(
      await send('/oauth2/revoke', { token: 'anything', client_id: 'agent-platform' }, basic('agent-platform')),
    ).toEqual({ status: 200, body: undefined, challenge: null, audited: [] });
    expect(await send('/oauth2/introspect', { token: 'anything', client_id: 'payments' }, basic('payments'))).toEqual({
      status: 200,
      body: { active: false },
      challenge: null,
      audited: [],
    });
  });

  it.each(clientCases)('at the token endpoint: $name', async (c) => {
    const result = await send(
      '/oauth2/token',
      { grant_type: 'client_credentials', ...(await c.body()) },
      await c.authorization?.(),
    );
    expect(result).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: c.description },
      challenge: invalidClientHeader,
      audited: [tallied('/oauth2/token', c)],
    });
  });

  it.each(clientCases)('at the revocation endpoint: $name', async (c) => {
    const result = await send('/oauth2/revoke', { token: 'anything', ...(await c.body()) }, await c.authorization?.());
    expect(result).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: c.description },
      challenge: invalidClientHeader,
      audited: [tallied('/oauth2/revoke', c)],
    });
  });

  const resourceServerToken = async () => {
    const issued = await postToken(baton, { grant_type: 'client_credentials' }, { authorization: basic('payments') });
    return `Bearer ${issued.body.access_token as string}`;
  };
  const introspectionCases: MismatchCase[] = [
    {
      name: 'Basic and client_secret in the body',
      authorization: async () => basic('payments'),
      body: async () => ({ client_id: 'payments', client_secret: demoSecret('payments') }),
      description: twoMethods,
    },
    {
      name: 'Basic and a client assertion',
      authorization: async () => basic('payments'),
      body: async () => ({
        client_assertion_type: jwtBearerAssertionType,
        client_assertion: await mintAgentAssertion('orchestrator', baton.issuer),
      }),
      description: twoMethods,
    },
    {
      name: 'Bearer and client_secret in the body',
      authorization: resourceServerToken,
      body: async () => ({ client_secret: demoSecret('payments') }),
      description: twoMethods,
    },
    {
      name: 'Basic for one resource server and client_id of another',
      authorization: async () => basic('payments'),
      body: async () => ({ client_id: 'calendar' }),
      description: 'client_id does not match the authenticated client',
    },
    {
      name: 'Bearer for one resource server and client_id of another',
      authorization: resourceServerToken,
      body: async () => ({ client_id: 'calendar' }),
      description: 'client_id does not match the authenticated client',
    },
  ];
  it.each(introspectionCases)('at the introspection endpoint: $name', async (c) => {
    const result = await send(
      '/oauth2/introspect',
      { token: 'anything', ...(await c.body()) },
      await c.authorization?.(),
    );
    expect(result).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: c.description },
      challenge: callerHeader,
      audited: [{ type: 'token.introspection', decision: 'refused', reason: reason(c) }],
    });
  });

  it('audits every refused introspection, and who was refused when known', async () => {
    const unauthenticated = await send('/oauth2/introspect', { token: 'anything' }, basic('payments', 'wrong'));
    expect(unauthenticated).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'client authentication failed' },
      challenge: callerHeader,
      audited: [
        {
          type: 'request.refusal',
          decision: 'refused',
          reason:
            'POST /oauth2/introspect from address 127.0.0.1: invalid_client (401): client authentication failed (wrong secret for client payments)',
        },
      ],
    });
    const notAResourceServer = await send('/oauth2/introspect', { token: 'anything' }, basic('agent-platform'));
    expect(notAResourceServer).toEqual({
      status: 403,
      body: { error: 'access_denied', error_description: 'the caller is not a registered resource server' },
      challenge: null,
      audited: [
        {
          type: 'request.refusal',
          decision: 'refused',
          reason:
            'POST /oauth2/introspect from address 127.0.0.1: access_denied (403): the caller is not a registered resource server',
        },
      ],
    });
    const noToken = await send('/oauth2/introspect', {}, basic('payments'));
    expect(noToken).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'token is required' },
      challenge: null,
      audited: [{ type: 'token.introspection', decision: 'refused', reason: 'invalid_request: token is required' }],
    });
  });
});
