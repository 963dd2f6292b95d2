import {
  ROOT_CONTEXT,
  defaultTextMapGetter,
  isSpanContextValid,
  trace,
  type Context,
  type Span,
  type SpanContext,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { randomHexId, type RequestTrace } from '../core/trace-context.js';

// OpenTelemetry's own W3C propagator, used directly rather than the global one: Baton reads
// `traceparent`/`tracestate` whether or not the host registered an SDK or a propagator, and the
// propagator applies the spec's rules (version ff, all-zero IDs, lengths, uppercase hex, extra
// fields after version 00: all ignored, never an error).
const propagator = new W3CTraceContextPropagator();

/** The caller's trace context from `traceparent` and `tracestate`: ROOT_CONTEXT when there is none or it is malformed. */
export function incomingContext(headers: Headers): Context {
  const carrier: Record<string, string> = {};
  for (const name of propagator.fields()) {
    const value = headers.get(name);
    if (value !== null) carrier[name] = value;
  }
  return propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
}

/** The caller's span, when `incomingContext` found a valid one. */
export function callerSpan(parent: Context): SpanContext | undefined {
  const span = trace.getSpanContext(parent);
  return span !== undefined && isSpanContextValid(span) ? span : undefined;
}

/**
 * The request's trace. With a tracer SDK registered, Baton's request span has its own IDs (in the
 * caller's trace when there was one) and they are taken as they are. Without one, the no-op span
 * only echoes the caller's context (or none), so Baton makes its own span ID, in the caller's
 * trace or in a new trace it starts.
 */
export function requestTraceOf(span: Span, caller: SpanContext | undefined, requestId: string | null): RequestTrace {
  const own = span.spanContext();
  if (isSpanContextValid(own) && own.spanId !== caller?.spanId)
    return {
      traceId: own.traceId,
      spanId: own.spanId,
      parentSpanId: caller?.spanId ?? null,
      flags: own.traceFlags,
      traceState: own.traceState?.serialize() || undefined,
      requestId,
    };
  return {
    traceId: caller?.traceId ?? randomHexId(16),
    spanId: randomHexId(8),
    parentSpanId: caller?.spanId ?? null,
    flags: caller?.traceFlags ?? 0,
    traceState: caller?.traceState?.serialize() || undefined,
    requestId,
  };
}
