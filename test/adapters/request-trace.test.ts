import { describe, expect, it } from 'vitest';
import { jsonLogger } from '../../src/adapters/json-logger.js';
import { runInTrace, tracedEvent } from '../../src/adapters/request-trace.js';
import { randomHexId, traceparentOf, type RequestTrace } from '../../src/core/trace-context.js';

const requestTrace: RequestTrace = {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '53995c3f42cd8ad8',
  parentSpanId: '00f067aa0ba902b7',
  flags: 1,
  traceState: undefined,
  requestId: 'req-1',
};

describe('request trace', () => {
  it('makes random IDs of the right length in lowercase hex', () => {
    const traces = new Set(Array.from({ length: 100 }, () => randomHexId(16)));
    expect(traces.size).toBe(100);
    for (const id of traces) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(randomHexId(8)).toMatch(/^[0-9a-f]{16}$/);
  });

  it("writes a version-00 traceparent naming Baton's span", () => {
    expect(traceparentOf(requestTrace)).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-53995c3f42cd8ad8-01');
    expect(traceparentOf({ ...requestTrace, flags: 0 })).toBe(
      '00-4bf92f3577b34da6a3ce929d0e0e4736-53995c3f42cd8ad8-00',
    );
  });

  it("gives an audit event its request's trace, keeps a request ID it names, and leaves one that states its trace", () => {
    const event = { tenant: 'acme', type: 'decision', decision: 'allow' } as const;
    expect(tracedEvent(event)).toEqual(event);
    runInTrace(requestTrace, () => {
      expect(tracedEvent(event)).toEqual({
        ...event,
        trace_id: requestTrace.traceId,
        span_id: requestTrace.spanId,
        request_id: 'req-1',
      });
      expect(tracedEvent({ ...event, request_id: 'named' }).request_id).toBe('named');
      expect(tracedEvent({ ...event, trace_id: null, span_id: null })).toEqual({
        ...event,
        trace_id: null,
        span_id: null,
      });
    });
  });

  it('puts the trace on every JSON log line written while a request is served, and on no other', async () => {
    const lines: string[] = [];
    const logger = jsonLogger((line) => lines.push(line));
    logger.info('outside');
    await runInTrace(requestTrace, async () => {
      await Promise.resolve();
      logger.warn('inside', { detail: 'x' });
    });
    const [outside, inside] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(outside).not.toHaveProperty('trace_id');
    expect(inside).toMatchObject({
      message: 'inside',
      trace_id: requestTrace.traceId,
      span_id: requestTrace.spanId,
      detail: 'x',
    });
  });
});
