import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { verifyExport } from '../../src/cli/audit-verify.js';
import { entryHash } from '../../src/core/audit/chain.js';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { auditRequests } from '../support/audit.js';
import { basic, grants, postJson, postToken, startTestBaton, tokenTypes, type TestBaton } from '../support/baton.js';

// No tracer SDK is registered here: @opentelemetry/api is the no-op it is by default, and Baton
// still reads the caller's traceparent and makes its own span ID (observability.test.ts has the SDK).
let baton: TestBaton;
let requests: ReturnType<typeof auditRequests>;
beforeAll(async () => {
  baton = await startTestBaton();
  requests = auditRequests(baton);
});
afterAll(async () => {
  await baton?.close();
});

const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
const callerSpan = '00f067aa0ba902b7';
const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

const exchange = async (headers: Record<string, string>) =>
  postToken(
    baton,
    {
      grant_type: grants.exchange,
      subject_token: await mintUserToken('alice', { audience: baton.issuer }),
      subject_token_type: tokenTypes.jwt,
      actor_token: await mintAgentAssertion('orchestrator', baton.issuer),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    },
    { authorization: basic('agent-platform'), ...headers },
  );

/** The stored entries of the log, parsed, as an auditor exports them. */
async function entries(): Promise<Record<string, unknown>[]> {
  const exported = await requests.get(
    '/audit/entries?from=1&limit=10000',
    await requests.bearer('ops-console', 'baton:audit'),
  );
  expect(exported.status).toBe(200);
  return exported.text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { canonical?: string })
    .filter((line) => line.canonical !== undefined)
    .map((line) => JSON.parse(line.canonical as string) as Record<string, unknown>);
}

/** The exchange's audit entry, found by the issued token's jti. */
async function exchangeEntry(accessToken: unknown): Promise<Record<string, unknown>> {
  const jti = decodeJwt(accessToken as string).jti;
  const found = (await entries()).filter((e) => e.jti === jti && e.type === 'token.exchange');
  expect(found).toHaveLength(1);
  return found[0] as Record<string, unknown>;
}

/** The response's traceparent, split into trace ID, span ID and flags. */
function answered(headers: Headers): { traceId: string; spanId: string; flags: string } {
  const match = traceparentPattern.exec(headers.get('traceparent') ?? '');
  expect(match, headers.get('traceparent') ?? 'no traceparent').not.toBeNull();
  const [, traceId, spanId, flags] = match as RegExpExecArray;
  return { traceId: traceId as string, spanId: spanId as string, flags: flags as string };
}

describe('an incoming traceparent', () => {
  it("continues the caller's trace on a token exchange: its entry has that trace ID, Baton's span ID and the request ID", async () => {
    const result = await exchange({
      traceparent: `00-${callerTrace}-${callerSpan}-01`,
      tracestate: 'vendor=opaque',
      'x-request-id': 'req-trace-1',
    });
    expect(result.status).toBe(200);
    expect(result.headers.get('x-request-id')).toBe('req-trace-1');
    const own = answered(result.headers);
    expect(own.traceId).toBe(callerTrace);
    // Baton's own span: a child of the caller's, never the caller's span ID itself.
    expect(own.spanId).not.toBe(callerSpan);
    expect(own.flags).toBe('01');
    expect(result.headers.get('tracestate')).toBe('vendor=opaque');
    const entry = await exchangeEntry(result.body.access_token);
    expect({ trace_id: entry.trace_id, span_id: entry.span_id, request_id: entry.request_id }).toEqual({
      trace_id: callerTrace,
      span_id: own.spanId,
      request_id: 'req-trace-1',
    });
    const line = baton.logger.lines.filter((l) => l.message === 'request' && l.fields?.request_id === 'req-trace-1');
    expect(line).toHaveLength(1);
    expect(line[0]?.fields).toMatchObject({ trace_id: callerTrace, span_id: own.spanId, parent_span_id: callerSpan });
  });

  it('continues it on /authorize: the decision entry (GET /audit/actions/{id}) has the trace, span and request IDs', async () => {
    const token = (await exchange({})).body.access_token as string;
    const decision = await postJson(
      baton,
      '/authorize',
      {
        token,
        action: 'payments:read',
        resource: { type: 'Account', id: 'acct-1' },
        context: {},
        action_id: 'traced-action-1',
      },
      {
        authorization: basic('payments'),
        traceparent: `00-${callerTrace}-${callerSpan}-00`,
        'x-request-id': 'req-trace-2',
      },
    );
    expect(decision.status).toBe(200);
    const own = answered(decision.headers);
    expect(own.traceId).toBe(callerTrace);
    expect(own.flags).toBe('00');
    const trail = await requests.get(
      '/audit/actions/traced-action-1',
      await requests.bearer('ops-console', 'baton:audit'),
    );
    expect(trail.status).toBe(200);
    const decided = (trail.json().entries as { entry: Record<string, unknown> }[])
      .map((e) => e.entry)
      .filter((e) => e.type === 'decision');
    expect(decided.map((e) => [e.trace_id, e.span_id, e.request_id])).toEqual([
      [callerTrace, own.spanId, 'req-trace-2'],
    ]);
  });
});

