import { beforeAll, describe, expect, it } from 'vitest';
import { demoSecret, mintAgentAssertion } from '../../src/cli/demo-kit.js';
import {
  authenticateCaller,
  authenticateResourceServer,
  authenticateWithScope,
  checkBodyCredentials,
} from '../../src/core/clients/callers.js';
import {
  authenticateClient,
  checkSecret,
  jwtBearerAssertionType,
  parseBasic,
} from '../../src/core/clients/client-auth.js';
import { handleTokenRequest } from '../../src/core/grants/token-endpoint.js';
import type { ClientAuthParams } from '../../src/core/grants/token-request.js';
import type { Caller, Registry } from '../../src/core/registry/registry.js';
import { basic, grants, tokenTypes } from '../support/baton.js';
import { agentAssertion } from '../support/forge.js';
import { memoryService, type MemoryService } from '../support/memory-baton.js';
import { refusalOf, type Refusal } from '../support/refusal.js';

let memory: MemoryService;
let registry: Registry;
beforeAll(async () => {
  memory = await memoryService();
  registry = memory.service.registry();
});
const caller = (id: string) => registry.callers.get(id) as Caller;
const basicOf = (text: string) => `Basic ${btoa(text)}`;
const failed = (detail: string) => ({ code: 'invalid_client', description: 'client authentication failed', detail });
const invalidClient = (description: string) => ({ code: 'invalid_client', description });
const assertion = (agent = 'orchestrator', claims: Record<string, unknown> = {}) =>
  agentAssertion(agent, memory.service.issuer, claims);

describe('parseBasic', () => {
  it.each([
    ['an id and a secret', basicOf('agent-platform:s3cret'), { id: 'agent-platform', secret: 's3cret' }],
    ['form-encoded parts (RFC 6749 §2.3.1)', basicOf('my%20client:a+b%3Ac'), { id: 'my client', secret: 'a b:c' }],
    ['a secret with colons', basicOf('c:a:b'), { id: 'c', secret: 'a:b' }],
    ['an empty secret', basicOf('c:'), { id: 'c', secret: '' }],
    ['the scheme in any case', `bAsIc ${btoa('c:s')}`, { id: 'c', secret: 's' }],
  ])('reads %s', (_name, header, credentials) => {
    expect(parseBasic(header)).toEqual(credentials);
  });

  it.each([
    ['no base64', 'Basic !!!'],
    ['no colon', basicOf('agent-platform')],
    ['an empty id', basicOf(':secret')],
    ['a broken percent escape', basicOf('a%zz:s')],
    ['a NUL in the id', basicOf('agent-platform%00:s')],
    ['an unpaired surrogate in the secret', basicOf('c:%ED%A0%80')],
  ])('refuses %s as malformed', async (_name, header) => {
    expect(await refusalOf(() => parseBasic(header))).toEqual(invalidClient('malformed Basic authorization header'));
  });
});

describe('checkSecret', () => {
  const sha256 = (text: string) => memory.service.sha256(text);
  it('returns the client whose secret matches, by the method it is registered for', () => {
    expect(
      checkSecret(
        sha256,
        caller('agent-platform'),
        'agent-platform',
        demoSecret('agent-platform'),
        'client_secret_basic',
      ),
    ).toBe(caller('agent-platform'));
    expect(checkSecret(sha256, caller('payments'), 'payments', demoSecret('payments'))).toBe(caller('payments'));
  });

  it.each([
    ['an unknown client', undefined, 'nobody\u0007', 'x', undefined, 'unknown client nobody\uFFFD'],
    [
      'a wrong secret',
      'agent-platform',
      'agent-platform',
      'guess',
      'client_secret_basic',
      'wrong secret for client agent-platform',
    ],
    [
      'another method than the registered one',
      'payments',
      'payments',
      'x',
      'client_secret_post',
      'client payments is registered for client_secret_basic, not client_secret_post',
    ],
    [
      'an agent, which has no secret',
      'orchestrator',
      'orchestrator',
      'x',
      undefined,
      'client orchestrator is registered for private_key_jwt, not a secret',
    ],
    [
      'a public client, which has no secret',
      'agent-console',
      'agent-console',
      'x',
      undefined,
      'client agent-console is registered for none, not a secret',
    ],
  ] as const)('refuses %s', async (_name, id, named, secret, method, detail) => {
    expect(
      await refusalOf(() => checkSecret(sha256, id === undefined ? undefined : caller(id), named, secret, method)),
    ).toEqual(failed(detail));
  });
});

