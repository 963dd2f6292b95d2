import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { jwtBearerAssertionType } from '../../src/core/clients/client-auth.js';
import { handleTokenRequest } from '../../src/core/grants/token-endpoint.js';
import type { FormParams } from '../../src/core/grants/token-request.js';
import type { GrantDetail } from '../../src/core/ports.js';
import { randomId } from '../../src/core/secrets.js';
import type { TokenResponse } from '../../src/core/tokens/mint.js';
import { basic, grants, tokenTypes } from '../support/baton.js';
import { memoryService, type MemoryService } from '../support/memory-baton.js';
import { refusalOf, type Refusal } from '../support/refusal.js';

// Every grant through the one entry point of the token endpoint, on the in-memory service context.
let memory: MemoryService;
beforeAll(async () => {
  memory = await memoryService();
});

const asPlatform = basic('agent-platform');
/** Sends a token request; `who` collects what the endpoint tells its caller the request concerned. */
function send(params: FormParams, authorization: string | undefined) {
  const who: unknown[] = [];
  const result = handleTokenRequest(memory.service, {
    params,
    authorization,
    requestId: 'req-1',
    observe: (w) => who.push(w),
  });
  return { result, who };
}
const token = (params: FormParams, authorization: string | undefined) => send(params, authorization).result;
/** The audit entries written since `seq`. */
const entriesSince = (seq: number) =>
  [...memory.storage.state.entries.values()]
    .filter((e) => e.seq > seq)
    .map((e) => JSON.parse(e.canonical) as Record<string, unknown>);
const head = () => memory.storage.state.head.seq;
const lineageOf = (jwt: string) => memory.service.store.findToken('acme', decodeJwt(jwt).jti as string);
const revoked = (jwt: string) => memory.service.revocations.isRevoked('acme', decodeJwt(jwt).jti as string);
const invalid = (description: string): Refusal => ({ code: 'invalid_request', description });
const invalidGrant = (description: string): Refusal => ({ code: 'invalid_grant', description });

describe('the token endpoint, whatever the grant', () => {
  it.each<[string, FormParams, string | undefined, Refusal]>([
    ['no grant_type', { scope: 'a' }, asPlatform, invalid('grant_type is required')],
    [
      'an unsupported grant_type',
      { grant_type: 'password' },
      asPlatform,
      { code: 'unsupported_grant_type', description: 'grant_type "password" is not supported' },
    ],
    [
      'a grant_type every object has',
      { grant_type: 'constructor' },
      asPlatform,
      { code: 'unsupported_grant_type', description: 'grant_type "constructor" is not supported' },
    ],
    [
      'a repeated single parameter',
      { grant_type: 'client_credentials', scope: ['a', 'b'] },
      asPlatform,
      invalid('scope must be a single string'),
    ],
    [
      'a malformed scope',
      { grant_type: 'client_credentials', scope: 'a  b' },
      asPlatform,
      invalid('scope must be space-separated RFC 6749 scope tokens'),
    ],
    [
      'a subject_token over the size limit',
      { grant_type: grants.exchange, subject_token: 'x'.repeat(8193), subject_token_type: tokenTypes.jwt },
      asPlatform,
      invalid('subject_token is larger than 8192 bytes'),
    ],
    [
      'no client authentication',
      { grant_type: 'client_credentials' },
      undefined,
      { code: 'invalid_client', description: 'client authentication is required' },
    ],
  ])(
    'refuses %s before the client is known, leaving it unaudited (the HTTP layer tallies it)',
    async (_name, params, authorization, refusal) => {
      const before = head();
      const { result, who } = send(params, authorization);
      expect(await refusalOf(result)).toEqual(refusal);
      expect({ entries: entriesSince(before), who }).toEqual({ entries: [], who: [{}] });
    },
  );

  it('refuses a grant the client is not registered for, and audits it with the client', async () => {
    const before = head();
    const { result, who } = send(
      { grant_type: grants.exchange, subject_token: 'x', subject_token_type: tokenTypes.jwt },
      basic('payments'),
    );
    expect(await refusalOf(result)).toEqual({
      code: 'unauthorized_client',
      description: `client is not allowed the ${grants.exchange} grant`,
    });
    expect(who).toEqual([{ tenant: 'acme', client: 'payments' }]);
    expect(entriesSince(before)).toEqual([
      expect.objectContaining({
        tenant: 'acme',
        type: 'token.exchange',
        decision: 'refused',
        client: 'payments',
        reason: `unauthorized_client: client is not allowed the ${grants.exchange} grant`,
        request_id: 'req-1',
      }),
    ]);
  });

  it('refuses a client over its rate limit with 429', async () => {
    const limited = await memoryService({ BATON_RATE_LIMIT: '1' });
    const request = () =>
      handleTokenRequest(limited.service, {
        params: { grant_type: 'client_credentials' },
        authorization: basic('payments'),
        requestId: null,
      });
    expect([(await request()).token_type, (await request()).token_type]).toEqual(['Bearer', 'Bearer']);
    expect(await refusalOf(request())).toEqual({
      code: 'temporarily_unavailable',
      description: 'too many requests from this client; retry later',
      detail: 'over 1 requests/s',
    });
  });
});

