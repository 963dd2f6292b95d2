import { SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
import type { Metrics } from './ports.js';

/** Baton's tracer; without an SDK registered every span is a no-op. */
const tracer = trace.getTracer('baton');

/** Runs `work` in an active span; an exception marks the span as an error and is rethrown. */
export async function inSpan<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
      span.setAttribute('baton.outcome', 'error');
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Runs synchronous `work` (a policy evaluation) in an active span. */
export function inSpanSync<T>(name: string, attributes: Attributes, work: (span: Span) => T): T {
  return tracer.startActiveSpan(name, { attributes }, (span) => {
    try {
      return work(span);
    } finally {
      span.end();
    }
  });
}

/** The trace id of the active span, if any, for log lines. */
export function activeTraceId(): string | undefined {
  const context = trace.getActiveSpan()?.spanContext();
  return context === undefined || context.traceId === '00000000000000000000000000000000' ? undefined : context.traceId;
}

/** Metrics that go nowhere (tests, and runtimes without an exporter). */
export const noMetrics: Metrics = {
  request: () => undefined,
  grant: () => undefined,
  decision: () => undefined,
  revocation: () => undefined,
  auditBatch: () => undefined,
  reload: () => undefined,
};
