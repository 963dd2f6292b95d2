import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { randomUUID } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { jwtBearerAssertionType } from '../../src/core/clients/client-auth.js';
import { sweepExpiredAgents } from '../../src/core/registry/sub-agents.js';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { bearerOf, grants, postToken, tokenTypes, type PostResult } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

// An orchestrator agent registers an ephemeral sub-agent within its own tenant and limits; the
// sub-agent acts as itself until its expiry, and the sweep then removes it from the registry.

const payment = (amount: string) => ({
  type: 'payment_initiation',
  actions: ['initiate'],
  instructedAmount: { currency: 'EUR', amount },
});

let baton: MemoryBaton;
/** The service clock: the wall clock plus `offset` ms, which only grows. */
let offset = 0;
const clock = { now: () => Date.now() + offset };
let subKey: CryptoKey;
let subJwks: { keys: JWK[] };

/** The orchestrator may hold payment initiations of up to 100 EUR (the demo file gives it none). */
const grantOrchestratorDetails = () =>
  baton.registryStore.edit('test', (document) => ({
    ...document,
    agents: document.agents.map((a) =>
      a.id === 'orchestrator' ? { ...a, authorization_details: [payment('100.00')] } : a,
    ),
  }));

beforeAll(async () => {
  const pair = await generateKeyPair('EdDSA', { extractable: true });
  subKey = pair.privateKey;
  subJwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'sub-1', alg: 'EdDSA', use: 'sig' }] };
  baton = await memoryBaton({}, { clock });
  await grantOrchestratorDetails();
});

/** The orchestrator's own token for Baton, as its Bearer credentials. */
async function bearerOfAgent(agent: string, sign?: (claims: Record<string, unknown>) => Promise<string>) {
  const result = await postToken(
    baton,
    {
      grant_type: 'client_credentials',
      client_assertion_type: jwtBearerAssertionType,
      client_assertion: sign === undefined ? await mintAgentAssertion(agent, baton.issuer) : await sign({}),
    },
    {},
  );
  expect(result.status, JSON.stringify(result.body)).toBe(200);
  return { authorization: `Bearer ${result.body.access_token as string}` };
}

let orchestrator: Record<string, string>;
/** The sub-agent the first test registers, which the last one sees expire. */
let registered = '';
beforeEach(async () => {
  orchestrator = await bearerOfAgent('orchestrator');
});

const register = async (body: unknown, headers: Record<string, string> = orchestrator): Promise<PostResult> => {
  const response = await baton.fetch(`${baton.url}/agents`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? {} : JSON.parse(text) };
};
const outcome = (result: PostResult) => ({ status: result.status, body: result.body });
const fresh = () => `helper-${randomUUID().slice(0, 8)}`;
const request = (more: Record<string, unknown> = {}) => ({
  id: fresh(),
  name: 'Payments helper',
  jwks: subJwks,
  expires_in: 600,
  ...more,
});

/** An RFC 7523 assertion signed by the sub-agent's key. */
const subAssertion = (id: string) => {
  const now = Math.floor(clock.now() / 1000);
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: 'EdDSA', kid: 'sub-1' })
    .setIssuer(id)
    .setSubject(id)
    .setAudience(baton.issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(subKey);
};

/** The sub-agent exchanges alice's token for itself, as its own client. */
const actAs = async (id: string) =>
  postToken(
    baton,
    {
      grant_type: grants.exchange,
      subject_token: await mintUserToken('alice', { audience: baton.issuer }),
      subject_token_type: tokenTypes.jwt,
      audience: 'payments',
      scope: 'payments:read',
      client_assertion_type: jwtBearerAssertionType,
      client_assertion: await subAssertion(id),
    },
    {},
  );

const audited = (before: number) =>
  baton.auditEntries(before).map((e) => [e.type, e.decision, e.reason, e.client, e.user, e.actor_chain]);