describe('client credentials', () => {
  it.each<[string, FormParams, string | undefined, { aud?: string; sub: string; scope?: string }]>([
    ['a resource server, for Baton', { grant_type: 'client_credentials' }, basic('payments'), { sub: 'payments' }],
    [
      'a client, for a resource server, narrowed to what both allow',
      { grant_type: 'client_credentials', resource: ['https://payments.example'] },
      asPlatform,
      { aud: 'https://payments.example', sub: 'agent-platform', scope: 'payments:read payments:transfer' },
    ],
    [
      'an agent by its assertion, with a scope',
      { grant_type: 'client_credentials', scope: 'payments:read', client_assertion_type: jwtBearerAssertionType },
      undefined,
      { sub: 'payments-subagent', scope: 'payments:read' },
    ],
  ])('issues %s', async (_name, params, authorization, claims) => {
    const withAssertion =
      params.client_assertion_type === undefined
        ? params
        : { ...params, client_assertion: await mintAgentAssertion('payments-subagent', memory.service.issuer) };
    const before = head();
    const response = await token(withAssertion, authorization);
    expect(response).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 300,
      ...(claims.scope === undefined ? {} : { scope: claims.scope }),
    });
    expect(decodeJwt(response.access_token)).toEqual({
      iss: memory.service.issuer,
      aud: memory.service.issuer,
      client_id: claims.sub,
      tenant: 'acme',
      iat: expect.any(Number),
      exp: expect.any(Number),
      jti: expect.any(String),
      ...claims,
    });
    expect(entriesSince(before)).toEqual([
      expect.objectContaining({
        type: 'token.client_credentials',
        decision: 'granted',
        jti: decodeJwt(response.access_token).jti,
        root_grant: decodeJwt(response.access_token).jti,
      }),
    ]);
  });

  it.each<[string, FormParams, Refusal]>([
    [
      'a scope the client may not request',
      { scope: 'payments:read admin' },
      { code: 'invalid_scope', description: 'scope "admin" exceeds what this client may request' },
    ],
    [
      'a scope the audience does not offer',
      { scope: 'calendar:read', resource: ['https://payments.example'] },
      { code: 'invalid_scope', description: 'scope "calendar:read" exceeds what the audience offers' },
    ],
    [
      'an unknown audience',
      { audience: ['nowhere'] },
      { code: 'invalid_target', description: 'audience "nowhere" is not a known resource server' },
    ],
    [
      'authorization_details beyond the registration',
      { authorization_details: '[{"type":"tool_invocation","tool":"search","actions":["query"]}]' },
      {
        code: 'invalid_authorization_details',
        description:
          "authorization_details[0] is not covered: the client's registration holds no tool_invocation entry",
      },
    ],
  ])('refuses %s, and audits it', async (_name, params, refusal) => {
    const before = head();
    expect(await refusalOf(token({ grant_type: 'client_credentials', ...params }, asPlatform))).toEqual(refusal);
    expect(entriesSince(before)).toEqual([
      expect.objectContaining({
        type: 'token.client_credentials',
        decision: 'refused',
        client: 'agent-platform',
        reason: `${refusal.code}: ${refusal.description}`,
      }),
    ]);
  });
});

