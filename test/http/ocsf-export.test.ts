import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintUserToken } from '../../src/cli/demo-kit.js';
import {
  basic,
  bearerOf,
  demoChain,
  exchangeHop,
  postJson,
  startTestBaton,
  tokenTypes,
  type TestBaton,
} from '../support/baton.js';
import { consentedCode, redeemCode } from '../support/consent.js';
import { ocsfErrors } from '../support/ocsf.js';

type Event = Record<string, unknown> & {
  metadata: Record<string, unknown>;
  unmapped: { baton: Record<string, unknown> };
};
interface Line {
  seq: number;
  hash: string;
  prev_hash: string;
  canonical?: string;
}

let baton: TestBaton;
let admin: Record<string, string>;
let auditor: Record<string, string>;
let events: Event[];
let lines: Map<number, Line & { entry: Record<string, unknown> }>;

async function get(path: string, headers: Record<string, string>) {
  const response = await fetch(`${baton.url}${path}`, { headers });
  return { status: response.status, headers: response.headers, text: await response.text() };
}
const parse = (text: string) =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);

/** Each kind of entry Baton writes in the course of a day, driven through its HTTP API. */
async function driveEveryKind(): Promise<void> {
  const [, second] = await demoChain(baton, 'payments:read payments:transfer', 'payments:transfer');
  const transfer = (amount: number, actionId: string) =>
    postJson(
      baton,
      '/authorize',
      {
        token: second,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount, currency: 'EUR' },
        action_id: actionId,
      },
      { authorization: basic('payments'), 'x-request-id': `req-${actionId}` },
    );
  expect((await transfer(40, 'ocsf-allow')).body.decision).toBe('allow');
  expect((await transfer(4000, 'ocsf-deny')).body.decision).toBe('deny');
  const refused = await exchangeHop(
    baton,
    await mintUserToken('alice', { audience: 'https://elsewhere.example' }),
    tokenTypes.jwt,
    'orchestrator',
    { audience: 'payments' },
  );
  expect(refused.status).toBe(400);
  const { code, verifier } = await consentedCode(baton);
  expect((await redeemCode(baton, code, verifier)).status).toBe(200);
  expect((await postJson(baton, '/admin/revoke', { agent: 'orchestrator' }, admin)).status).toBe(200);
  expect((await postJson(baton, '/admin/policies/reload', {}, admin)).status).toBe(200);
  const { publicKey } = await generateKeyPair('EdDSA');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'ocsf-1', alg: 'EdDSA' };
  const created = await postJson(
    baton,
    '/admin/agents',
    { id: 'ocsf-agent', name: 'OCSF', owner: 'alice', jwks: { keys: [jwk] }, scope: ['payments:read'] },
    admin,
  );
  expect(created.status).toBe(201);
  expect((await postJson(baton, '/admin/suspensions', { kind: 'user', id: 'carol' }, admin)).status).toBe(201);
}

beforeAll(async () => {
  baton = await startTestBaton({ BATON_RATE_LIMIT: '0' });
  admin = await bearerOf(baton, 'ops-console', 'baton:admin');
  auditor = await bearerOf(baton, 'ops-console', 'baton:audit');
  await driveEveryKind();
  const ocsf = await get('/audit/entries?format=ocsf&limit=10000', auditor);
  expect(ocsf.status).toBe(200);
  expect(ocsf.headers.get('content-type')).toBe('application/x-ndjson');
  events = parse(ocsf.text) as Event[];
  const plain = await get('/audit/entries?limit=10000', auditor);
  lines = new Map(
    (parse(plain.text) as Line[])
      .filter((l) => l.canonical !== undefined)
      .map((l) => [l.seq, { ...l, entry: JSON.parse(l.canonical as string) as Record<string, unknown> }]),
  );
});
afterAll(async () => {
  await baton?.close();
});

/** The event of the first entry of `type` (and `decision`), with the entry it maps. */
function eventOf(type: string, decision?: string): { event: Event; entry: Record<string, unknown>; line: Line } {
  const event = events.find(
    (e) => e.metadata.event_code === type && (decision === undefined || e.unmapped.baton.decision === decision),
  );
  if (event === undefined) throw new Error(`no ${type} ${decision ?? ''} event`);
  const line = lines.get(event.metadata.sequence as number);
  if (line === undefined) throw new Error(`no line ${String(event.metadata.sequence)}`);
  return { event, entry: line.entry, line };
}