describe('authenticateClient (token and revocation endpoints)', () => {
  const authenticate = (authorization: string | undefined, params: ClientAuthParams) =>
    authenticateClient(memory.service, registry, authorization, params);

  /** What a request carries for client authentication: its Authorization header and the form's parameters. */
  type Credentials = () => Promise<readonly [string | undefined, ClientAuthParams]>;
  const bySecret =
    (authorization: string | undefined, params: ClientAuthParams = {}): Credentials =>
    async () => [authorization, params];
  const byAssertion =
    (params: ClientAuthParams, agent = 'orchestrator', claims: Record<string, unknown> = {}): Credentials =>
    async () => [
      undefined,
      { client_assertion_type: jwtBearerAssertionType, client_assertion: await assertion(agent, claims), ...params },
    ];

  it.each<[string, Credentials, string]>([
    ['Basic', bySecret(basic('agent-platform')), 'agent-platform'],
    [
      'Basic with a client_id naming the same client',
      bySecret(basic('agent-platform'), { client_id: 'agent-platform' }),
      'agent-platform',
    ],
    ['a public client by client_id alone', bySecret(undefined, { client_id: 'agent-console' }), 'agent-console'],
    [
      'an empty Authorization header and a public client',
      bySecret('  ', { client_id: 'agent-console' }),
      'agent-console',
    ],
    ['an agent by its assertion (RFC 7523)', byAssertion({}), 'orchestrator'],
    [
      'an agent by its assertion and its client_id',
      byAssertion({ client_id: 'payments-subagent' }, 'payments-subagent'),
      'payments-subagent',
    ],
  ])('authenticates %s', async (_name, credentials, id) => {
    const [authorization, params] = await credentials();
    expect((await authenticate(authorization, params)).id).toBe(id);
  });

  const now = () => Math.floor(Date.now() / 1000);
  it.each<[string, Credentials, Refusal]>([
    ['no credentials', bySecret(undefined), invalidClient('client authentication is required')],
    [
      'a client_id of a confidential client alone',
      bySecret(undefined, { client_id: 'agent-platform' }),
      invalidClient('client authentication is required'),
    ],
    [
      'a Bearer header',
      bySecret('Bearer x.y.z'),
      invalidClient('the Authorization header must use the Basic scheme at this endpoint'),
    ],
    [
      'Basic and a secret in the body',
      bySecret(basic('agent-platform'), { client_secret: 'x' }),
      invalidClient('more than one client authentication method was used'),
    ],
    [
      'Basic and a lone client_assertion_type',
      bySecret(basic('agent-platform'), { client_assertion_type: jwtBearerAssertionType }),
      invalidClient('more than one client authentication method was used'),
    ],
    [
      'a secret and an assertion in the body',
      byAssertion({ client_id: 'orchestrator', client_secret: 'x' }),
      invalidClient('more than one client authentication method was used'),
    ],
    [
      'Basic and a client_id of another client',
      bySecret(basic('agent-platform'), { client_id: 'payments' }),
      invalidClient('client_id does not match the authenticated client'),
    ],
    [
      'a wrong Basic secret',
      bySecret(basic('agent-platform', 'guess')),
      failed('wrong secret for client agent-platform'),
    ],
    [
      'a secret in the body for a client registered for Basic',
      bySecret(undefined, { client_id: 'payments', client_secret: demoSecret('payments') }),
      failed('client payments is registered for client_secret_basic, not client_secret_post'),
    ],
    [
      'a secret in the body without client_id',
      bySecret(undefined, { client_secret: 'x' }),
      invalidClient('client_id is required with client_secret'),
    ],
    [
      'an assertion of another type',
      bySecret(undefined, { client_assertion_type: 'urn:example:saml', client_assertion: 'x.y.z' }),
      invalidClient(`client_assertion_type must be ${jwtBearerAssertionType}`),
    ],
    [
      'client_assertion_type alone',
      bySecret(undefined, { client_assertion_type: jwtBearerAssertionType }),
      invalidClient('client_assertion is required with client_assertion_type'),
    ],
    [
      'an assertion that is no JWT',
      bySecret(undefined, { client_assertion_type: jwtBearerAssertionType, client_assertion: 'not-a-jwt' }),
      {
        ...invalidClient('client_assertion is not a well-formed JWT'),
        detail: 'Invalid Token or Protected Header formatting',
      },
    ],
    [
      'an assertion without sub',
      byAssertion({}, 'orchestrator', { sub: undefined }),
      invalidClient('client_assertion lacks the "sub" claim'),
    ],
    [
      'an assertion whose sub holds a NUL',
      byAssertion({}, 'orchestrator', { sub: 'a\u0000' }),
      invalidClient('client_assertion has an invalid "sub" claim: it contains a NUL character'),
    ],
    [
      'an assertion and a client_id of another agent',
      byAssertion({ client_id: 'payments-subagent' }),
      invalidClient('client_id does not match the client_assertion'),
    ],
    [
      'an assertion of an unknown client',
      byAssertion({}, 'orchestrator', { iss: 'rogue', sub: 'rogue' }),
      failed('unknown client rogue'),
    ],
    [
      'an assertion of a client registered for a secret',
      byAssertion({}, 'orchestrator', { iss: 'payments', sub: 'payments' }),
      failed('client payments is registered for client_secret_basic, not private_key_jwt'),
    ],
    [
      "an assertion signed with another agent's key",
      byAssertion({}, 'payments-subagent', { iss: 'orchestrator', sub: 'orchestrator' }),
      {
        ...invalidClient('client_assertion is signed with an unknown key'),
        detail: 'no applicable key found in the JSON Web Key Set',
      },
    ],
    [
      'an assertion for another audience',
      byAssertion({}, 'orchestrator', { aud: 'https://elsewhere.example' }),
      {
        ...invalidClient('client_assertion is not intended for this audience'),
        detail: 'unexpected "aud" claim value',
      },
    ],
    [
      'an expired assertion',
      byAssertion({}, 'orchestrator', { iat: now() - 600, exp: now() - 60 }),
      { ...invalidClient('client_assertion is expired'), detail: '"exp" claim timestamp check failed' },
    ],
  ])('refuses %s', async (_name, credentials, refusal) => {
    const [authorization, params] = await credentials();
    expect(await refusalOf(authenticate(authorization, params))).toEqual(refusal);
  });

  it('takes an assertion once', async () => {
    const params = { client_assertion_type: jwtBearerAssertionType, client_assertion: await assertion() };
    expect((await authenticate(undefined, params)).id).toBe('orchestrator');
    expect(await refusalOf(authenticate(undefined, params))).toEqual(
      invalidClient('client_assertion has already been used'),
    );
  });
});

