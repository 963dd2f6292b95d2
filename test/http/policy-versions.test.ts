import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintUserToken } from '../../src/cli/demo-kit.js';
import { policySetCanonical } from '../../src/core/decisions/policy-set.js';
import { basic, bearerOf, demoChain, exchangeHop, postJson, tokenTypes } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { folderDigest, shippedDigest } from '../support/policy-digest.js';

const shippedIds = [
  'delegate-within-tenant',
  'max-chain-depth',
  'transfer-up-to-100',
  'transfer-in-account-currency',
  'read-payments',
  'read-calendar',
];
const up200 =
  '@id("transfer-up-to-200")\npermit (principal, action == Action::"payments:transfer", resource is Account)\nwhen { context has amount && context.amount.lessThanOrEqual(decimal("200.0")) };\n';
const payments = (dir: string) => join(dir, 'payments.cedar');

let baton: MemoryBaton;
const policyDir = mkdtempSync(join(tmpdir(), 'baton-policies-'));
cpSync('policies', policyDir, { recursive: true });
beforeAll(async () => {
  baton = await memoryBaton({ BATON_POLICY_DIR: policyDir });
});
afterAll(async () => {
  await baton?.close();
});

const admin = { authorization: basic('ops-console') };
async function reload() {
  const result = await postJson(baton, '/admin/policies/reload', {}, admin);
  return { status: result.status, body: result.body };
}
async function rollback(body: unknown, headers: Record<string, string> = admin) {
  const result = await postJson(baton, '/admin/policies/rollback', body, headers);
  return { status: result.status, body: result.body };
}
async function versions(headers: Record<string, string> = admin) {
  const response = await baton.fetch(`${baton.url}/admin/policies/versions`, { headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
const head = () => baton.auditEntries().length;
const since = (n: number) => baton.auditEntries().slice(n);
const transfer = (token: string, amount: number) =>
  postJson(
    baton,
    '/authorize',
    {
      token,
      action: 'payments:transfer',
      resource: { type: 'Account', id: 'acct-1' },
      context: { amount, currency: 'EUR' },
    },
    { authorization: basic('payments') },
  );

describe('policy versions through the admin API', () => {
  it('starts on version 1, seeded from the folder, whose digest an operator can compute offline', async () => {
    expect(shippedDigest).toBe(folderDigest(policyDir));
    expect(baton.service.policy().digest).toBe(shippedDigest);
    expect(await versions()).toEqual({
      status: 200,
      body: {
        versions: [
          {
            version: 1,
            digest: shippedDigest,
            created_by: `seed:${policyDir}`,
            created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
            active: true,
            policies: shippedIds,
          },
        ],
      },
    });
  });

  it('answers unchanged to a reload of the set in force, stores nothing, and audits it', async () => {
    const before = head();
    expect(await reload()).toEqual({
      status: 200,
      body: {
        status: 'unchanged',
        version: 1,
        digest: shippedDigest,
        policies: shippedIds,
        previous: { version: 1, digest: shippedDigest },
      },
    });
    expect(((await versions()).body.versions as unknown[]).length).toBe(1);
    expect(since(before)).toMatchObject([
      {
        tenant: '*',
        type: 'policy.reload',
        decision: 'applied',
        client: 'ops-console',
        policy_digest: shippedDigest,
        reason: `${policyDir}: unchanged, version 1 (${shippedDigest}) stays: ${shippedIds.join(', ')}`,
      },
    ]);
  });

  it('refuses an invalid folder, audits the refusal with the digest in force, and keeps the set', async () => {
    writeFileSync(
      join(policyDir, 'broken.cedar'),
      '@id("broken")\npermit (principal, action, resource) when { context.nonsense };\n',
    );
    const before = head();
    try {
      const refused = await reload();
      expect(refused.status).toBe(400);
      expect(refused.body.error).toBe('invalid_request');
      expect(refused.body.error_description).toMatch(
        /^the new policy set was refused; the running set stays: invalid policy set:\n {2}.*broken\.cedar:2: /,
      );
      expect(since(before)).toMatchObject([
        {
          tenant: '*',
          type: 'policy.reload',
          decision: 'refused',
          client: 'ops-console',
          policy_digest: shippedDigest,
        },
      ]);
      expect(baton.service.policy().digest).toBe(shippedDigest);
      expect(((await versions()).body.versions as unknown[]).length).toBe(1);
    } finally {
      writeFileSync(join(policyDir, 'broken.cedar'), '');
      // An empty .cedar file holds no policy: remove it from the set by making it a non-policy file name.
      const { rmSync } = await import('node:fs');
      rmSync(join(policyDir, 'broken.cedar'));
    }
  });

  it('activates a changed folder as version 2 at once, and every decision names its digest', async () => {
    const [, token] = await demoChain(baton);
    expect((await transfer(token, 150)).body.decision).toBe('deny');
    writeFileSync(payments(policyDir), up200);
    writeFileSync(
      join(policyDir, 'no-subagent.cedar'),
      '@id("no-subagent")\nforbid (principal == Agent::"payments-subagent", action == Action::"delegate", resource);\n',
    );
    const digest = folderDigest(policyDir);
    const ids = ['delegate-within-tenant', 'max-chain-depth', 'no-subagent', 'transfer-up-to-200'];
    expect(await reload()).toEqual({
      status: 200,
      body: { status: 'reloaded', version: 2, digest, policies: ids, previous: { version: 1, digest: shippedDigest } },
    });
    const before = head();
    expect((await transfer(token, 150)).body.decision).toBe('allow');
    const granted = await exchangeHop(
      baton,
      await mintUserToken('alice', { audience: baton.issuer }),
      tokenTypes.jwt,
      'orchestrator',
      { audience: 'payments', scope: 'payments:read' },
    );
    expect(granted.status).toBe(200);
    // Refused by the policies of version 2: payments-subagent may act for no one.
    const refusedByPolicy = await exchangeHop(
      baton,
      granted.body.access_token as string,
      tokenTypes.accessToken,
      'payments-subagent',
    );
    expect({ status: refusedByPolicy.status, body: refusedByPolicy.body }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'delegation is not permitted by policy' },
    });
    // Refused before the policies are asked: no digest.
    const refusedEarly = await exchangeHop(baton, 'not-a-token', tokenTypes.jwt, 'orchestrator');
    expect(refusedEarly.status).toBe(400);
    const pep = { authorization: basic('payments') };
    const alice = { type: 'User', id: 'alice' };
    const account = { type: 'Account', id: 'acct-1' };
    expect(
      (
        await postJson(
          baton,
          '/access/v1/evaluation',
          { subject: alice, action: { name: 'payments:read' }, resource: account },
          pep,
        )
      ).status,
    ).toBe(200);
    expect(
      (
        await postJson(
          baton,
          '/access/v1/evaluations',
          {
            subject: alice,
            resource: account,
            evaluations: [{ action: { name: 'payments:read' } }, { action: { name: 'calendar:read' } }],
          },
          pep,
        )
      ).status,
    ).toBe(200);
    expect(
      (
        await postJson(
          baton,
          '/access/v1/search/resource',
          { subject: alice, action: { name: 'payments:read' }, resource: { type: 'Account' } },
          pep,
        )
      ).status,
    ).toBe(200);
    expect(since(before).map((e) => [e.type, e.decision, e.policy_digest])).toEqual([
      ['decision', 'allow', digest],
      ['token.exchange', 'granted', digest],
      ['token.exchange', 'refused', digest],
      ['token.exchange', 'refused', null],
      ['authzen.evaluation', expect.any(String), digest],
      ['authzen.evaluation', expect.any(String), digest],
      ['authzen.evaluation', expect.any(String), digest],
      ['authzen.search', expect.any(String), digest],
    ]);
  });

  it('rolls back to version 1: re-validated, in force at once, audited with both digests', async () => {
    const v2 = folderDigest(policyDir);
    const before = head();
    expect(await rollback({ version: 1 })).toEqual({
      status: 200,
      body: {
        status: 'rolled back',
        version: 1,
        digest: shippedDigest,
        policies: shippedIds,
        previous: { version: 2, digest: v2 },
      },
    });
    expect(baton.service.policy().digest).toBe(shippedDigest);
    const [, token] = await demoChain(baton);
    expect((await transfer(token, 150)).body.decision).toBe('deny');
    expect(since(before)[0]).toEqual({
      tenant: '*',
      type: 'policy.rollback',
      decision: 'applied',
      action_id: null,
      jti: null,
      parent_jti: null,
      root_grant: null,
      user: null,
      actor_chain: [],
      client: 'ops-console',
      audience: [],
      scope: [],
      authorization_details: [],
      policy_ids: [],
      policy_digest: shippedDigest,
      reason: `version 1 (${shippedDigest}) from version 2 (${v2}): ${shippedIds.join(', ')}`,
      request_id: null,
      // Written by the policy machinery shared with signals and the other instances, not by the request.
      trace_id: null,
      span_id: null,
      time: expect.any(String),
    });
    expect(
      ((await versions()).body.versions as { version: number; active: boolean }[]).map((v) => [v.version, v.active]),
    ).toEqual([
      [2, false],
      [1, true],
    ]);
  });

  it('refuses a rollback to a version that does not exist with 404, audited, the set in force unchanged', async () => {
    const before = head();
    expect(await rollback({ version: 99 })).toEqual({
      status: 404,
      body: { error: 'invalid_request', error_description: 'there is no policy version 99' },
    });
    expect(since(before)).toMatchObject([
      {
        tenant: '*',
        type: 'policy.rollback',
        decision: 'refused',
        client: 'ops-console',
        policy_digest: shippedDigest,
        reason: 'invalid_request: there is no policy version 99',
      },
    ]);
    expect(baton.service.policy().digest).toBe(shippedDigest);
  });

  const positive = 'version must be a positive integer written in digits';
  it.each([
    ['no version', '{}', 'version is required'],
    ['a string', '{"version":"1"}', positive],
    ['zero', '{"version":0}', positive],
    ['a negative number', '{"version":-1}', positive],
    ['a fraction', '{"version":1.5}', positive],
    ['an integer written with a fraction', '{"version":1.0}', positive],
    ['exponent notation', '{"version":1e0}', positive],
    ['exponent notation, upper case', '{"version":2E0}', positive],
    ['a number beyond 2^53', '{"version":9007199254740993}', positive],
    ['a huge number', '{"version":1e400}', positive],
    ['an array', '{"version":[1]}', positive],
    ['null', '{"version":null}', positive],
    ['true', '{"version":true}', positive],
    ['another member', '{"version":1,"to":2}', 'unknown member "to"'],
    ['a __proto__ member', '{"version":1,"__proto__":{"x":1}}', 'unknown member "__proto__"'],
    ['a NUL in a member name', '{"version":1,"a\\u0000":1}', 'unknown member "a\\u0000"'],
    ['a body that is no object', '[1]', 'request body must be a JSON object'],
    ['malformed JSON', '{"version":', 'request body is not valid JSON'],
  ])('refuses %s', async (_name, body, description) => {
    const before = head();
    expect(await rollback(body)).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: description },
    });
    // The refusal tally writes the first refusal of an interval and counts the others: nothing else is written.
    expect(since(before).filter((e) => e.type !== 'request.refusal')).toEqual([]);
    expect(baton.service.policy().digest).toBe(shippedDigest);
  });

  it('refuses every call without the admin scope', async () => {
    const auditor = await bearerOf(baton, 'ops-console', 'baton:audit');
    const lacks = { error: 'access_denied', error_description: 'the caller lacks the baton:admin scope' };
    expect(await versions(auditor)).toEqual({ status: 403, body: lacks });
    expect(await rollback({ version: 1 }, auditor)).toEqual({ status: 403, body: lacks });
    expect(await rollback({ version: 1 }, { authorization: basic('agent-platform') })).toEqual({
      status: 403,
      body: lacks,
    });
    const none = { error: 'invalid_client', error_description: 'authentication is required' };
    expect(await versions({})).toEqual({ status: 401, body: none });
    expect(await rollback({ version: 1 }, {})).toEqual({ status: 401, body: none });
    expect(await rollback('version=1', { ...admin, 'content-type': 'application/x-www-form-urlencoded' })).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'content type must be application/json' },
    });
  });
});

