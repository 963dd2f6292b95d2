import { AsyncLocalStorage } from 'node:async_hooks';
import type { AuditEvent } from '../core/audit/chain.js';
import { withRequestTrace, type RequestTrace } from '../core/trace-context.js';

// One store for the process (Node) or isolate (Workers, under nodejs_compat): the HTTP layer runs
// each request in it, so an audit entry or a log line made anywhere below finds its request's trace
// without every call passing it on. Work started by a timer outside any request finds none.
const traces = new AsyncLocalStorage<RequestTrace>();

/** Runs `work` as part of the request `trace`. */
export function runInTrace<T>(trace: RequestTrace, work: () => T): T {
  return traces.run(trace, work);
}

/** The trace of the request being served, if any. */
export function currentTrace(): RequestTrace | undefined {
  return traces.getStore();
}

/** The event with the trace of the request being served (see withRequestTrace). */
export function tracedEvent(event: AuditEvent): AuditEvent {
  return withRequestTrace(event, traces.getStore());
}