const product = { name: 'Baton', vendor_name: 'Baton', version: '0.1.0' };

describe('GET /audit/entries?format=ocsf', () => {
  it('maps every entry of the tenant, one event per entry in sequence order, each valid against its OCSF class schema', () => {
    expect([...lines.keys()]).toEqual(events.map((e) => e.metadata.sequence));
    for (const event of events) expect(ocsfErrors(event), JSON.stringify(event)).toEqual([]);
    const kinds = new Set(events.map((e) => `${String(e.metadata.event_code)} ${String(e.unmapped.baton.decision)}`));
    for (const kind of [
      'token.client_credentials granted',
      'token.exchange granted',
      'token.exchange refused',
      'decision allow',
      'decision deny',
      'authorization.login granted',
      'authorization.consent granted',
      'token.authorization_code granted',
      'token.revocation applied',
      'policy.reload applied',
      'registry.change applied',
      'registry.suspend applied',
    ])
      expect([...kinds]).toContain(kind);
    expect(new Set(events.map((e) => e.class_uid))).toEqual(new Set([6003, 3002, 3003, 3004]));
  });

  it('carries each entry’s sequence number and hash, as the plain export states them', () => {
    for (const event of events) {
      const line = lines.get(event.metadata.sequence as number) as Line;
      expect(event.metadata.uid).toBe(line.hash);
      expect(event.unmapped.baton).toMatchObject({ seq: line.seq, hash: line.hash, prev_hash: line.prev_hash });
    }
  });

  it('maps a decision to API Activity with the chain, action ID and policies in place', () => {
    const { event, entry, line } = eventOf('decision', 'deny');
    const { tenant: _tenant, time: _time, ...members } = entry;
    expect(members).toMatchObject({
      type: 'decision',
      decision: 'deny',
      action_id: 'ocsf-deny',
      user: 'alice',
      actor_chain: ['payments-subagent', 'orchestrator'],
      client: 'payments',
      audience: ['https://payments.example'],
      policy_ids: [],
      reason: 'payments:transfer on Account::acct-1',
      request_id: 'req-ocsf-deny',
    });
    expect(event).toEqual({
      class_uid: 6003,
      class_name: 'API Activity',
      category_uid: 6,
      category_name: 'Application Activity',
      activity_id: 99,
      activity_name: 'Authorize',
      type_uid: 600399,
      type_name: 'API Activity: Authorize',
      time: Date.parse(entry.time as string),
      severity_id: 2,
      severity: 'Low',
      status_id: 2,
      status: 'Failure',
      status_detail: 'payments:transfer on Account::acct-1',
      message: 'decision deny: alice → orchestrator → payments-subagent (payments:transfer on Account::acct-1)',
      metadata: {
        version: '1.8.0',
        product,
        uid: line.hash,
        sequence: line.seq,
        correlation_uid: 'ocsf-deny',
        tenant_uid: 'acme',
        event_code: 'decision',
        log_name: 'audit',
        log_provider: 'Baton',
        original_time: entry.time,
      },
      actor: {
        user: { uid: 'alice', type_id: 1 },
        app_uid: 'payments',
        app_name: 'payments',
        session: { uid: entry.jti },
        authorizations: [{ decision: 'deny' }],
      },
      api: { operation: 'decision', service: { name: 'Baton' }, request: { uid: 'req-ocsf-deny' } },
      src_endpoint: { name: 'payments' },
      resources: [{ uid: 'https://payments.example', type: 'audience' }],
      // Every member of the entry but tenant and time, whatever members this Baton's entries have.
      unmapped: { baton: { seq: line.seq, hash: line.hash, prev_hash: line.prev_hash, ...members } },
    });
    const allow = eventOf('decision', 'allow').event;
    expect(allow.actor).toMatchObject({
      authorizations: [{ decision: 'allow', policy: { uid: 'transfer-up-to-100' } }],
    });
    expect(allow.metadata.correlation_uid).toBe('ocsf-allow');
    expect(allow).toMatchObject({ status_id: 1, status: 'Success', severity_id: 1 });
  });

  it('maps a refused exchange to a failed API Activity Create with its reason', () => {
    const { event, entry } = eventOf('token.exchange', 'refused');
    expect(event).toMatchObject({
      class_uid: 6003,
      activity_id: 1,
      type_uid: 600301,
      status_id: 2,
      status: 'Failure',
      status_detail: entry.reason,
      api: { operation: 'token.exchange' },
      actor: { app_uid: 'agent-platform' },
    });
  });

  it('maps a sign-in to Authentication Logon and the consent to Authorize Session', () => {
    const login = eventOf('authorization.login', 'granted');
    expect(login.event).toMatchObject({
      class_uid: 3002,
      category_uid: 3,
      activity_id: 1,
      activity_name: 'Logon',
      type_uid: 300201,
      status_id: 1,
      user: { uid: 'alice', type_id: 1 },
      service: { name: 'Baton' },
      metadata: { sequence: login.line.seq, uid: login.line.hash, event_code: 'authorization.login' },
    });
    const consent = eventOf('authorization.consent', 'granted');
    expect(consent.event).toMatchObject({
      class_uid: 3003,
      activity_id: 1,
      activity_name: 'Assign Privileges',
      type_uid: 300301,
      user: { uid: 'alice', type_id: 1 },
      privileges: consent.entry.scope,
      actor: { app_uid: 'agent-platform' },
    });
  });

  it('maps a revocation, a policy reload and registry changes to Entity Management', () => {
    const revocation = eventOf('token.revocation', 'applied');
    expect(revocation.event).toMatchObject({
      class_uid: 3004,
      activity_id: 4,
      activity_name: 'Delete',
      type_uid: 300404,
      entity: { type: 'tokens of agent', uid: 'orchestrator' },
      comment: revocation.entry.reason,
      actor: { app_uid: 'ops-console' },
    });
    const reload = eventOf('policy.reload', 'applied');
    expect(reload.event).toMatchObject({
      class_uid: 3004,
      activity_id: 3,
      type_uid: 300403,
      entity: { type: 'policy set', type_id: 5, name: 'policy set', uid: reload.entry.policy_digest },
      metadata: { tenant_uid: '*' },
    });
    expect(eventOf('registry.change', 'applied').event).toMatchObject({
      activity_id: 3,
      comment: 'created agent "ocsf-agent"',
      entity: { type: 'registry', name: 'registry' },
    });
    expect(eventOf('registry.suspend', 'applied').event).toMatchObject({
      activity_id: 12,
      activity_name: 'Suspend',
      type_uid: 300412,
      entity: { type: 'user', type_id: 2, uid: 'carol' },
      actor: { app_uid: 'ops-console', app_name: 'ops-console' },
    });
    // The suspended user is what was acted upon, not who acted.
    expect(eventOf('registry.suspend', 'applied').event.actor).toEqual({
      app_uid: 'ops-console',
      app_name: 'ops-console',
    });
  });

  it("gives another tenant's auditor none of these events", async () => {
    const globex = await get(
      '/audit/entries?format=ocsf&limit=10000',
      await bearerOf(baton, 'globex-audit', 'baton:audit'),
    );
    expect(globex.status).toBe(200);
    const theirs = parse(globex.text) as Event[];
    for (const event of theirs) expect(['globex', '*']).toContain(event.metadata.tenant_uid);
    expect(theirs.filter((e) => e.metadata.tenant_uid === '*').length).toBeGreaterThan(0);
  });

  it('pages like the plain export, and says where the next page starts', async () => {
    const all = [...lines.keys()];
    const from = all[2] as number;
    const page = await get(`/audit/entries?format=ocsf&from=${from}&limit=3`, auditor);
    expect(page.status).toBe(200);
    const seqs = (parse(page.text) as Event[]).map((e) => e.metadata.sequence);
    expect(seqs).toEqual(all.filter((s) => s >= from && s < from + 3));
    expect(page.headers.get('baton-next-from')).toBe(String(from + 3));
    const tail = await get(`/audit/entries?format=ocsf&from=${from}&limit=10000`, auditor);
    expect(tail.headers.get('baton-next-from')).toBeNull();
  });

  it('refuses an unknown or repeated format, and callers without the audit scope', async () => {
    const unknown = await get('/audit/entries?format=cef', auditor);
    expect({ status: unknown.status, body: JSON.parse(unknown.text) as unknown }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'format must be baton or ocsf' },
    });
    const repeated = await get('/audit/entries?format=ocsf&format=ocsf', auditor);
    expect({ status: repeated.status, body: JSON.parse(repeated.text) as unknown }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'format is repeated' },
    });
    expect((await get('/audit/entries?format=ocsf', admin)).status).toBe(403);
    expect((await get('/audit/entries?format=ocsf', {})).status).toBe(401);
  });
});
