import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import parsePrometheus from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { decodeJwt } from 'jose';
import { auditRequests } from '../support/audit.js';
import { basic, grants, postJson, postToken, startTestBaton, tokenTypes, type TestBaton } from '../support/baton.js';

const exporter = new InMemorySpanExporter();
let baton: TestBaton;
beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  baton = await startTestBaton();
});
afterAll(async () => {
  await baton?.close();
  trace.disable();
  context.disable();
});

const exchange = async (audience = 'payments', headers: Record<string, string> = {}) =>
  postToken(
    baton,
    {
      grant_type: grants.exchange,
      subject_token: await mintUserToken('alice', { audience: baton.issuer }),
      subject_token_type: tokenTypes.jwt,
      actor_token: await mintAgentAssertion('orchestrator', baton.issuer),
      actor_token_type: tokenTypes.jwt,
      audience,
    },
    { authorization: basic('agent-platform'), ...headers },
  );

describe('traces', () => {
  it('record a span tree for one exchange: request > token > policy, signing, audit append', async () => {
    exporter.reset();
    expect((await exchange()).status).toBe(200);
    const spans = exporter.getFinishedSpans();
    const byName = new Map(spans.map((s) => [s.name, s]));
    const request = byName.get('baton.request');
    const token = byName.get('baton.token');
    expect(request?.attributes).toMatchObject({ 'http.route': '/oauth2/token', 'http.response.status_code': 200 });
    expect(token?.attributes).toMatchObject({
      'baton.grant_type': grants.exchange,
      'baton.tenant': 'acme',
      'baton.client': 'agent-platform',
      'baton.actor': 'orchestrator',
      'baton.outcome': 'granted',
    });
    const parentOf = (name: string) => byName.get(name)?.parentSpanContext?.spanId;
    expect(parentOf('baton.token')).toBe(request?.spanContext().spanId);
    for (const child of ['baton.policy.evaluate', 'baton.sign', 'baton.audit.append'])
      expect(parentOf(child), child).toBe(token?.spanContext().spanId);
    expect(byName.get('baton.policy.evaluate')?.attributes).toMatchObject({
      'baton.action': 'delegate',
      'baton.decision': 'allow',
    });
    expect(new Set(spans.map((s) => s.spanContext().traceId)).size).toBe(1);
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toMatch(/eyJ/);
  });
});

describe('GET /metrics', () => {
  it('counts what happened, in Prometheus text format', async () => {
    for (let i = 0; i < 3; i++) expect((await exchange()).status).toBe(200);
    expect((await exchange('nowhere')).status).toBe(400);
    const token = (await exchange()).body.access_token as string;
    const decide = (amount: number) =>
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
    await decide(10);
    await decide(1000);

    const response = await fetch(`${baton.url}/metrics`, { headers: { authorization: basic('ops-console') } });
    expect(response.status).toBe(200);
    const families = parsePrometheus(await response.text()) as {
      name: string;
      metrics: { labels?: Record<string, string>; value?: string; count?: string }[];
    }[];
    const value = (name: string, labels: Record<string, string>) =>
      families
        .find((f) => f.name === name)
        ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    expect(value('baton_token_requests_total', { grant_type: grants.exchange, outcome: 'granted' })?.value).toBe('5');
    expect(
      value('baton_token_requests_total', { grant_type: grants.exchange, outcome: 'refused', reason: 'invalid_target' })
        ?.value,
    ).toBe('1');
    expect(value('baton_decisions_total', { api: 'authorize', outcome: 'allow', reason: 'policy' })?.value).toBe('1');
    expect(value('baton_decisions_total', { api: 'authorize', outcome: 'deny', reason: 'policy' })?.value).toBe('1');
    expect(
      value('baton_http_requests_total', { route: '/oauth2/token', method: 'POST', status: '200' })?.value,
    ).toBeDefined();
    expect(Number(value('baton_audit_batch_size', {})?.count)).toBeGreaterThanOrEqual(8);
    expect(
      value('baton_signing_key_info', { kid: baton.signingJwks.keys[0]?.kid as string, alg: 'EdDSA' })?.value,
    ).toBe('1');
  });

  it('needs the baton:metrics scope', async () => {
    expect((await fetch(`${baton.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${baton.url}/metrics`, { headers: { authorization: basic('agent-platform') } })).status).toBe(
      403,
    );
  });
});