describe('a policy set uploaded whole: POST /admin/policies', () => {
  let other: MemoryBaton;
  beforeAll(async () => {
    other = await memoryBaton({ BATON_POLICY_DIR: 'policies' });
  });
  afterAll(async () => {
    await other?.close();
  });
  async function upload(body: unknown, headers: Record<string, string> = admin) {
    const result = await postJson(other, '/admin/policies', body, headers);
    return { status: result.status, body: result.body };
  }
  const shippedFiles = () =>
    Object.fromEntries(
      ['baton.cedarschema', 'delegation.cedar', 'entities.json', 'payments.cedar'].map((n) => [
        n,
        readFileSync(join('policies', n), 'utf8'),
      ]),
    );

  it('validates the set once, stores it as the next version and puts it in force; the same set again is unchanged', async () => {
    const files = { ...shippedFiles(), 'payments.cedar': up200 };
    const digest = createHash('sha256').update(policySetCanonical(files)).digest('hex');
    const ids = ['delegate-within-tenant', 'max-chain-depth', 'transfer-up-to-200'];
    const before = other.auditEntries().length;
    expect(await upload({ files })).toEqual({
      status: 200,
      body: { status: 'reloaded', version: 2, digest, policies: ids, previous: { version: 1, digest: shippedDigest } },
    });
    expect(other.service.policy().digest).toBe(digest);
    expect(other.auditEntries().slice(before)).toMatchObject([
      {
        tenant: '*',
        type: 'policy.reload',
        decision: 'applied',
        client: 'ops-console',
        policy_digest: digest,
        reason: `upload: version 2 (${digest}) from version 1 (${shippedDigest}): ${ids.join(', ')}`,
      },
    ]);
    expect(await upload({ files })).toEqual({
      status: 200,
      body: { status: 'unchanged', version: 2, digest, policies: ids, previous: { version: 2, digest } },
    });
  });

  it('refuses an invalid set, audited, the set in force unchanged', async () => {
    const inForce = other.service.policy().digest;
    const before = other.auditEntries().length;
    const refused = await upload({ files: { ...shippedFiles(), 'notes.txt': 'hello' } });
    expect(refused).toEqual({
      status: 400,
      body: {
        error: 'invalid_request',
        error_description:
          'the new policy set was refused; the running set stays: invalid policy set:\n  upload/notes.txt: is not a policy set file (*.cedar, one *.cedarschema, entities.json)',
      },
    });
    expect(other.auditEntries().slice(before)).toMatchObject([
      { type: 'policy.reload', decision: 'refused', policy_digest: inForce },
    ]);
    expect(other.service.policy().digest).toBe(inForce);
  });

  it.each([
    ['no files', {}, 'files must be an object of file names to texts'],
    ['files as an array', { files: ['a.cedar'] }, 'files must be an object of file names to texts'],
    ['files as text', { files: 'a.cedar' }, 'files must be an object of file names to texts'],
    ['no file', { files: {} }, 'files must hold 1 to 256 files'],
    ['a text that is no string', { files: { 'a.cedar': 1 } }, "files: every file's text must be a string"],
    ['a NUL in a text', { files: { 'a.cedar': 'permit\u0000' } }, 'files.a.cedar contains a NUL character'],
    ['another member', { files: { 'a.cedar': '' }, version: 1 }, 'unknown member "version"'],
  ])('refuses %s', async (_name, body, description) => {
    const inForce = other.service.policy().digest;
    expect(await upload(body)).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: description },
    });
    expect(other.service.policy().digest).toBe(inForce);
  });

  it('is refused without the admin scope', async () => {
    expect(await upload({ files: shippedFiles() }, { authorization: basic('agent-platform') })).toEqual({
      status: 403,
      body: { error: 'access_denied', error_description: 'the caller lacks the baton:admin scope' },
    });
  });
});
