import { SpanStatusCode, context, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import type { Metrics } from './ports.js';

/** Baton's tracer; without an SDK registered every span is a no-op. */
const tracer = trace.getTracer('baton');

/**
 * Runs `work` in an active span, a child of `parent` (the active context by default: a request's
 * span passes the caller's context instead); an exception marks the span as an error and is rethrown.
 */
export async function inSpan<T>(
  name: string,
  attributes: Attributes,
  work: (span: Span) => Promise<T>,
  parent: Context = context.active(),
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, parent, async (span) => {
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

/** Metrics that go nowhere (tests, and runtimes without an exporter). */
export const noMetrics: Metrics = {
  request: () => undefined,
  grant: () => undefined,
  decision: () => undefined,
  revocation: () => undefined,
  auditBatch: () => undefined,
  reload: () => undefined,
};
