import { describe, expect, it } from 'vitest';
import { auditEntry, type AuditEvent, type RequestStamp } from '../../src/core/audit/chain.js';
import type { ServiceContext } from '../../src/core/context.js';
import type { LogFields } from '../../src/core/ports.js';
import { randomHexId, traceparentOf, type RequestTrace } from '../../src/core/trace-context.js';
import { tracedService } from '../../src/http/trace-context.js';

const requestTrace: RequestTrace = {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '53995c3f42cd8ad8',
  parentSpanId: '00f067aa0ba902b7',
  flags: 1,
  traceState: undefined,
  requestId: 'req-1',
};

/** The parts of a service tracedService wraps, recording what reaches them. */
function recordingService() {
  // What the entry made of each appended event says of its request.
  const appended: Pick<AuditEvent, 'request_id' | 'trace_id' | 'span_id'>[] = [];
  const logged: [string, string, LogFields | undefined][] = [];
  const log = (level: string) => (message: string, fields?: LogFields) => logged.push([level, message, fields]);
  const service = {
    issuer: 'https://baton.example',
    audit: {
      append: (event: AuditEvent, _lineage: unknown, request?: RequestStamp) => {
        const { request_id, trace_id, span_id } = auditEntry(event, new Date(0), request);
        appended.push({ request_id, trace_id, span_id });
        return Promise.resolve({ seq: appended.length, hash: 'h' });
      },
    },
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
  } as unknown as ServiceContext;
  return { service, appended, logged };
}

describe('request trace', () => {
  it('makes random IDs of the right length in lowercase hex, distinct across many draws of its pool', () => {
    const traces = new Set(Array.from({ length: 1000 }, () => randomHexId(16)));
    expect(traces.size).toBe(1000);
    for (const id of traces) expect(id).toMatch(/^[0-9a-f]{32}$/);
    const spans = new Set(Array.from({ length: 1000 }, () => randomHexId(8)));
    expect(spans.size).toBe(1000);
    for (const id of spans) expect(id).toMatch(/^[0-9a-f]{16}$/);
  });

  it("writes a version-00 traceparent naming Baton's span", () => {
    expect(traceparentOf(requestTrace)).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-53995c3f42cd8ad8-01');
    expect(traceparentOf({ ...requestTrace, flags: 0 })).toBe(
      '00-4bf92f3577b34da6a3ce929d0e0e4736-53995c3f42cd8ad8-00',
    );
  });

  it('gives each audit event of the request its trace, keeps a request ID it names, and leaves one that states its trace', async () => {
    const { service, appended } = recordingService();
    const traced = tracedService(service, requestTrace);
    expect(traced.issuer).toBe('https://baton.example');
    const event = { tenant: 'acme', type: 'decision', decision: 'allow' } as const;
    await traced.audit.append(event);
    await traced.audit.append({ ...event, request_id: 'named' });
    await traced.audit.append({ ...event, trace_id: null, span_id: null });
    await service.audit.append(event);
    expect(appended).toEqual([
      { trace_id: requestTrace.traceId, span_id: requestTrace.spanId, request_id: 'req-1' },
      { trace_id: requestTrace.traceId, span_id: requestTrace.spanId, request_id: 'named' },
      { trace_id: null, span_id: null, request_id: null },
      { trace_id: null, span_id: null, request_id: null },
    ]);
  });

  it("puts the request's trace on every line the request's service logs, and on no other", () => {
    const { service, logged } = recordingService();
    const traced = tracedService(service, requestTrace);
    service.logger.info('outside');
    traced.logger.warn('inside', { detail: 'x' });
    traced.logger.error('failed');
    expect(logged).toEqual([
      ['info', 'outside', undefined],
      ['warn', 'inside', { trace_id: requestTrace.traceId, span_id: requestTrace.spanId, detail: 'x' }],
      ['error', 'failed', { trace_id: requestTrace.traceId, span_id: requestTrace.spanId }],
    ]);
  });
});