describe('token exchange', () => {
  const exchange = async (subject: string, subjectType: string, actor: string, extra: FormParams = {}) =>
    token(
      {
        grant_type: grants.exchange,
        subject_token: subject,
        subject_token_type: subjectType,
        actor_token: await mintAgentAssertion(actor, memory.service.issuer),
        actor_token_type: tokenTypes.jwt,
        ...extra,
      },
      asPlatform,
    );
  const alice = () => mintUserToken('alice', { audience: memory.service.issuer });

  it('issues each hop with its lineage and its audit entry, and tells who it concerned', async () => {
    const first = await exchange(await alice(), tokenTypes.jwt, 'orchestrator', {
      audience: ['payments'],
      scope: 'payments:read payments:transfer',
    });
    expect(first).toEqual({
      access_token: expect.any(String),
      issued_token_type: tokenTypes.accessToken,
      token_type: 'Bearer',
      expires_in: expect.any(Number),
      scope: 'payments:read payments:transfer',
    });
    const before = head();
    const { result, who } = send(
      {
        grant_type: grants.exchange,
        subject_token: first.access_token,
        subject_token_type: tokenTypes.accessToken,
        actor_token: await mintAgentAssertion('payments-subagent', memory.service.issuer),
        actor_token_type: tokenTypes.jwt,
        scope: 'payments:transfer',
      },
      asPlatform,
    );
    const second = await result;
    const [one, two] = [decodeJwt(first.access_token), decodeJwt(second.access_token)];
    expect(two).toMatchObject({
      sub: 'alice',
      act: { sub: 'payments-subagent', act: { sub: 'orchestrator' } },
      scope: 'payments:transfer',
      exp: one.exp,
    });
    expect(await lineageOf(second.access_token)).toEqual({
      tenant: 'acme',
      jti: two.jti,
      parentJti: one.jti,
      rootGrant: one.jti,
      subject: 'alice',
      actor: 'payments-subagent',
      clientId: 'agent-platform',
      expiresAt: new Date((two.exp as number) * 1000),
    });
    expect(entriesSince(before)).toEqual([
      expect.objectContaining({
        tenant: 'acme',
        type: 'token.exchange',
        decision: 'granted',
        jti: two.jti,
        parent_jti: one.jti,
        root_grant: one.jti,
        user: 'alice',
        actor_chain: ['payments-subagent', 'orchestrator'],
        client: 'agent-platform',
        scope: ['payments:transfer'],
        policy_ids: ['delegate-within-tenant'],
        request_id: 'req-1',
      }),
    ]);
    expect(who).toEqual([{ tenant: 'acme', client: 'agent-platform', actor: 'payments-subagent' }]);
  });

  it.each<[string, () => Promise<FormParams>, Refusal]>([
    [
      'a subject token for another audience',
      async () => ({
        subject_token: await mintUserToken('alice', { audience: 'https://elsewhere.example' }),
        audience: ['payments'],
      }),
      { ...invalid('subject_token is not intended for this audience'), detail: 'unexpected "aud" claim value' },
    ],
    [
      'no audience for an upstream token',
      async () => ({ subject_token: await alice() }),
      { code: 'invalid_target', description: 'audience or resource is required' },
    ],
    [
      'a scope beyond the subject token',
      async () => ({ subject_token: await alice(), audience: ['payments'], scope: 'payments:read ledger:read' }),
      { code: 'invalid_scope', description: 'scope "ledger:read" exceeds the subject token\'s scope' },
    ],
  ])('refuses %s, and audits it with what was established', async (_name, params, refusal) => {
    const before = head();
    expect(await refusalOf(exchange('', tokenTypes.jwt, 'orchestrator', await params()))).toEqual(refusal);
    expect(entriesSince(before)).toEqual([
      expect.objectContaining({
        type: 'token.exchange',
        decision: 'refused',
        client: 'agent-platform',
        reason: `${refusal.code}: ${refusal.description}${refusal.detail === undefined ? '' : ` (${refusal.detail})`}`,
      }),
    ]);
  });
});

