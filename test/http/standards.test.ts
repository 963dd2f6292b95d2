import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importJWK, SignJWT, type JWK } from 'jose';
import { pkce, read, redirectUri, submit } from '../support/consent.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { verifyExport } from '../../src/cli/audit-verify.js';
import { demoKeyDir, mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import type { Jwks } from '../../src/core/registry/schema.js';
import { basic, demoChain, grants, postToken, tokenTypes } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { jwtBearerAssertionType } from '../../src/core/clients/client-auth.js';
import { randomId } from '../../src/core/secrets.js';

// The registry is a copy, so a test can change it and reload.
const registryDir = mkdtempSync(join(tmpdir(), 'baton-registry-'));
const registryFile = join(registryDir, 'registry.json');
cpSync('policies/registry.json', registryFile);
let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton({ BATON_REGISTRY: registryFile });
});
afterAll(async () => {
  await baton?.close();
  rmSync(registryDir, { recursive: true, force: true });
});

const metadata = async () =>
  (await (await baton.fetch(`${baton.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
const form = async (path: string, params: Record<string, string>, headers: Record<string, string> = {}) => {
  const response = await baton.fetch(`${baton.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>) };
};

/** An RFC 7523 assertion of a demo agent signed under RFC 9864's fully specified `Ed25519`. */
async function ed25519Assertion(agent: string): Promise<string> {
  const jwk = JSON.parse(readFileSync(join(demoKeyDir, `${agent}.private.jwk.json`), 'utf8')) as JWK;
  const key = await importJWK({ ...jwk, alg: 'Ed25519' }, 'Ed25519');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'Ed25519', kid: jwk.kid as string })
    .setIssuer(agent)
    .setSubject(agent)
    .setAudience(baton.issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .setJti(randomId())
    .sign(key);
}