describe('without a traceparent', () => {
  it('Baton starts a trace: the entry has the generated IDs the response names, and no request ID is made up', async () => {
    const result = await exchange({});
    expect(result.status).toBe(200);
    expect(result.headers.get('x-request-id')).toBeNull();
    const own = answered(result.headers);
    expect(own.traceId).not.toBe('0'.repeat(32));
    expect(own.spanId).not.toBe('0'.repeat(16));
    expect(own.flags).toBe('00');
    expect(result.headers.get('tracestate')).toBeNull();
    const entry = await exchangeEntry(result.body.access_token);
    expect([entry.trace_id, entry.span_id, entry.request_id]).toEqual([own.traceId, own.spanId, null]);
    // Each request its own trace.
    expect(answered((await exchange({})).headers).traceId).not.toBe(own.traceId);
  });

  it('a refused request is traced as well', async () => {
    const result = await postToken(
      baton,
      {
        grant_type: grants.exchange,
        subject_token: 'not-a-token',
        subject_token_type: tokenTypes.jwt,
        audience: 'payments',
      },
      {
        authorization: basic('agent-platform'),
        traceparent: `00-${callerTrace}-${callerSpan}-01`,
        'x-request-id': 'req-refused-1',
      },
    );
    expect(result.status).toBe(400);
    const own = answered(result.headers);
    const refused = (await entries()).filter((e) => e.request_id === 'req-refused-1');
    expect(refused.map((e) => [e.decision, e.trace_id, e.span_id])).toEqual([['refused', callerTrace, own.spanId]]);
  });
});

describe('every answer', () => {
  it.each([
    ['GET', '/healthz', 200],
    ['GET', '/.well-known/oauth-authorization-server', 200],
    ['GET', '/metrics', 401],
    ['GET', '/nowhere', 404],
    ['GET', '/oauth2/authorize?client_id=nobody&redirect_uri=https%3A%2F%2Fapp.example%2Fcb', 400],
    ['DELETE', '/oauth2/token', 405],
  ])('every answer names its span (%s %s)', async (method, path, status) => {
    const response = await fetch(`${baton.url}${path}`, {
      method,
      headers: { traceparent: `00-${callerTrace}-${callerSpan}-01` },
      redirect: 'manual',
    });
    expect(response.status).toBe(status);
    expect(answered(response.headers).traceId).toBe(callerTrace);
    await response.body?.cancel();
  });
});

describe('a refusal before the endpoint logic', () => {
  it("is counted by the refusal tally, and the entry written at once has the request's IDs", async () => {
    const response = await fetch(`${baton.url}/oauth2/token`, {
      method: 'POST',
      headers: {
        'content-type': 'text/plain',
        traceparent: `00-${callerTrace}-${callerSpan}-01`,
        'x-request-id': 'req-tally-1',
      },
      body: 'grant_type=client_credentials',
    });
    expect(response.status).toBe(400);
    const own = answered(response.headers);
    // Of tenant `unknown` (no caller is known yet), so read where it is stored rather than as an auditor of a tenant.
    const rows = await baton.database.sql<{ canonical: string }>`
      SELECT canonical FROM audit_log WHERE type = 'request.refusal' AND canonical LIKE '%req-tally-1%'`;
    expect(
      rows.map((r) => {
        const e = JSON.parse(r.canonical) as Record<string, unknown>;
        return [e.tenant, e.request_id, e.trace_id, e.span_id];
      }),
    ).toEqual([['unknown', 'req-tally-1', callerTrace, own.spanId]]);
  });
});