describe('logs', () => {
  it('write one JSON line per request with trace id, tenant, client, actor, route, status and duration', async () => {
    await exchange();
    const line = baton.logger.lines
      .filter((l) => l.message === 'request' && l.fields?.route === '/oauth2/token')
      .at(-1);
    expect(line?.fields).toMatchObject({
      trace_id: expect.stringMatching(/^[0-9a-f]{32}$/),
      span_id: expect.stringMatching(/^[0-9a-f]{16}$/),
      method: 'POST',
      route: '/oauth2/token',
      status: 200,
      duration_ms: expect.any(Number),
      tenant: 'acme',
      client: 'agent-platform',
      actor: 'orchestrator',
    });
  });
});

describe('trace context with a tracer SDK', () => {
  const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const callerSpan = '00f067aa0ba902b7';
  /** The exchange's audit entry, as an auditor exports it, found by the issued token's jti. */
  async function exchangeEntry(accessToken: unknown): Promise<Record<string, unknown> | undefined> {
    const requests = auditRequests(baton);
    const exported = await requests.get(
      '/audit/entries?from=1&limit=10000',
      await requests.bearer('ops-console', 'baton:audit'),
    );
    const jti = decodeJwt(accessToken as string).jti;
    return exported.text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { canonical?: string })
      .filter((line) => line.canonical !== undefined)
      .map((line) => JSON.parse(line.canonical as string) as Record<string, unknown>)
      .find((e) => e.jti === jti && e.type === 'token.exchange');
  }

  it("makes the request span a child of the caller's span, and the audit entry and response name that span", async () => {
    exporter.reset();
    const result = await exchange('payments', {
      traceparent: `00-${callerTrace}-${callerSpan}-01`,
      'x-request-id': 'req-sdk-1',
    });
    expect(result.status).toBe(200);
    const request = exporter.getFinishedSpans().find((s) => s.name === 'baton.request');
    expect(request?.spanContext().traceId).toBe(callerTrace);
    expect(request?.parentSpanContext?.spanId).toBe(callerSpan);
    expect(request?.parentSpanContext?.isRemote).toBe(true);
    const spanId = request?.spanContext().spanId;
    expect(result.headers.get('traceparent')).toBe(`00-${callerTrace}-${spanId}-01`);
    // Every span of the request is in the caller's trace.
    expect(new Set(exporter.getFinishedSpans().map((s) => s.spanContext().traceId))).toEqual(new Set([callerTrace]));
    const entry = await exchangeEntry(result.body.access_token);
    expect([entry?.trace_id, entry?.span_id, entry?.request_id]).toEqual([callerTrace, spanId, 'req-sdk-1']);
    const line = baton.logger.lines.find((l) => l.message === 'request' && l.fields?.request_id === 'req-sdk-1');
    expect(line?.fields).toMatchObject({ trace_id: callerTrace, span_id: spanId, parent_span_id: callerSpan });
  });

  it('without a traceparent, the SDK starts the trace and its IDs are the ones recorded', async () => {
    exporter.reset();
    const result = await exchange();
    const request = exporter.getFinishedSpans().find((s) => s.name === 'baton.request');
    expect(request?.parentSpanContext).toBeUndefined();
    const own = request?.spanContext();
    expect(result.headers.get('traceparent')).toBe(`00-${own?.traceId}-${own?.spanId}-01`);
    const entry = await exchangeEntry(result.body.access_token);
    expect([entry?.trace_id, entry?.span_id, entry?.request_id]).toEqual([own?.traceId, own?.spanId, null]);
  });
});
