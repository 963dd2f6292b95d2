/**
 * The W3C trace context of one request as Baton records it: the trace it belongs to (the
 * caller's, or one Baton started), Baton's own span for the request, and the caller's span
 * (`parentSpanId`) when a `traceparent` named one.
 */
export interface RequestTrace {
  /** 32 lowercase hex digits, never all zero. */
  readonly traceId: string;
  /** Baton's span for this request: 16 lowercase hex digits, never all zero. */
  readonly spanId: string;
  /** The caller's span (the parent-id of its traceparent), or null when Baton started the trace. */
  readonly parentSpanId: string | null;
  /** The trace-flags byte (bit 0: sampled). */
  readonly flags: number;
  /** The caller's tracestate, passed on as it came (already validated by the propagator). */
  readonly traceState: string | undefined;
  /** The caller's X-Request-ID, when plausible. */
  readonly requestId: string | null;
}

// Random bytes are drawn 4 KiB at a time: one getRandomValues call per request costs more than the
// rest of making its trace and span IDs.
const pool = new Uint8Array(4096);
let used = pool.length;
const hex = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** `bytes` random bytes as lowercase hex, never all zero (an all-zero trace or span ID is invalid). */
export function randomHexId(bytes: 8 | 16): string {
  for (;;) {
    if (used + bytes > pool.length) {
      crypto.getRandomValues(pool);
      used = 0;
    }
    let id = '';
    let zero = true;
    for (let i = used; i < used + bytes; i++) {
      const b = pool[i] as number;
      if (b !== 0) zero = false;
      id += hex[b];
    }
    used += bytes;
    if (!zero) return id;
  }
}

/** The version-00 `traceparent` that names Baton's span of this request, for the caller to join its logs on. */
export function traceparentOf(trace: RequestTrace): string {
  return `00-${trace.traceId}-${trace.spanId}-${(trace.flags & 0xff).toString(16).padStart(2, '0')}`;
}