describe('POST /agents', () => {
  it("registers a sub-agent within the orchestrator's limits, which then acts as itself", async () => {
    const id = fresh();
    registered = id;
    const before = baton.storage.state.head.seq;
    const registeredAt = clock.now();
    const result = await register(
      request({ id, scope: ['payments:read'], authorization_details: [payment('50.00')], metadata: { task: 't-1' } }),
    );
    const expiresAt = (result.body as { expires_at: string }).expires_at;
    expect(outcome(result)).toEqual({
      status: 201,
      body: {
        id,
        name: 'Payments helper',
        owner: 'alice',
        expires_at: expiresAt,
        scope: ['payments:read'],
        authorization_details: [payment('50.00')],
        metadata: { task: 't-1', parent: 'orchestrator' },
      },
    });
    expect(Date.parse(expiresAt) - registeredAt).toBeGreaterThanOrEqual(600_000);
    expect(Date.parse(expiresAt) - registeredAt).toBeLessThan(610_000);
    expect(audited(before)).toEqual([
      [
        'registry.subagent',
        'applied',
        `registered sub-agent ${id} of agent orchestrator, expiring at ${expiresAt}`,
        'orchestrator',
        'alice',
        [id, 'orchestrator'],
      ],
    ]);

    const acted = await actAs(id);
    expect(acted.status, JSON.stringify(acted.body)).toBe(200);
    expect(decodeJwt(acted.body.access_token as string)).toMatchObject({ sub: 'alice', act: { sub: id } });
    // Applying the registry file does not remove a live sub-agent.
    await baton.reloadRegistry();
    expect(baton.service.registry().agents.get(id)?.owner).toBe('alice');
    await grantOrchestratorDetails();
  });

  it("inherits the orchestrator's scope ceiling and none of its details when they are left out", async () => {
    const sub = await bearerOfAgent('payments-subagent');
    const result = await register(request(), sub);
    expect(result.status, JSON.stringify(result.body)).toBe(201);
    expect([result.body.scope, result.body.authorization_details]).toEqual([
      ['payments:read', 'payments:transfer'],
      [],
    ]);
  });

  it.each<[string, () => Record<string, unknown>, number, string, string]>([
    [
      'a scope beyond the ceiling',
      () => request({ scope: ['payments:read', 'calendar:read'] }),
      400,
      'invalid_scope',
      'scope "calendar:read" exceeds what agent "payments-subagent" may hold',
    ],
  ])('refuses a sub-agent of the payments sub-agent with %s', async (_name, body, status, error, description) => {
    const sub = await bearerOfAgent('payments-subagent');
    expect(outcome(await register(body(), sub))).toEqual({ status, body: { error, error_description: description } });
  });

  it.each<[string, () => unknown, number, string, string]>([
    [
      "details beyond the orchestrator's",
      () => request({ authorization_details: [payment('100.01')] }),
      400,
      'invalid_authorization_details',
      'authorization_details[0] is not covered by agent "orchestrator"\'s registration: /instructedAmount/amount exceeds the granted "100.00"',
    ],
    [
      'details of a type the orchestrator does not hold',
      () => request({ authorization_details: [{ type: 'tool_invocation', tool: 'search', actions: ['query'] }] }),
      400,
      'invalid_authorization_details',
      'authorization_details[0] is not covered: agent "orchestrator"\'s registration holds no tool_invocation entry',
    ],
    [
      'a lifetime beyond the configured most',
      () => request({ expires_in: 3601 }),
      400,
      'invalid_request',
      'expires_in must be at most 3600 seconds',
    ],
    ['a zero lifetime', () => request({ expires_in: 0 }), 400, 'invalid_request', 'expires_in must be positive'],
    ['a negative lifetime', () => request({ expires_in: -60 }), 400, 'invalid_request', 'expires_in must be positive'],
    [
      'a fractional lifetime',
      () => request({ expires_in: 1.5 }),
      400,
      'invalid_request',
      'expires_in must be a whole number of seconds',
    ],
    [
      'a huge lifetime',
      () => request({ expires_in: 1e308 }),
      400,
      'invalid_request',
      'expires_in must be at most 3600 seconds',
    ],
    [
      'a lifetime as text',
      () => request({ expires_in: '600' }),
      400,
      'invalid_request',
      'expires_in Invalid input: expected number, received string',
    ],
    [
      'no lifetime',
      () => request({ expires_in: undefined }),
      400,
      'invalid_request',
      'expires_in Invalid input: expected number, received undefined',
    ],
    [
      'an id taken by an agent',
      () => request({ id: 'orchestrator' }),
      409,
      'conflict',
      '"orchestrator" is already registered',
    ],
    [
      'an id taken by a client of another tenant',
      () => request({ id: 'globex-platform' }),
      409,
      'conflict',
      '"globex-platform" is already registered',
    ],
    [
      'a bad id',
      () => request({ id: 'no spaces' }),
      400,
      'invalid_request',
      'id must be 1–128 letters, digits, ".", "_", ":" or "-", starting with a letter or digit',
    ],
    [
      'a private key',
      () => request({ jwks: { keys: [{ ...subJwks.keys[0], d: 'secret' }] } }),
      400,
      'invalid_request',
      'jwks.keys.0.d private key material is not allowed in a registry',
    ],
    [
      'an owner of its own choosing',
      () => request({ owner: 'mallory' }),
      400,
      'invalid_request',
      'body Unrecognized key: "owner"',
    ],
    ['a NUL in the name', () => request({ name: 'a\u0000b' }), 400, 'invalid_request', 'name contains a NUL character'],
  ])('refuses %s, and audits the refusal', async (_name, body, status, error, description) => {
    const before = baton.storage.state.head.seq;
    const result = await register(body());
    expect(outcome(result)).toEqual({ status, body: { error, error_description: description } });
    expect(audited(before)).toEqual([
      ['registry.subagent', 'refused', `${error}: ${description}`, 'orchestrator', null, []],
    ]);
  });

  it('keeps a __proto__ member of the metadata as data: it never sets the parent', async () => {
    const body = `{"id":"${fresh()}","name":"x","jwks":${JSON.stringify(subJwks)},"expires_in":60,"metadata":{"__proto__":{"parent":"ops-console"}}}`;
    const response = await baton.fetch(`${baton.url}/agents`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...orchestrator },
      body,
    });
    const registered = (await response.json()) as { metadata: Record<string, unknown> };
    expect([response.status, registered.metadata.parent]).toEqual([201, 'orchestrator']);
  });

  it("refuses a lifetime past the orchestrator's own expiry", async () => {
    const until = new Date(clock.now() + 120_000).toISOString();
    await baton.registryStore.edit('test', (document) => ({
      ...document,
      agents: document.agents.map((a) => (a.id === 'orchestrator' ? { ...a, expires_at: until } : a)),
    }));
    try {
      expect(outcome(await register(request({ expires_in: 600 })))).toEqual({
        status: 400,
        body: {
          error: 'invalid_request',
          error_description: `expires_in reaches past agent "orchestrator"'s own expiry (${until})`,
        },
      });
      expect((await register(request({ expires_in: 60 }))).status).toBe(201);
    } finally {
      await baton.registryStore.edit('test', (document) => ({
        ...document,
        agents: document.agents.map((a) => {
          if (a.id !== 'orchestrator') return a;
          const { expires_at: _gone, ...rest } = a;
          return rest;
        }),
      }));
    }
  });

  it('refuses a caller that is not an agent, or not authenticated, or suspended', async () => {
    expect(outcome(await register(request(), await bearerOf(baton, 'ops-console', 'baton:admin')))).toEqual({
      status: 403,
      body: { error: 'access_denied', error_description: 'only an agent may register a sub-agent, with its own token' },
    });
    expect(outcome(await register(request(), {}))).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'authentication is required' },
    });
    await baton.registryStore.edit('test', (document) => ({
      ...document,
      suspensions: [{ tenant: 'acme', kind: 'agent', id: 'orchestrator', since: '2026-12-01T09:00:00Z' }],
    }));
    try {
      expect(outcome(await register(request()))).toEqual({
        status: 401,
        body: { error: 'invalid_client', error_description: 'agent orchestrator is suspended' },
      });
    } finally {
      await baton.registryStore.edit('test', (document) => ({ ...document, suspensions: [] }));
    }
  });

  it("keeps a sub-agent's own sub-agents within its narrower ceiling", async () => {
    const id = fresh();
    expect((await register(request({ id, scope: ['payments:read'] }))).status).toBe(201);
    const sign = async () => subAssertion(id);
    const child = await bearerOfAgent(id, sign);
    expect(outcome(await register(request({ scope: ['payments:transfer'] }), child))).toEqual({
      status: 400,
      body: {
        error: 'invalid_scope',
        error_description: `scope "payments:transfer" exceeds what agent "${id}" may hold`,
      },
    });
    const grandchild = await register(request({ expires_in: 60 }), child);
    expect([grandchild.status, grandchild.body.owner, grandchild.body.scope, grandchild.body.metadata]).toEqual([
      201,
      'alice',
      ['payments:read'],
      { parent: id },
    ]);
  });

  // Last: the service clock moves past every sub-agent's expiry.
  it('refuses the sub-agent from its expiry on, by the service clock; the sweep then removes it, audited', async () => {
    const id = registered;
    offset += 600_000;
    const expired = await actAs(id);
    expect({ status: expired.status, body: expired.body }).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: `agent ${id} has expired` },
    });

    // Every sub-agent of this suite has expired by now; the demo's own agents never expire.
    const stored = (await baton.registryStore.read()).document.agents.map((a) => a.id);
    const ephemeral = stored.filter((a) => !['orchestrator', 'payments-subagent', 'globex-assistant'].includes(a));
    expect(ephemeral).toContain(id);
    const swept = baton.storage.state.head.seq;
    expect(await sweepExpiredAgents(baton.service, baton.registryStore)).toBe(ephemeral.length);
    expect((await baton.registryStore.read()).document.agents.map((a) => a.id)).toEqual([
      'orchestrator',
      'payments-subagent',
      'globex-assistant',
    ]);
    expect(audited(swept)).toEqual([
      ['registry.sweep', 'applied', `removed expired agents ${ephemeral.join(', ')}`, null, null, ephemeral],
    ]);
    const again = baton.storage.state.head.seq;
    expect(await sweepExpiredAgents(baton.service, baton.registryStore)).toBe(0);
    expect(audited(again)).toEqual([]);
  });
});