describe('RFC 8414 metadata matches what Baton does', () => {
  it('lists registered authentication methods, every assertion algorithm it accepts, and its scopes', async () => {
    expect(await metadata()).toMatchObject({
      scopes_supported: [
        'calendar:read',
        'ledger:read',
        'payments:read',
        'payments:transfer',
        'baton:admin',
        'baton:audit',
        'baton:metrics',
        'baton:register',
      ],
      revocation_endpoint_auth_methods_supported: [
        'private_key_jwt',
        'client_secret_basic',
        'client_secret_post',
        'none',
      ],
      revocation_endpoint_auth_signing_alg_values_supported: ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'RS256', 'PS256'],
      introspection_endpoint_auth_methods_supported: ['client_secret_basic'],
      token_endpoint_auth_signing_alg_values_supported: ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'RS256', 'PS256'],
    });
  });

  it('accepts an Ed25519 client assertion and actor assertion, as it advertises', async () => {
    const client = await postToken(
      baton,
      {
        grant_type: 'client_credentials',
        client_assertion_type: jwtBearerAssertionType,
        client_assertion: await ed25519Assertion('orchestrator'),
      },
      {},
    );
    expect(client.status, JSON.stringify(client.body)).toBe(200);
    const exchanged = await postToken(baton, {
      grant_type: grants.exchange,
      subject_token: await mintUserToken('alice', { audience: baton.issuer }),
      subject_token_type: tokenTypes.jwt,
      actor_token: await ed25519Assertion('orchestrator'),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    });
    expect(exchanged.status, JSON.stringify(exchanged.body)).toBe(200);
  });

  it('follows the registry: a reloaded registry changes scopes_supported', async () => {
    const registry = JSON.parse(readFileSync(registryFile, 'utf8')) as {
      resource_servers: { id: string; scopes: string[] }[];
    };
    registry.resource_servers.find((rs) => rs.id === 'calendar')?.scopes.push('calendar:write');
    writeFileSync(registryFile, JSON.stringify(registry));
    await baton.reloadRegistry();
    expect((await metadata()).scopes_supported).toEqual([
      'calendar:read',
      'calendar:write',
      'ledger:read',
      'payments:read',
      'payments:transfer',
      'baton:admin',
      'baton:audit',
      'baton:metrics',
      'baton:register',
    ]);
  });

  it('lets a public client revoke its own token with client_id alone (auth method none)', async () => {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const redirectUri = 'http://localhost:3000/console/callback';
    const cookieOf = (r: Response) => r.headers.get('set-cookie')?.match(/baton_csrf=([^;]+)/)?.[1] ?? '';
    const fieldsOf = async (r: Response) =>
      Object.fromEntries(
        [...(await r.text()).matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [
          m[1] as string,
          (m[2] as string).replaceAll('&amp;', '&'),
        ]),
      );
    const post = (path: string, cookie: string, body: Record<string, string>) =>
      baton.fetch(`${baton.url}${path}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `baton_csrf=${cookie}` },
        body: new URLSearchParams(body),
      });
    const login = await baton.fetch(
      `${baton.url}/oauth2/authorize?${new URLSearchParams({ response_type: 'code', client_id: 'agent-console', redirect_uri: redirectUri, scope: 'payments:read', code_challenge: challenge, code_challenge_method: 'S256' })}`,
      { redirect: 'manual' },
    );
    const cookie = cookieOf(login);
    const consent = await post('/oauth2/authorize/login', cookie, {
      ...(await fieldsOf(login)),
      username: 'alice',
      password: 'alice-demo-password',
    });
    const approved = await post('/oauth2/authorize/consent', cookieOf(consent) || cookie, {
      ...(await fieldsOf(consent)),
      decision: 'approve',
    });
    const code = new URL(approved.headers.get('location') as string).searchParams.get('code') as string;
    const tokens = await postToken(
      baton,
      {
        grant_type: 'authorization_code',
        client_id: 'agent-console',
        code,
        redirect_uri: redirectUri,
        code_verifier: verifier,
      },
      {},
    );
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    const token = tokens.body.access_token as string;

    const [, someoneElses] = await demoChain(baton);
    expect(await form('/oauth2/revoke', { token: someoneElses, client_id: 'agent-console' })).toEqual({
      status: 400,
      body: { error: 'unauthorized_client', error_description: 'the token was not issued to this client' },
    });
    expect(await form('/oauth2/revoke', { token, client_id: 'agent-console' })).toEqual({
      status: 200,
      body: undefined,
    });
    expect((await form('/oauth2/introspect', { token }, { authorization: basic('payments') })).body).toEqual({
      active: false,
    });
    // A confidential client is not public because it leaves its secret out.
    expect(await form('/oauth2/revoke', { token, client_id: 'agent-platform' })).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'client authentication is required' },
    });
  });
});

describe('GET /audit/verify and the offline verifier', () => {
  const auditor = async () => {
    const result = await postToken(
      baton,
      { grant_type: 'client_credentials', scope: 'baton:audit' },
      { authorization: basic('ops-console') },
    );
    return { authorization: `Bearer ${result.body.access_token as string}` };
  };
  const get = async (path: string, headers: Record<string, string>) => {
    const response = await baton.fetch(`${baton.url}${path}`, { headers });
    return { status: response.status, text: await response.text() };
  };

  it.each([
    ['from after to', (head: number) => `from=${head}&to=${head - 1}`, 'from must not be greater than to'],
    ['from beyond the last entry', (head: number) => `from=${head + 1}`, 'from is beyond the last entry (HEAD)'],
    [
      'from far beyond the last entry, with to',
      (head: number) => `from=${head + 1000}&to=${head + 2000}`,
      'from is beyond the last entry (HEAD)',
    ],
    ['a negative from', () => 'from=-1', 'from must be a non-negative integer'],
    ['a fractional to', () => 'to=1.5', 'to must be a non-negative integer'],
    ['exponent notation', () => 'from=1e3', 'from must be a non-negative integer'],
    ['an empty from', () => 'from=', 'from must be a non-negative integer'],
    ['a number too long to be a sequence number', () => `to=${'9'.repeat(16)}`, 'to must be a non-negative integer'],
    ['to of zero', () => 'to=0', 'to must be at least 1'],
    ['a repeated from', () => 'from=1&from=2', 'from is repeated'],
  ])('answers 400 invalid_request to %s, never valid: false', async (_name, query, description) => {
    await demoChain(baton);
    const headers = await auditor();
    const head = (JSON.parse((await get('/audit/verify', headers)).text) as { to: number }).to;
    const result = await get(`/audit/verify?${query(head)}`, headers);
    expect({ status: result.status, body: JSON.parse(result.text) as unknown }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: description.replace('HEAD', String(head)) },
    });
  });

  it('verifies the ranges that make sense', async () => {
    const headers = await auditor();
    const head = (JSON.parse((await get('/audit/verify', headers)).text) as { to: number }).to;
    const alone = (from: number, to: number) => ({
      checkpoints: 0,
      checkpoint: null,
      report: `no checkpoint names an entry from ${from} to ${to}: checked against the chain alone`,
    });
    expect(JSON.parse((await get(`/audit/verify?from=2&to=${head}`, headers)).text)).toEqual({
      from: 2,
      to: head,
      valid: true,
      entries: head - 1,
      ...alone(2, head),
    });
    expect(JSON.parse((await get(`/audit/verify?from=${head}`, headers)).text)).toEqual({
      from: head,
      to: head,
      valid: true,
      entries: 1,
      ...alone(head, head),
    });
    expect(JSON.parse((await get(`/audit/verify?from=0&to=${head + 50}`, headers)).text)).toEqual({
      from: 1,
      to: head,
      valid: true,
      entries: head,
      ...alone(1, head),
    });
  });

  it('counts a checkpoint as checked only when the export holds the entry it names', async () => {
    await demoChain(baton);
    await baton.checkpoint();
    const headers = await auditor();
    const jwks = (await (await baton.fetch(`${baton.url}/audit/keys`)).json()) as Jwks;
    const whole = (await get('/audit/entries?from=1&limit=10000', headers)).text;
    const checkpoints = whole.split('\n').filter((l) => l.startsWith('{"checkpoint"')).length;
    expect(await verifyExport(whole, jwks, sha256Hex)).toMatchObject({
      ok: true,
      message: expect.stringMatching(
        new RegExp(
          `, ${checkpoints} checkpoints valid; consistent with checkpoint \\d+ signed at \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`,
        ),
      ),
    });
    // The first three entries only: every checkpoint names a later entry, so none is held against one.
    const head = (await get('/audit/entries?from=1&limit=3', headers)).text;
    expect(head.split('\n').filter((l) => l.startsWith('{"checkpoint"'))).toHaveLength(checkpoints);
    expect(await verifyExport(head, jwks, sha256Hex)).toMatchObject({
      ok: true,
      message: `3 entries valid (3 whole, 0 redacted), 0 checkpoints valid, ${checkpoints} signature only (the entry named is not in the export)`,
    });
  });
});

describe('a policy folder without Action::"delegate"', () => {
  let other: MemoryBaton;
  const policyDir = mkdtempSync(join(tmpdir(), 'baton-policies-'));
  beforeAll(async () => {
    cpSync('policies/examples/authzen-certification', policyDir, { recursive: true });
    other = await memoryBaton({ BATON_POLICY_DIR: policyDir });
  });
  afterAll(async () => {
    await other?.close();
    rmSync(policyDir, { recursive: true, force: true });
  });
  const warning = {
    level: 'warn',
    message:
      'the policy set has no Action::"delegate" (its schema does not declare it): every token exchange will be refused',
  };

  it('is named in a warning at start-up and on reload', async () => {
    const warned = () => other.logger.lines.filter((l) => l.level === 'warn' && l.message === warning.message);
    expect(warned().map((l) => l.fields)).toEqual([
      {
        policy_dir: policyDir,
        detail: 'declare action delegate as policies/baton.cedarschema does to allow token exchange',
      },
    ]);
    await other.reloadPolicies();
    expect(warned()).toHaveLength(2);
  });

  it('makes an exchange refusal say so', async () => {
    const result = await postToken(other, {
      grant_type: grants.exchange,
      subject_token: await mintUserToken('alice', { audience: other.issuer }),
      subject_token_type: tokenTypes.jwt,
      actor_token: await mintAgentAssertion('orchestrator', other.issuer),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    });
    expect({ status: result.status, body: result.body }).toEqual({
      status: 400,
      body: {
        error: 'invalid_request',
        error_description:
          'delegation is not permitted by policy: the policy set has no Action::"delegate" (its schema does not declare it)',
      },
    });
  });

  it("makes the consent flow's refusal say so", async () => {
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: 'agent-platform',
      redirect_uri: redirectUri,
      scope: 'payments:read',
      state: 's',
      code_challenge: pkce().challenge,
      code_challenge_method: 'S256',
      requested_actor: 'orchestrator',
    });
    const login = await read(await other.fetch(`${other.url}/oauth2/authorize?${query}`, { redirect: 'manual' }));
    const refused = await submit(other, '/oauth2/authorize/login', login, {
      username: 'alice',
      password: 'alice-demo-password',
    });
    const back = new URL(refused.location as string);
    expect(Object.fromEntries(back.searchParams)).toEqual({
      error: 'access_denied',
      error_description:
        'delegation is not permitted by policy: the policy set has no Action::"delegate" (its schema does not declare it)',
      state: 's',
      iss: other.issuer,
    });
  });

  it('warns about nothing when the set declares it', () => {
    expect(baton.logger.lines.filter((l) => l.message.includes('Action::"delegate"'))).toEqual([]);
  });
});