describe('a malformed traceparent', () => {
  const valid = `00-${callerTrace}-${callerSpan}-01`;
  const cases: [string, string][] = [
    ['version ff', `ff-${callerTrace}-${callerSpan}-01`],
    ['all-zero trace ID', `00-${'0'.repeat(32)}-${callerSpan}-01`],
    ['all-zero parent ID', `00-${callerTrace}-${'0'.repeat(16)}-01`],
    ['short trace ID', `00-${callerTrace.slice(2)}-${callerSpan}-01`],
    ['long parent ID', `00-${callerTrace}-${callerSpan}ab-01`],
    ['uppercase hex', valid.toUpperCase()],
    ['extra field after version 00', `${valid}-extra`],
    ['one-digit flags', `00-${callerTrace}-${callerSpan}-1`],
    ['not hex', `00-${callerTrace.replace('4b', 'zz')}-${callerSpan}-01`],
    ['empty', ''],
    ['garbage', 'hello'],
  ];
  it.each(cases)('is ignored (%s): the request succeeds in a trace of its own', async (_name, traceparent) => {
    const result = await exchange({ traceparent, 'x-request-id': `req-bad-${_name}`.replaceAll(' ', '-') });
    expect(result.status).toBe(200);
    const own = answered(result.headers);
    expect(own.traceId).not.toBe(callerTrace);
    expect(own.flags).toBe('00');
    const entry = await exchangeEntry(result.body.access_token);
    expect([entry.trace_id, entry.span_id]).toEqual([own.traceId, own.spanId]);
  });

  it('a later version with extra fields is read, as the spec says a version-00 reader must', async () => {
    const result = await exchange({ traceparent: `01-${callerTrace}-${callerSpan}-01-what-comes-later` });
    expect(result.status).toBe(200);
    expect(answered(result.headers).traceId).toBe(callerTrace);
  });
});

describe('a log with entries of an older Baton and traced ones', () => {
  it('exports and verifies by API and offline (as `baton audit verify` does)', async () => {
    await exchange({ traceparent: `00-${callerTrace}-${callerSpan}-01` });
    // An instance of a Baton from before span_id appends an entry of its shape to the shared chain.
    const [head] = await baton.database.sql<{
      seq: string | number;
      hash: string;
    }>`SELECT seq, hash FROM audit_head WHERE id = 1`;
    const seq = Number(head?.seq) + 1;
    const canonical =
      '{"action_id":null,"actor_chain":[],"audience":[],"authorization_details":[],"client":"agent-platform","decision":"granted","jti":null,"parent_jti":null,"policy_digest":null,"policy_ids":[],"reason":null,"request_id":"req-older-baton","root_grant":null,"scope":[],"tenant":"acme","time":"2026-11-24T00:00:00.000Z","trace_id":null,"type":"token.client_credentials","user":null}';
    const hash = entryHash(sha256Hex, seq, head?.hash as string, canonical);
    const rows = JSON.stringify([
      {
        seq,
        tenant: 'acme',
        type: 'token.client_credentials',
        action_id: null,
        jti: null,
        root_grant: null,
        recorded_at: '2026-11-24T00:00:00.000Z',
        canonical,
        prev_hash: head?.hash,
        hash,
      },
    ]);
    const [appended] = await baton.database.sql<{ appended: boolean }>`
      SELECT appended FROM baton_audit_append(${seq - 1}, ${head?.hash as string}, ${seq}, ${hash}, ${rows}, ${null})`;
    expect(appended?.appended).toBe(true);
    // This Baton chains its next entries on it.
    const after = await exchange({ traceparent: `00-${callerTrace}-${callerSpan}-01` });
    expect(after.status).toBe(200);

    const auditor = await requests.bearer('ops-console', 'baton:audit');
    const exported = (await requests.get('/audit/entries?from=1&limit=10000', auditor)).text;
    const stored = exported
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { seq: number; canonical?: string });
    expect(stored.find((l) => l.seq === seq)?.canonical).toBe(canonical);
    const later = stored.filter((l) => l.seq > seq && l.canonical !== undefined);
    expect(later.length).toBeGreaterThan(0);
    for (const l of later) expect(JSON.parse(l.canonical as string)).toHaveProperty('span_id');
    expect((await requests.get('/audit/verify', auditor)).json()).toMatchObject({ valid: true, from: 1 });
    expect(await verifyExport(exported, { keys: [] }, sha256Hex)).toMatchObject({ ok: true });
  });
});

describe('the exported log', () => {
  it('verifies with traced entries (old and new entries together: test/core/audit.test.ts)', async () => {
    await exchange({ traceparent: `00-${callerTrace}-${callerSpan}-01` });
    const exported = await requests.get(
      '/audit/entries?from=1&limit=10000',
      await requests.bearer('ops-console', 'baton:audit'),
    );
    expect(await verifyExport(exported.text, { keys: [] }, sha256Hex)).toMatchObject({ ok: true });
  });
});
