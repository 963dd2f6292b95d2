import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { jwtBearerAssertionType } from '../../src/core/clients/client-auth.js';
import { basic, bearerOf, postToken, type PostResult } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { addGlobexOperator } from '../support/operators.js';

// Baton's clock is the test's: key rotation overlaps end when the test moves it.
let offset = 0;
const clock = { now: () => Date.now() + offset };
let baton: MemoryBaton;
let acme: Record<string, string>;
let globex: Record<string, string>;

beforeAll(async () => {
  baton = await memoryBaton({}, { clock });
  // A globex operator, so that both tenants have one.
  globexBearer = await addGlobexOperator(baton);
  acme = await bearerOf(baton, 'ops-console', 'baton:admin');
  globex = await globexBearer();
});

/** The Authorization header of a fresh admin token of the globex operator. */
let globexBearer: () => Promise<Record<string, string>>;
afterAll(async () => {
  await baton?.close();
});

/** Sends a JSON request (or raw text) to the admin API. */
async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = acme,
): Promise<PostResult> {
  const response = await baton.fetch(`${baton.url}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>,
  };
}

async function newKey(kid: string): Promise<{ privateKey: CryptoKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA');
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA' } };
}

let serial = 0;
/** An agent's client-credentials request proven by an assertion signed with `key` at Baton's clock. */
async function agentToken(agent: string, key: CryptoKey, kid: string): Promise<PostResult> {
  const now = Math.floor(clock.now() / 1000);
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', kid })
    .setIssuer(agent)
    .setSubject(agent)
    .setAudience(baton.issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .setJti(`admin-test-${(serial += 1)}`)
    .sign(key);
  return postToken(
    baton,
    { grant_type: 'client_credentials', client_assertion_type: jwtBearerAssertionType, client_assertion: assertion },
    {},
  );
}

/** The newest audit entry's interesting members. */
function lastEntry(): Record<string, unknown> {
  const entry = baton.auditEntries().at(-1) as Record<string, unknown>;
  return {
    tenant: entry.tenant,
    type: entry.type,
    decision: entry.decision,
    client: entry.client,
    reason: entry.reason,
  };
}

describe('agents', () => {
  let key: { privateKey: CryptoKey; jwk: JWK };
  beforeAll(async () => {
    key = await newKey('helper-1');
  });

  it('creates an agent (201), which authenticates at once, and audits the change', async () => {
    const created = await call('POST', '/admin/agents', {
      id: 'helper-agent',
      name: 'Helper',
      owner: 'alice',
      jwks: { keys: [key.jwk] },
      scope: ['payments:read'],
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    expect(created.body).toEqual({
      id: 'helper-agent',
      name: 'Helper',
      owner: 'alice',
      jwks: { keys: [key.jwk] },
      scope: ['payments:read'],
    });
    expect(lastEntry()).toEqual({
      tenant: 'acme',
      type: 'registry.change',
      decision: 'applied',
      client: 'ops-console',
      reason: 'created agent "helper-agent"',
    });
    expect((await agentToken('helper-agent', key.privateKey, 'helper-1')).status).toBe(200);
    expect(baton.service.registry().agents.get('helper-agent')?.tenant).toBe('acme');
  });

  it('reads one (200) and lists them, a page at a time', async () => {
    expect(await call('GET', '/admin/agents/helper-agent')).toMatchObject({
      status: 200,
      body: { id: 'helper-agent', name: 'Helper', owner: 'alice', jwks: { keys: [key.jwk] }, scope: ['payments:read'] },
    });
    const first = await call('GET', '/admin/agents?limit=2');
    expect(first.status).toBe(200);
    expect((first.body.items as { id: string }[]).map((a) => a.id)).toEqual(['helper-agent', 'orchestrator']);
    expect(first.body.next_cursor).toBe('orchestrator');
    const second = await call('GET', '/admin/agents?limit=2&cursor=orchestrator');
    expect((second.body.items as { id: string }[]).map((a) => a.id)).toEqual(['payments-subagent']);
    expect(second.body.next_cursor).toBeNull();
    // Another tenant's agents are not listed.
    const theirs = await call('GET', '/admin/agents', undefined, globex);
    expect((theirs.body.items as { id: string }[]).map((a) => a.id)).toEqual(['globex-assistant']);
  });

  it.each([
    ['0', 'limit must be an integer from 1 to 200'],
    ['201', 'limit must be an integer from 1 to 200'],
    ['-1', 'limit must be an integer from 1 to 200'],
    ['1e2', 'limit must be an integer from 1 to 200'],
    ['abc', 'limit must be an integer from 1 to 200'],
  ])('refuses limit=%s', async (limit, description) => {
    expect(await call('GET', `/admin/agents?limit=${limit}`)).toMatchObject({
      status: 400,
      body: { error: 'invalid_request', error_description: description },
    });
  });

  it('replaces one with PUT (200), auditing the fields that changed', async () => {
    const updated = await call('PUT', '/admin/agents/helper-agent', {
      name: 'Helper v2',
      owner: 'alice',
      jwks: { keys: [key.jwk] },
    });
    expect(updated).toMatchObject({ status: 200 });
    expect(updated.body).toEqual({ id: 'helper-agent', name: 'Helper v2', owner: 'alice', jwks: { keys: [key.jwk] } });
    expect(lastEntry()).toEqual({
      tenant: 'acme',
      type: 'registry.change',
      decision: 'applied',
      client: 'ops-console',
      reason: 'updated agent "helper-agent": name, scope',
    });
  });

  it('refuses a duplicate id with 409, in its own tenant or another', async () => {
    for (const id of ['helper-agent', 'globex-assistant', 'agent-platform']) {
      expect(
        await call('POST', '/admin/agents', { id, name: 'x', owner: 'alice', jwks: { keys: [key.jwk] } }),
      ).toMatchObject({
        status: 409,
        body: { error: 'conflict', error_description: `"${id}" is already registered` },
      });
    }
    expect(lastEntry()).toEqual({
      tenant: 'acme',
      type: 'registry.change',
      decision: 'refused',
      client: 'ops-console',
      reason: 'create agent: conflict: "agent-platform" is already registered',
    });
  });

  it("answers another tenant's agent exactly as a missing one (404)", async () => {
    const missing = { error: 'not_found', error_description: 'no agent "nobody"' };
    expect(await call('GET', '/admin/agents/nobody')).toMatchObject({ status: 404, body: missing });
    for (const [method, body] of [
      ['GET', undefined],
      ['PUT', { name: 'stolen', owner: 'alice', jwks: { keys: [key.jwk] } }],
      ['DELETE', undefined],
    ] as const) {
      const theirs = await call(method, '/admin/agents/globex-assistant', body);
      expect(theirs).toMatchObject({
        status: 404,
        body: { error: 'not_found', error_description: 'no agent "globex-assistant"' },
      });
    }
    expect(baton.service.registry().agents.get('globex-assistant')?.name).toBe('Globex Assistant');
    expect(lastEntry()).toEqual({
      tenant: 'acme',
      type: 'registry.change',
      decision: 'refused',
      client: 'ops-console',
      reason: 'delete agent "globex-assistant": not_found: no agent "globex-assistant"',
    });
    // Nothing was written in the other tenant's log.
    expect(baton.auditEntries().filter((e) => e.tenant === 'globex' && e.type === 'registry.change')).toEqual([]);
  });

  it('refuses a body naming another tenant, and takes its own', async () => {
    expect(
      await call('POST', '/admin/agents', {
        id: 'x-agent',
        tenant: 'globex',
        name: 'x',
        owner: 'alice',
        jwks: { keys: [key.jwk] },
      }),
    ).toMatchObject({
      status: 400,
      body: { error: 'invalid_request', error_description: "tenant must be left out or be the caller's own tenant" },
    });
  });

  it('refuses a private key with 400 and the problem inside the entity', async () => {
    const refused = await call('POST', '/admin/agents', {
      id: 'bad-key-agent',
      name: 'x',
      owner: 'alice',
      jwks: { keys: [{ ...key.jwk, d: 'secret' }] },
    });
    expect(refused.status).toBe(400);
    expect(refused.body).toEqual({
      error: 'invalid_request',
      error_description: 'the agent is invalid: /jwks/keys/0/d: private key material is not allowed in a registry',
      problems: [{ path: '/jwks/keys/0/d', message: 'private key material is not allowed in a registry' }],
    });
    expect(await call('GET', '/admin/agents/bad-key-agent')).toMatchObject({ status: 404 });
  });

  it('refuses deleting an agent a client lists (409, naming it); deletes one nothing lists (204)', async () => {
    expect(await call('DELETE', '/admin/agents/orchestrator')).toMatchObject({
      status: 409,
      body: {
        error: 'conflict',
        error_description: 'the agent is still referred to by client "agent-platform", client "agent-console"',
      },
    });
    const deleted = await call('DELETE', '/admin/agents/helper-agent');
    expect(deleted.status).toBe(204);
    expect(deleted.body).toEqual({});
    expect(lastEntry()).toMatchObject({ decision: 'applied', reason: 'deleted agent "helper-agent"' });
    expect(await call('GET', '/admin/agents/helper-agent')).toMatchObject({ status: 404 });
    expect((await agentToken('helper-agent', key.privateKey, 'helper-1')).status).toBe(401);
  });
});

describe('who may call', () => {
  it('answers 401 without credentials and 403 without the admin scope, as the other admin calls', async () => {
    const none = await call('GET', '/admin/agents', undefined, {});
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ error: 'invalid_client', error_description: 'authentication is required' });
    const platform = await call('GET', '/admin/agents', undefined, { authorization: basic('agent-platform') });
    expect(platform.status).toBe(403);
    expect(platform.body).toEqual({
      error: 'access_denied',
      error_description: 'the caller lacks the baton:admin scope',
    });
    const audit = await bearerOf(baton, 'ops-console', 'baton:audit');
    expect((await call('POST', '/admin/agents', { id: 'x' }, audit)).status).toBe(403);
  });
});

describe('clients and their secrets', () => {
  const body = {
    client_id: 'new-app',
    name: 'New App',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    scope: ['payments:read'],
  };
  let secret: string;

  it('generates a secret on create, shows it once, keeps only its hash', async () => {
    const created = await call('POST', '/admin/clients', body);
    expect(created.status).toBe(201);
    secret = created.body.client_secret as string;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{44}$/);
    expect(created.body).toEqual({ ...body, client_secret: secret });
    expect(await call('GET', '/admin/clients/new-app')).toMatchObject({ status: 200, body });
    expect(JSON.stringify((await call('GET', '/admin/clients/new-app')).body)).not.toContain('sha256');
    const stored = (await baton.registryStore.read()).document.clients.find((c) => c.client_id === 'new-app');
    expect(stored?.client_secret_sha256).toBe(sha256Hex(secret));
    expect(JSON.stringify(baton.auditEntries())).not.toContain(secret);
    expect(JSON.stringify(baton.auditEntries())).not.toContain(sha256Hex(secret));
    const token = await postToken(
      baton,
      { grant_type: 'client_credentials', scope: 'payments:read' },
      { authorization: basic('new-app', secret) },
    );
    expect(token.status).toBe(200);
  });

  it.each([
    ['client_secret_sha256', 'a'.repeat(64)],
    ['client_secret', 'chosen-by-caller'],
  ])('refuses a body carrying %s', async (member, value) => {
    expect(await call('POST', '/admin/clients', { ...body, client_id: 'other-app', [member]: value })).toMatchObject({
      status: 400,
      body: {
        error: 'invalid_request',
        error_description: `${member} may not be given: Baton generates a client secret and shows it once`,
      },
    });
  });

  it('keeps the secret across a PUT, and rotates it on request: the old one stops at once', async () => {
    const put = await call('PUT', '/admin/clients/new-app', { ...body, name: 'Renamed' });
    expect(put).toMatchObject({ status: 200, body: { ...body, name: 'Renamed' } });
    expect(put.body.client_secret).toBeUndefined();
    const rotated = await call('POST', '/admin/clients/new-app/secret');
    expect(rotated.status).toBe(200);
    const fresh = rotated.body.client_secret as string;
    expect(fresh).not.toBe(secret);
    expect(lastEntry()).toMatchObject({ decision: 'applied', reason: 'rotated the secret of client "new-app"' });
    const grant = { grant_type: 'client_credentials', scope: 'payments:read' };
    expect((await postToken(baton, grant, { authorization: basic('new-app', secret) })).status).toBe(401);
    expect((await postToken(baton, grant, { authorization: basic('new-app', fresh) })).status).toBe(200);
  });

  it('refuses rotating the secret of a client without one', async () => {
    expect(await call('POST', '/admin/clients/agent-console/secret')).toMatchObject({
      status: 400,
      body: { error: 'invalid_request', error_description: 'the client does not authenticate with a client secret' },
    });
  });

  it('makes a secret when a PUT switches a client to a secret method, and only then', async () => {
    const { jwk } = await newKey('switch-1');
    const keyed = {
      client_id: 'switching-app',
      name: 'S',
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [jwk] },
      grant_types: ['client_credentials'],
    };
    const created = await call('POST', '/admin/clients', keyed);
    expect(created).toMatchObject({ status: 201, body: keyed });
    expect(created.body.client_secret).toBeUndefined();
    const { jwks: _jwks, ...rest } = keyed;
    const switched = await call('PUT', '/admin/clients/switching-app', {
      ...rest,
      token_endpoint_auth_method: 'client_secret_basic',
    });
    expect(switched.status).toBe(200);
    expect(typeof switched.body.client_secret).toBe('string');
    expect(lastEntry()).toMatchObject({
      reason: 'updated client "switching-app": client_secret_sha256, jwks, token_endpoint_auth_method',
    });
  });

  it('refuses a changed client_id in a PUT', async () => {
    expect(await call('PUT', '/admin/clients/new-app', { ...body, client_id: 'renamed' })).toMatchObject({
      status: 400,
      body: {
        error: 'invalid_request',
        error_description: 'client_id must be left out or equal the client in the path (ids do not change)',
      },
    });
  });
});

describe('resource servers and workload issuers', () => {
  it('creates a resource server with a secret that authenticates it at /authorize, and rotates it', async () => {
    const body = {
      id: 'reports-api',
      name: 'Reports API',
      audience: 'https://reports.example',
      scopes: ['reports:read'],
      actions: ['reports:read'],
      token_endpoint_auth_method: 'client_secret_post',
    };
    const created = await call('POST', '/admin/resource_servers', body);
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ ...body, client_secret: expect.stringMatching(/^[A-Za-z0-9_-]{44}$/) });
    expect(baton.service.registry().audiences.get('https://reports.example')?.id).toBe('reports-api');
    const rotated = await call('POST', '/admin/resource_servers/reports-api/secret');
    expect(rotated.status).toBe(200);
    expect(rotated.body.client_secret).not.toBe(created.body.client_secret);
    expect(lastEntry()).toMatchObject({
      tenant: 'acme',
      decision: 'applied',
      reason: 'rotated the secret of resource server "reports-api"',
    });
    // An audience another resource server holds is a problem of the entity.
    const taken = await call('POST', '/admin/resource_servers', {
      ...body,
      id: 'reports-api-2',
      audience: 'https://payments.example',
    });
    expect(taken.status).toBe(400);
    expect(taken.body.problems).toEqual([
      { path: '/audience', message: 'duplicate audience "https://payments.example"' },
    ]);
  });

  it('maps a workload subject to an agent, and then refuses deleting that agent (409 naming the issuer)', async () => {
    const { jwk } = await newKey('wl-1');
    const agentKey = await newKey('wl-agent-1');
    expect(
      (
        await call('POST', '/admin/agents', {
          id: 'wl-agent',
          name: 'W',
          owner: 'alice',
          jwks: { keys: [agentKey.jwk] },
        })
      ).status,
    ).toBe(201);
    const issuer = {
      issuer: 'https://k8s.acme.example',
      jwks: { keys: [jwk] },
      subjects: [{ subject: 'system:serviceaccount:agents:*', agent: 'wl-agent' }],
    };
    expect(await call('POST', '/admin/workload_issuers', issuer)).toMatchObject({ status: 201, body: issuer });
    expect(await call('DELETE', '/admin/agents/wl-agent')).toMatchObject({
      status: 409,
      body: {
        error: 'conflict',
        error_description: 'the agent is still referred to by workload issuer "https://k8s.acme.example"',
      },
    });
    // A subject mapped to another tenant's agent is a problem of the entity, as if it did not exist.
    const foreign = await call('PUT', `/admin/workload_issuers/${encodeURIComponent(issuer.issuer)}`, {
      ...issuer,
      subjects: [{ subject: 'a', agent: 'globex-assistant' }],
    });
    expect(foreign.status).toBe(400);
    expect(foreign.body.problems).toEqual([
      { path: '/subjects/0/agent', message: 'agent "globex-assistant" belongs to tenant "globex", not "acme"' },
    ]);
  });
});

describe('issuers, by their URL', () => {
  it('creates, reads and deletes a trusted issuer named by its percent-encoded issuer', async () => {
    const { jwk } = await newKey('idp-1');
    const issuer = { issuer: 'https://id.new.example', jwks: { keys: [jwk] } };
    expect(await call('POST', '/admin/trusted_issuers', issuer)).toMatchObject({ status: 201, body: issuer });
    const path = `/admin/trusted_issuers/${encodeURIComponent(issuer.issuer)}`;
    expect(await call('GET', path)).toMatchObject({ status: 200, body: issuer });
    expect((await call('GET', '/admin/trusted_issuers', undefined, globex)).body).toEqual({
      items: [{ issuer: 'https://id.globex.example', jwks: expect.any(Object), algorithms: ['EdDSA'] }],
      next_cursor: null,
    });
    expect((await call('DELETE', path)).status).toBe(204);
    expect(baton.service.registry().issuers.has(issuer.issuer)).toBe(false);
  });
});

describe('agent key rotation with an overlap', () => {
  it('accepts the replaced key during the overlap and refuses it after', async () => {
    const old = await newKey('rot-1');
    const next = await newKey('rot-2');
    expect(
      (
        await call('POST', '/admin/agents', {
          id: 'rotating-agent',
          name: 'R',
          owner: 'alice',
          jwks: { keys: [old.jwk] },
        })
      ).status,
    ).toBe(201);
    const rotated = await call('POST', '/admin/agents/rotating-agent/keys', {
      jwks: { keys: [next.jwk] },
      overlap_seconds: 600,
    });
    const until = new Date(clock.now() + 600_000);
    expect(rotated.status).toBe(200);
    expect(rotated.body).toMatchObject({
      id: 'rotating-agent',
      jwks: { keys: [next.jwk] },
      retiring_keys: { jwks: { keys: [old.jwk] } },
    });
    expect(
      Math.abs(Date.parse((rotated.body.retiring_keys as { until: string }).until) - until.getTime()),
    ).toBeLessThan(5000);
    expect(lastEntry().reason).toMatch(/^rotated the keys of agent "rotating-agent": replaced keys accepted until /);
    expect((await agentToken('rotating-agent', next.privateKey, 'rot-2')).status).toBe(200);
    expect((await agentToken('rotating-agent', old.privateKey, 'rot-1')).status).toBe(200);
    // The clock only moves forward (the rate limiter's windows would not survive it going back).
    offset += 601_000;
    expect((await agentToken('rotating-agent', next.privateKey, 'rot-2')).status).toBe(200);
    expect((await agentToken('rotating-agent', old.privateKey, 'rot-1')).status).toBe(401);
    // The next edit after the overlap removes the retiring keys from the document.
    const later = await bearerOf(baton, 'ops-console', 'baton:admin');
    await call(
      'POST',
      '/admin/agents',
      { id: 'unrelated-agent', name: 'U', owner: 'alice', jwks: { keys: [next.jwk] } },
      later,
    );
    expect((await call('GET', '/admin/agents/rotating-agent', undefined, later)).body).toEqual({
      id: 'rotating-agent',
      name: 'R',
      owner: 'alice',
      jwks: { keys: [next.jwk] },
    });
    acme = later;
    globex = await globexBearer();
  });

  it.each([
    [
      { jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AAAA' }] }, overlap_seconds: 10 },
      'jwks.keys.0.kid is required for a rotation',
    ],
    [{ jwks: { keys: [] }, overlap_seconds: 10 }, 'jwks.keys Too small: expected array to have >=1 items'],
    [{ overlap_seconds: 10 }, 'jwks Invalid input: expected object, received undefined'],
    [
      { jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AAAA', kid: 'k' }] }, overlap_seconds: 604_801 },
      'overlap_seconds must be at most 604800',
    ],
    [
      { jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AAAA', kid: 'k' }] }, overlap_seconds: -1 },
      'overlap_seconds Too small: expected number to be >=0',
    ],
    [
      { jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AAAA', kid: 'k' }] }, overlap_seconds: 1.5 },
      'overlap_seconds Invalid input: expected int, received number',
    ],
    [
      { jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AAAA', kid: 'k' }] }, overlap_seconds: '10' },
      'overlap_seconds Invalid input: expected number, received string',
    ],
    [
      { jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AAAA', kid: 'orchestrator-demo-1' }] }, overlap_seconds: 10 },
      'jwks.keys.0.kid is a kid of the keys being replaced',
    ],
  ])('refuses a rotation %j', async (body, description) => {
    expect(await call('POST', '/admin/agents/orchestrator/keys', body)).toMatchObject({
      status: 400,
      body: { error: 'invalid_request', error_description: description },
    });
  });

  it('refuses rotating the keys of an agent of another tenant (404)', async () => {
    const { jwk } = await newKey('g-2');
    expect(
      await call('POST', '/admin/agents/globex-assistant/keys', { jwks: { keys: [jwk] }, overlap_seconds: 10 }),
    ).toMatchObject({ status: 404, body: { error: 'not_found', error_description: 'no agent "globex-assistant"' } });
  });
});

describe('hostile input', () => {
  const agent = (extra: Record<string, unknown>) => ({
    id: 'hostile-agent',
    name: 'H',
    owner: 'alice',
    jwks: { keys: [] },
    ...extra,
  });

  it('refuses NUL and lone surrogates in any member', async () => {
    const { jwk } = await newKey('h-1');
    const nul = await call('POST', '/admin/agents', { ...agent({ name: 'a\u0000b' }), jwks: { keys: [jwk] } });
    expect(nul.body).toEqual({
      error: 'invalid_request',
      error_description: 'the agent is invalid: /name: contains a NUL character',
      problems: [{ path: '/name', message: 'contains a NUL character' }],
    });
    const lone = await call(
      'POST',
      '/admin/agents',
      `{"id":"hostile-agent","name":"H","owner":"alice","jwks":{"keys":[${JSON.stringify(jwk)}]},"metadata":{"note":"\\ud800"}}`,
    );
    expect(lone.status).toBe(400);
    expect(lone.body).toEqual({
      error: 'invalid_request',
      error_description: 'the agent is invalid: /metadata/note: contains an unpaired UTF-16 surrogate',
      problems: [{ path: '/metadata/note', message: 'contains an unpaired UTF-16 surrogate' }],
    });
  });

  it('refuses __proto__ and constructor members without touching any prototype', async () => {
    const { jwk } = await newKey('h-2');
    for (const member of ['__proto__', 'constructor']) {
      const refused = await call(
        'POST',
        '/admin/agents',
        `{"id":"hostile-agent","name":"H","owner":"alice","jwks":{"keys":[${JSON.stringify(jwk)}]},"${member}":{"tenant":"globex"}}`,
      );
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ error: 'invalid_request' });
      expect((refused.body.problems as { path: string }[])[0]?.path).toBe('/');
    }
    expect(({} as Record<string, unknown>).tenant).toBeUndefined();
    expect(await call('GET', '/admin/agents/hostile-agent')).toMatchObject({ status: 404 });
  });

  it('refuses arrays for strings, huge numbers, bad JSON, other content types and huge bodies', async () => {
    expect((await call('POST', '/admin/agents', { id: ['a'], name: 'x' })).body).toEqual({
      error: 'invalid_request',
      error_description: 'id is required',
    });
    const wrongType = await call(
      'POST',
      '/admin/clients',
      '{"client_id":"num-app","name":1e400,"token_endpoint_auth_method":"none","grant_types":["authorization_code"],"redirect_uris":["http://localhost/cb"]}',
    );
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.problems).toEqual([
      { path: '/name', message: 'Invalid input: expected string, received Infinity' },
    ]);
    expect((await call('POST', '/admin/agents', '{"id":')).body).toEqual({
      error: 'invalid_request',
      error_description: 'request body is not valid JSON',
    });
    const form = await baton.fetch(`${baton.url}/admin/agents`, {
      method: 'POST',
      headers: { ...acme, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'id=x',
    });
    expect(form.status).toBe(400);
    expect(await form.json()).toEqual({
      error: 'invalid_request',
      error_description: 'content type must be application/json',
    });
    const huge = await call('POST', '/admin/agents', { id: 'big', name: 'x'.repeat(200_000) });
    expect(huge.status).toBe(413);
    expect(huge.body).toEqual({
      error: 'invalid_request',
      error_description: 'request body is larger than 65536 bytes',
    });
  });

  it('answers an id with NUL or a lone surrogate in the path as not found, echoing it safely', async () => {
    expect(await call('GET', '/admin/agents/a%00b')).toMatchObject({
      status: 404,
      body: { error: 'not_found', error_description: 'no agent "a\uFFFDb"' },
    });
  });
});

describe('registry reload applies the file to the store', () => {
  it('undoes admin changes the file does not hold, as one new version, audited', async () => {
    const before = baton.registryStore.versions.length;
    await baton.reloadRegistry();
    expect(baton.registryStore.versions.length).toBe(before + 1);
    expect(baton.service.registry().callers.has('new-app')).toBe(false);
    const entry = lastEntry();
    expect(entry).toMatchObject({ tenant: '*', type: 'registry.reload', decision: 'applied', client: 'SIGHUP' });
    expect(entry.reason).toContain('- clients/new-app');
    await baton.reloadRegistry();
    expect(baton.registryStore.versions.length).toBe(before + 1);
    expect(lastEntry().reason).toBe('policies/registry.json: version ' + String(before + 1) + ': no changes');
  });
});
