import { randomUUID } from 'node:crypto';
import { ocsfOfLine } from '../core/audit/ocsf.js';
import {
  sinkBackoffMs,
  sinkRequest,
  type AuditSinkStore,
  type SinkMetrics,
  type StoredSink,
} from '../core/audit/sinks.js';
import type { Clock, Logger } from '../core/ports.js';

export interface AuditSinkOptions {
  readonly store: AuditSinkStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: SinkMetrics;
  /** How often each instance looks for sinks due (ms). */
  readonly intervalMs: number;
  /** How long a lease lasts unrenewed: another instance takes a sink over this long after its holder stopped. */
  readonly leaseMs: number;
  /** The first retry's wait; it doubles with each failure in a row, up to `maxBackoffMs`. */
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  /** Per request to a sink. */
  readonly timeoutMs: number;
  readonly fetch?: typeof fetch;
}

/**
 * Pushes each tenant's audit entries to its sinks as OCSF events, at least once and in sequence
 * order: a batch goes after the durable cursor, and the cursor moves past it only once the sink
 * accepted it (2xx), under this instance's lease, from the value it was read at. Several instances
 * run this; each sink is delivered by the one holding its lease, so an entry goes out once, except
 * when a lease expires during a request (then the sink may see it twice: the sequence number and
 * hash in each event tell). A failure waits, doubling from `backoffMs`, and is tried again from the
 * same cursor, so entries arrive in order and none is skipped.
 */
export function startAuditSinks(options: AuditSinkOptions): { stop(): Promise<void>; tick(): Promise<void> } {
  const { store, logger, metrics, clock } = options;
  const holder = randomUUID();
  const send = options.fetch ?? fetch;
  let stopped = false;
  // Stopping cuts a request in flight: its batch stays behind the cursor, for whichever instance goes on.
  const stopping = new AbortController();
  let running: Promise<void> | undefined;

  async function deliver(sink: StoredSink): Promise<void> {
    const label = `${sink.tenant}/${sink.id}`;
    let cursor = sink.deliveredSeq;
    // Up to ten batches a tick per sink: a long backlog drains without holding others up for long.
    for (let round = 0; round < 10 && !stopped; round += 1) {
      const { lines, head } = await store.batch(sink.tenant, cursor, sink.batchSize);
      if (lines.length === 0) {
        // Nothing of this tenant up to the head: the cursor moves there, so the next read starts later.
        if (head > cursor && (await store.delivered(sink, holder, cursor, head))) {
          cursor = head;
          metrics.sinkDelivered(label, 0, head);
        }
        metrics.sinkLag(label, 0);
        return;
      }
      const events = lines.map(ocsfOfLine);
      metrics.sinkLag(label, Math.max(0, (clock.now() - (events[0]?.time as number)) / 1000));
      if (sink.failures > 0 && round === 0) metrics.sinkRetry(label);
      const request = sinkRequest(sink.kind, sink.credential, events);
      let problem: string | undefined;
      try {
        const response = await send(sink.url, {
          method: 'POST',
          headers: request.headers,
          body: request.body,
          redirect: 'error',
          signal: AbortSignal.any([AbortSignal.timeout(options.timeoutMs), stopping.signal]),
        });
        await response.body?.cancel();
        if (!response.ok) problem = `answered ${response.status}`;
      } catch (error) {
        problem = error instanceof Error ? error.message : String(error);
      }
      if (problem !== undefined) {
        metrics.sinkFailure(label);
        const wait = sinkBackoffMs(sink.failures + 1, options.backoffMs, options.maxBackoffMs);
        await store.failed(sink, holder, problem, wait);
        logger.warn('audit sink delivery failed; will retry from the same entry', {
          sink: label,
          from: (lines[0] as { seq: number }).seq,
          failures: sink.failures + 1,
          retry_in_ms: wait,
          detail: problem,
        });
        return;
      }
      const last = (lines.at(-1) as { seq: number }).seq;
      // A full batch may have more behind it; a short one read everything up to the head.
      const to = lines.length < sink.batchSize ? Math.max(last, head) : last;
      if (!(await store.delivered(sink, holder, cursor, to))) return; // the lease went to another instance
      metrics.sinkDelivered(label, lines.length, to);
      cursor = to;
      sink = { ...sink, failures: 0, deliveredSeq: to };
      if (lines.length < sink.batchSize) {
        metrics.sinkLag(label, 0);
        return;
      }
    }
  }

  async function tick(): Promise<void> {
    const sinks = await store.claim(holder, options.leaseMs);
    for (const sink of sinks) {
      if (stopped) return;
      try {
        await deliver(sink);
      } catch (error) {
        logger.warn('audit sink delivery stopped on a database error; will retry', {
          sink: `${sink.tenant}/${sink.id}`,
          detail: error instanceof Error ? error.message : String(error),
        });
      }
    }
  }

  const timer = setInterval(() => {
    if (running !== undefined) return;
    running = tick()
      .catch((error: unknown) =>
        logger.warn('looking for audit sinks due failed; will retry', {
          detail: error instanceof Error ? error.message : String(error),
        }),
      )
      .finally(() => (running = undefined));
  }, options.intervalMs);
  timer.unref();

  return {
    tick: () => (running ??= tick().finally(() => (running = undefined))),
    async stop() {
      stopped = true;
      stopping.abort();
      clearInterval(timer);
      await running;
      await store.release(holder).catch(() => undefined);
    },
  };
}