describe('callers of the other APIs', () => {
  /** A token the client obtained for itself with client credentials. */
  const ownToken = async (client: string, scope?: string): Promise<string> =>
    (
      await handleTokenRequest(memory.service, {
        params: { grant_type: 'client_credentials', ...(scope === undefined ? {} : { scope }) },
        authorization: basic(client),
        requestId: null,
      })
    ).access_token;
  /** An agent's own token, from client credentials with its assertion. */
  const agentToken = async (agent: string): Promise<string> =>
    (
      await handleTokenRequest(memory.service, {
        params: {
          grant_type: 'client_credentials',
          client_assertion_type: jwtBearerAssertionType,
          client_assertion: await assertion(agent),
        },
        authorization: undefined,
        requestId: null,
      })
    ).access_token;

  it("authenticates by Basic with the registered scope, and by Bearer with the token's scope", async () => {
    expect(await authenticateCaller(memory.service, registry, basic('ops-console'))).toEqual({
      caller: caller('ops-console'),
      scope: new Set(['baton:admin', 'baton:audit', 'baton:metrics']),
    });
    expect(
      await authenticateCaller(memory.service, registry, `Bearer ${await ownToken('ops-console', 'baton:audit')}`),
    ).toEqual({ caller: caller('ops-console'), scope: new Set(['baton:audit']) });
  });

  it.each<[string, () => Promise<string | undefined>, Refusal]>([
    ['no credentials', async () => undefined, invalidClient('authentication is required')],
    ['an empty header', async () => ' ', invalidClient('authentication is required')],
    ['another scheme', async () => 'Digest x', invalidClient('use Basic or Bearer authentication')],
    ['a wrong secret', async () => basic('payments', 'guess'), failed('wrong secret for client payments')],
    [
      'a Bearer token that is no JWT',
      async () => 'Bearer garbage',
      { ...invalidClient('bearer token is malformed or unsupported'), detail: 'ERR_JWS_INVALID: Invalid Compact JWS' },
    ],
    [
      'a delegated token',
      async () => {
        const subject = await agentToken('payments-subagent');
        const exchanged = await handleTokenRequest(memory.service, {
          params: {
            grant_type: grants.exchange,
            subject_token: subject,
            subject_token_type: tokenTypes.accessToken,
            actor_token: await mintAgentAssertion('orchestrator', memory.service.issuer),
            actor_token_type: tokenTypes.jwt,
          },
          authorization: basic('agent-platform'),
          requestId: null,
        });
        return `Bearer ${exchanged.access_token}`;
      },
      invalidClient('bearer token does not authenticate a registered caller'),
    ],
  ])('refuses %s', async (_name, authorization, refusal) => {
    expect(await refusalOf(authenticateCaller(memory.service, registry, await authorization()))).toEqual(refusal);
  });

  it('admits only resource servers to decisions, and only callers holding a scope to its API', async () => {
    expect(await authenticateResourceServer(memory.service, registry, basic('payments'))).toBe(caller('payments'));
    expect(await refusalOf(authenticateResourceServer(memory.service, registry, basic('agent-platform')))).toEqual({
      code: 'access_denied',
      description: 'the caller is not a registered resource server',
    });
    expect((await authenticateWithScope(memory.service, registry, basic('ops-console'), 'baton:admin')).caller).toBe(
      caller('ops-console'),
    );
    expect(
      await refusalOf(
        authenticateWithScope(
          memory.service,
          registry,
          `Bearer ${await ownToken('ops-console', 'baton:audit')}`,
          'baton:admin',
        ),
      ),
    ).toEqual({ code: 'access_denied', description: 'the caller lacks the baton:admin scope' });
  });

  it.each([
    ['nothing more', {}, undefined],
    ['a client_id naming the caller', { client_id: 'payments' }, undefined],
    [
      'a client_id naming another client',
      { client_id: 'calendar' },
      invalidClient('client_id does not match the authenticated client'),
    ],
    ['a client secret', { client_secret: 'x' }, invalidClient('more than one client authentication method was used')],
    [
      'a client assertion',
      { client_assertion: 'x' },
      invalidClient('more than one client authentication method was used'),
    ],
    [
      'a lone client_assertion_type',
      { client_assertion_type: jwtBearerAssertionType },
      invalidClient('more than one client authentication method was used'),
    ],
  ])('checks credentials in a form beside the header: %s', async (_name, params, refusal) => {
    if (refusal === undefined) expect(checkBodyCredentials(params, caller('payments'))).toBeUndefined();
    else expect(await refusalOf(() => checkBodyCredentials(params, caller('payments')))).toEqual(refusal);
  });
});