describe('authorization code and refresh token', () => {
  const redirectUri = 'http://localhost:3000/callback';
  const verifier = 'v'.repeat(43);
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const hash = (secret: string) => createHash('sha256').update(secret).digest('base64url');
  const detail = (agent: string | null = 'orchestrator'): GrantDetail => ({
    clientId: 'agent-platform',
    user: 'alice',
    agent,
    scope: ['payments:read', 'payments:transfer'],
    audience: ['https://payments.example'],
    authorizationDetails: [],
    redirectUri,
    codeChallenge: challenge,
  });
  /** A code as consent stores it; returns the code and its grant. */
  async function consented(grantDetail = detail(), lifetimeMs = 60_000): Promise<{ code: string; grant: string }> {
    const code = randomId();
    const grant = randomId();
    await memory.service.grants.saveCode(hash(code), 'acme', grant, grantDetail, new Date(Date.now() + lifetimeMs));
    return { code, grant };
  }
  /** What the code and refresh-token grants answer: a token response with its refresh token. */
  type Issued = TokenResponse & { refresh_token: string };
  const redeem = async (code: string, extra: FormParams = {}, authorization = asPlatform) =>
    token(
      {
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri,
        code_verifier: verifier,
        actor_token: await mintAgentAssertion('orchestrator', memory.service.issuer),
        ...extra,
      },
      authorization,
    ) as Promise<Issued>;
  const refresh = (refreshToken: string, extra: FormParams = {}, authorization = asPlatform) =>
    token({ grant_type: 'refresh_token', refresh_token: refreshToken, ...extra }, authorization) as Promise<Issued>;

  it('issues tokens of the grant for the code, then rotates the refresh token, narrowing on request', async () => {
    const { code, grant } = await consented();
    const issued = await redeem(code);
    expect(issued).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 300,
      scope: 'payments:read payments:transfer',
      refresh_token: expect.any(String),
    });
    expect(decodeJwt(issued.access_token)).toMatchObject({
      sub: 'alice',
      act: { sub: 'orchestrator' },
      client_id: 'agent-platform',
      aud: 'https://payments.example',
    });
    expect(await lineageOf(issued.access_token)).toMatchObject({ parentJti: null, rootGrant: grant });
    const rotated = await refresh(issued.refresh_token, { scope: 'payments:read' });
    expect(rotated).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 300,
      scope: 'payments:read',
      refresh_token: expect.any(String),
    });
    expect(await lineageOf(rotated.access_token)).toMatchObject({ rootGrant: grant });
  });

  /** A change to the token request: a parameter's new value, or undefined to leave it out. */
  type Change = () => Promise<Record<string, string | undefined>>;
  const same: Change = async () => ({});
  it.each<[string, () => Promise<string>, Change, Refusal]>([
    ['an unknown code', async () => 'no-such-code', same, invalidGrant('authorization code is invalid')],
    [
      'an expired code',
      async () => (await consented(detail(), -1000)).code,
      same,
      invalidGrant('authorization code has expired'),
    ],
    [
      'a code of a revoked grant',
      async () => {
        const { code, grant } = await consented();
        await memory.service.revocations.revoke('acme', { kind: 'grant', grant });
        return code;
      },
      same,
      invalidGrant('authorization code has been revoked'),
    ],
    [
      'another redirect URI',
      async () => (await consented()).code,
      async () => ({ redirect_uri: 'http://localhost:3000/other' }),
      invalidGrant('redirect_uri does not match the authorization request'),
    ],
    [
      'no verifier',
      async () => (await consented()).code,
      async () => ({ code_verifier: undefined }),
      invalid('code_verifier is required'),
    ],
    [
      'a malformed verifier',
      async () => (await consented()).code,
      async () => ({ code_verifier: 'short' }),
      invalidGrant('code_verifier is malformed'),
    ],
    [
      'a wrong verifier',
      async () => (await consented()).code,
      async () => ({ code_verifier: 'w'.repeat(43) }),
      invalidGrant('code_verifier does not match the code_challenge'),
    ],
    [
      'no actor token, for a code naming an agent',
      async () => (await consented()).code,
      async () => ({ actor_token: undefined }),
      invalidGrant('actor_token is required: the code was issued for agent "orchestrator"'),
    ],
    [
      "another agent's actor token",
      async () => (await consented()).code,
      async () => ({ actor_token: await mintAgentAssertion('payments-subagent', memory.service.issuer) }),
      invalidGrant('actor_token does not prove the requested actor'),
    ],
    [
      'an actor token that is no JWT',
      async () => (await consented()).code,
      async () => ({ actor_token: 'not-a-jwt' }),
      {
        ...invalidGrant('actor_token is not a well-formed JWT'),
        detail: 'Invalid Token or Protected Header formatting',
      },
    ],
  ])('refuses %s', async (_name, code, change, refusal) => {
    const request = {
      grant_type: 'authorization_code',
      code: await code(),
      redirect_uri: redirectUri,
      code_verifier: verifier,
      actor_token: await mintAgentAssertion('orchestrator', memory.service.issuer),
      ...(await change()),
    };
    const sent = Object.fromEntries(Object.entries(request).filter((e): e is [string, string] => e[1] !== undefined));
    expect(await refusalOf(token(sent, asPlatform))).toEqual(refusal);
  });

  it('refuses a code issued to another client', async () => {
    const { code } = await consented({ ...detail(null), clientId: 'agent-console' });
    expect(await refusalOf(redeem(code, {}))).toEqual(invalidGrant('authorization code was issued to another client'));
  });

  it('refuses a code used twice and revokes everything issued under it', async () => {
    const { code } = await consented();
    const issued = await redeem(code);
    expect(await refusalOf(redeem(code))).toEqual(
      invalidGrant('authorization code has already been used; tokens issued from it are revoked'),
    );
    expect(await revoked(issued.access_token)).toBe(true);
    expect(await refusalOf(refresh(issued.refresh_token))).toEqual(invalidGrant('refresh token has been revoked'));
  });

  it('refuses a refresh token used twice and revokes its family', async () => {
    const issued = await redeem((await consented()).code);
    const rotated = await refresh(issued.refresh_token);
    expect(await refusalOf(refresh(issued.refresh_token))).toEqual(
      invalidGrant('refresh token has already been used; its family is revoked'),
    );
    expect([await revoked(issued.access_token), await revoked(rotated.access_token)]).toEqual([true, true]);
    expect(await refusalOf(refresh(rotated.refresh_token))).toEqual(invalidGrant('refresh token has been revoked'));
  });

  const issuedRefresh = async () => (await redeem((await consented()).code)).refresh_token;
  it.each<[string, () => Promise<string>, FormParams, string | undefined, Refusal]>([
    [
      'an unknown refresh token',
      async () => 'no-such-token',
      {},
      asPlatform,
      invalidGrant('refresh token is invalid or expired'),
    ],
    [
      'a scope beyond the grant',
      issuedRefresh,
      { scope: 'calendar:read' },
      asPlatform,
      { code: 'invalid_scope', description: 'scope "calendar:read" exceeds the scope granted' },
    ],
    [
      "another client's refresh token",
      issuedRefresh,
      { client_id: 'agent-console' },
      undefined,
      invalidGrant('refresh token was issued to another client'),
    ],
    [
      'a client not registered for the grant',
      issuedRefresh,
      {},
      basic('globex-platform'),
      { code: 'unauthorized_client', description: 'client is not allowed the refresh_token grant' },
    ],
  ])('refuses %s', async (_name, refreshToken, extra, authorization, refusal) => {
    expect(
      await refusalOf(
        token({ grant_type: 'refresh_token', refresh_token: await refreshToken(), ...extra }, authorization),
      ),
    ).toEqual(refusal);
  });
});
