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
import type { ServiceContext } from '../core/context.js';
import type { LogFields } from '../core/ports.js';
import { randomHexId, type RequestTrace } from '../core/trace-context.js';

// OpenTelemetry's own W3C propagator, used directly rather than the global one: Baton reads
// `traceparent`/`tracestate` whether or not the host registered an SDK or a propagator, and the
// propagator applies the spec's rules (version ff, all-zero IDs, lengths, uppercase hex, extra
// fields after version 00: all ignored, never an error).
const propagator = new W3CTraceContextPropagator();

/** The caller's trace context from `traceparent` and `tracestate`: ROOT_CONTEXT when there is none or it is malformed. */
export function incomingContext(headers: Headers): Context {
  if (!headers.has('traceparent')) return ROOT_CONTEXT;
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

/**
 * The service as one request sees it: each audit entry it appends and each line it logs carries
 * the request's trace and span IDs (and its request ID). Handed to the core explicitly, rather
 * than found through an AsyncLocalStorage, whose promise hooks on Node 20 slow every request.
 */
export function tracedService(service: ServiceContext, trace: RequestTrace): ServiceContext {
  const { audit, logger } = service;
  const ids = { trace_id: trace.traceId, span_id: trace.spanId };
  const traced = (fields: LogFields | undefined): LogFields => ({ ...ids, ...fields });
  return {
    ...service,
    audit: { append: (event, lineage) => audit.append(event, lineage, trace) },
    logger: {
      info: (message, fields) => logger.info(message, traced(fields)),
      warn: (message, fields) => logger.warn(message, traced(fields)),
      error: (message, fields) => logger.error(message, traced(fields)),
    },
  };
}
