import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintUserToken } from '../../src/cli/demo-kit.js';
import { basic, bearerOf, demoChain, postJson, postToken } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { folderDigest, shippedDigest } from '../support/policy-digest.js';

const policyDir = mkdtempSync(join(tmpdir(), 'baton-policies-'));
cpSync('policies', policyDir, { recursive: true });
let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton({ BATON_POLICY_DIR: policyDir });
});
afterAll(async () => {
  await baton?.close();
});

const chain = (scope?: string) => demoChain(baton, scope);

const asPayments = { authorization: basic('payments') };
const transfer = (token: string, amount: unknown, extra: Record<string, unknown> = {}) =>
  postJson(
    baton,
    '/authorize',
    {
      token,
      action: 'payments:transfer',
      resource: { type: 'Account', id: 'acct-1' },
      context: { amount, currency: 'EUR' },
      ...extra,
    },
    asPayments,
  );

describe('POST /authorize', () => {
  it('allows a transfer of 100 by the sub-agent and denies 101, naming the policies', async () => {
    const [, token] = await chain();
    const allowed = await transfer(token, 100, { action_id: 'act-100' });
    expect({ status: allowed.status, body: allowed.body }).toEqual({
      status: 200,
      body: { decision: 'allow', action_id: 'act-100', reasons: ['transfer-up-to-100'] },
    });
    expect(allowed.headers.get('cache-control')).toBe('no-store');
    const denied = await transfer(token, 101, { action_id: 'act-101' });
    expect(denied.body).toEqual({ decision: 'deny', action_id: 'act-101', reasons: [] });
  });

  it('refuses a body nested deeper than 64 levels before reading it, and reads one at the limit', async () => {
    const [, token] = await chain();
    // The body, resource and properties are three levels; `deep` adds the rest.
    const nested = (n: number) => `${'{"a":'.repeat(n - 3)}1${'}'.repeat(n - 3)}`;
    const body = (n: number) =>
      `{"token":"${token}","action":"payments:read","resource":{"type":"Account","id":"acct-1","properties":{"deep":${nested(n)}}}}`;
    const over = await postJson(baton, '/authorize', body(65), asPayments);
    expect({ status: over.status, body: over.body }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'request body nests deeper than 64 levels' },
    });
    expect((await postJson(baton, '/authorize', body(64), asPayments)).status).toBe(200);
  });

  it('makes an action id when the caller gives none', async () => {
    const [, token] = await chain();
    const result = await transfer(token, 5);
    expect(result.body).toEqual({
      decision: 'allow',
      action_id: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      reasons: ['transfer-up-to-100'],
    });
  });

  it('denies when an attribute the policy needs is missing, without an error', async () => {
    const [, token] = await chain();
    const result = await postJson(
      baton,
      '/authorize',
      {
        token,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { currency: 'EUR' },
        action_id: 'no-amount',
      },
      asPayments,
    );
    expect(result.body).toEqual({ decision: 'deny', action_id: 'no-amount', reasons: [] });
    const noCurrency = await postJson(
      baton,
      '/authorize',
      {
        token,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount: 5 },
        action_id: 'no-currency',
      },
      asPayments,
    );
    expect(noCurrency.body).toEqual({
      decision: 'deny',
      action_id: 'no-currency',
      reasons: ['transfer-in-account-currency'],
    });
  });

  it('denies a scope the token lacks and an action the server does not offer', async () => {
    const [, token] = await chain('payments:read');
    expect((await transfer(token, 5, { action_id: 'a' })).body).toEqual({
      decision: 'deny',
      action_id: 'a',
      reasons: [],
    });
    const unknown = await postJson(
      baton,
      '/authorize',
      { token, action: 'payments:refund', resource: { type: 'Account', id: 'acct-1' }, action_id: 'b' },
      asPayments,
    );
    expect(unknown.body).toEqual({ decision: 'deny', action_id: 'b', reasons: ['baton:unknown-action'] });
  });

  it('denies a token for another audience and a token that does not verify', async () => {
    const [, token] = await chain();
    const calendar = await postJson(
      baton,
      '/authorize',
      { token, action: 'calendar:read', resource: { type: 'Calendar', id: 'c' }, action_id: 'c' },
      { authorization: basic('calendar') },
    );
    expect(calendar.body).toEqual({ decision: 'deny', action_id: 'c', reasons: ['baton:audience'] });
    const forged = await transfer(`${token.slice(0, -4)}AAAA`, 5, { action_id: 'd' });
    expect(forged.body).toEqual({ decision: 'deny', action_id: 'd', reasons: ['baton:invalid-token'] });
    const idp = await transfer(await mintUserToken('alice', { audience: 'https://payments.example' }), 5, {
      action_id: 'e',
    });
    expect(idp.body).toEqual({ decision: 'deny', action_id: 'e', reasons: ['baton:invalid-token'] });
  });

  it.each([
    ['no credentials', {}, 401, 'invalid_client', 'authentication is required'],
    [
      'a wrong secret',
      { authorization: basic('payments', 'nope') },
      401,
      'invalid_client',
      'client authentication failed',
    ],
    [
      'a client that is not a resource server',
      { authorization: basic('agent-platform') },
      403,
      'access_denied',
      'the caller is not a registered resource server',
    ],
    ['an unknown scheme', { authorization: 'Digest x' }, 401, 'invalid_client', 'use Basic or Bearer authentication'],
  ])('refuses %s', async (_name, headers, status, error, description) => {
    const [, token] = await chain();
    const result = await transfer(token, 5, {});
    expect(result.status).toBe(200);
    const refused = await postJson(
      baton,
      '/authorize',
      { token, action: 'payments:transfer', resource: { type: 'Account', id: 'acct-1' } },
      headers,
    );
    expect({ status: refused.status, body: refused.body }).toEqual({
      status,
      body: { error, error_description: description },
    });
    if (status === 401)
      expect(refused.headers.get('www-authenticate')).toBe('Basic realm="baton", Bearer realm="baton"');
  });

  it("accepts the resource server's own Baton token as Bearer credentials", async () => {
    const own = await postToken(baton, { grant_type: 'client_credentials' }, { authorization: basic('payments') });
    const [, token] = await chain();
    const result = await postJson(
      baton,
      '/authorize',
      { token, action: 'payments:read', resource: { type: 'Account', id: 'acct-1' }, action_id: 'f' },
      { authorization: `Bearer ${own.body.access_token as string}` },
    );
    expect(result.body).toEqual({ decision: 'allow', action_id: 'f', reasons: ['read-payments'] });
    const delegated = await postJson(
      baton,
      '/authorize',
      { token, action: 'payments:read', resource: { type: 'Account', id: 'acct-1' } },
      { authorization: `Bearer ${token}` },
    );
    expect(delegated.body).toEqual({
      error: 'invalid_client',
      error_description: 'bearer token does not authenticate a registered caller',
    });
  });

  it.each([
    ['a JSON array', '[]', 'request body must be a JSON object'],
    ['malformed JSON', '{"token":', 'request body is not valid JSON'],
    ['an empty body', '', 'request body is empty'],
    ['no token', { action: 'a', resource: { type: 'Account', id: '1' } }, 'token is required'],
    ['no resource', { token: 'x', action: 'a' }, 'resource is required'],
    ['a resource without id', { token: 'x', action: 'a', resource: { type: 'Account' } }, 'resource.id is required'],
    [
      'a bad action_id',
      { token: 'x', action: 'a', resource: { type: 'Account', id: '1' }, action_id: 'has space' },
      'action_id must be 1–128 visible ASCII characters',
    ],
  ])('answers 400 to %s', async (_name, body, description) => {
    const result = await postJson(baton, '/authorize', body, asPayments);
    expect({ status: result.status, body: result.body }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: description },
    });
  });

  it('answers 400 to a body that is not JSON', async () => {
    const response = await baton.fetch(`${baton.url}/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', ...asPayments },
      body: 'hi',
    });
    expect({ status: response.status, body: await response.json() }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'content type must be application/json' },
    });
  });
});

describe('policy reload', () => {
  const admin = () => bearerOf(baton, 'ops-console', 'baton:admin');

  it('swaps in a valid set and keeps the running set when the new one is invalid', async () => {
    const [, token] = await chain();
    expect((await transfer(token, 150, { action_id: 'g' })).body.decision).toBe('deny');

    writeFileSync(
      join(policyDir, 'payments.cedar'),
      '@id("transfer-up-to-200")\npermit (principal, action == Action::"payments:transfer", resource is Account)\nwhen { context has amount && context.amount.lessThanOrEqual(decimal("200.0")) };\n',
    );
    const reloaded = await postJson(baton, '/admin/policies/reload', {}, await admin());
    expect(reloaded.body).toEqual({
      status: 'reloaded',
      version: 2,
      digest: folderDigest(policyDir),
      policies: ['delegate-within-tenant', 'max-chain-depth', 'transfer-up-to-200'],
      previous: { version: 1, digest: shippedDigest },
    });
    expect((await transfer(token, 150, { action_id: 'h' })).body).toEqual({
      decision: 'allow',
      action_id: 'h',
      reasons: ['transfer-up-to-200'],
    });

    writeFileSync(
      join(policyDir, 'payments.cedar'),
      '@id("broken")\npermit (principal, action == Action::"payments:transfer", resource)\nwhen { context.nonsense };\n',
    );
    const refused = await postJson(baton, '/admin/policies/reload', {}, await admin());
    expect(refused.status).toBe(400);
    expect(refused.body.error_description).toMatch(
      /^the new policy set was refused; the running set stays: invalid policy set:\n {2}.*payments\.cedar:3: .*nonsense/,
    );
    expect((await transfer(token, 150, { action_id: 'i' })).body).toEqual({
      decision: 'allow',
      action_id: 'i',
      reasons: ['transfer-up-to-200'],
    });
  });

  it('reloads the registry on an operator call', async () => {
    expect((await postJson(baton, '/admin/registry/reload', {}, await admin())).body).toEqual({ status: 'reloaded' });
    expect(
      (await postJson(baton, '/admin/registry/reload', {}, { authorization: basic('agent-platform') })).status,
    ).toBe(403);
  });

  it('is refused to callers without the admin scope', async () => {
    const audit = await postToken(
      baton,
      { grant_type: 'client_credentials', scope: 'baton:audit' },
      { authorization: basic('ops-console') },
    );
    const result = await postJson(
      baton,
      '/admin/policies/reload',
      {},
      { authorization: `Bearer ${audit.body.access_token as string}` },
    );
    expect({ status: result.status, body: result.body }).toEqual({
      status: 403,
      body: { error: 'access_denied', error_description: 'the caller lacks the baton:admin scope' },
    });
    const none = await postJson(baton, '/admin/policies/reload', {});
    expect(none.status).toBe(401);
  });
});
