import type { AuditEvent } from './chain.js';
import type { Clock } from '../ports.js';

/** A refusal without an audit entry of its own: refused before the endpoint's logic (content type, form, body size, authentication…). */
export interface Refusal {
  /** Who sent it: `client <id>` once authenticated, else `address <remote address>`, else `unknown`. */
  readonly source: string;
  /** The caller's tenant once known, else `unknown`. */
  readonly tenant: string;
  readonly client: string | null;
  /** Method and route, e.g. `POST /oauth2/token`. */
  readonly route: string;
  readonly status: number;
  readonly code: string;
  /** The error description as the caller got it (already sanitized). */
  readonly description: string;
  /** What the logs are told besides (never a token or secret), kept in the entry that is written at once. */
  readonly detail?: string | undefined;
  readonly requestId: string | null;
}

export interface RefusalTallyOptions {
  readonly clock: Clock;
  /** How long one entry stands for the refusals of one source at one route with one error. */
  readonly intervalSeconds: number;
  /** Sources counted apart in one interval; beyond that, refusals count together under `other sources`. */
  readonly maxSources?: number;
}

/**
 * Keeps the audit log of refusals bounded under a flood. Per source, route and error, the first
 * refusal of an interval is an entry at once; the rest of the interval are counted and written as
 * one summary entry with their number when the interval has ended (at the next refusal, or when
 * `due` is called on a timer). So each source gets at most two entries per route and error per
 * interval, the count is exact, and the number of sources kept apart is capped.
 */
export interface RefusalTally {
  /** Counts a refusal; returns the entries to write now: summaries of ended intervals, and this refusal when it opens one. */
  note(refusal: Refusal): AuditEvent[];
  /** Summaries of intervals that have ended, for a timer to write. */
  due(): AuditEvent[];
  /** Summaries of every interval still open, at shutdown. */
  drain(): AuditEvent[];
}

interface Interval {
  readonly start: number;
  readonly first: Refusal;
  last: Refusal;
  more: number;
}

/** Sources counted apart in one interval by default: at most twice that many entries per route, error and interval. */
const defaultMaxSources = 256;
const otherSources = 'other sources';

/** Creates the tally; it keeps its state in memory, so one process (or Workers isolate) bounds its own refusals. */
export function createRefusalTally(options: RefusalTallyOptions): RefusalTally {
  const intervalMs = options.intervalSeconds * 1000;
  const maxSources = options.maxSources ?? defaultMaxSources;
  // Insertion order is the order intervals opened (the clock only moves forward), so the ended ones are at the front.
  const open = new Map<string, Interval>();
  const sources = new Map<string, number>();

  const keyOf = (r: Refusal, source: string) => `${source}\n${r.route}\n${r.status}\n${r.code}`;
  const entry = (r: Refusal, reason: string, requestId: string | null, summary = false): AuditEvent => ({
    tenant: r.tenant,
    type: 'request.refusal',
    decision: 'refused',
    client: r.client,
    reason: `${r.route} from ${r.source}: ${reason}`,
    request_id: requestId,
    // A summary stands for many requests: it takes the trace of none (not of the request that happened to close it).
    ...(summary ? { trace_id: null, span_id: null } : {}),
  });
  const summary = (interval: Interval, now: number): AuditEvent =>
    entry(
      interval.first,
      `${interval.more} more ${interval.first.code} (${interval.first.status}) from ${new Date(interval.start).toISOString()} to ${new Date(now).toISOString()}; the last: ${interval.last.description}`,
      null,
      true,
    );
  const close = (key: string, interval: Interval, now: number, into: AuditEvent[]): void => {
    if (interval.more > 0) into.push(summary(interval, now));
    open.delete(key);
    const source = interval.first.source;
    const left = (sources.get(source) ?? 1) - 1;
    if (left === 0) sources.delete(source);
    else sources.set(source, left);
  };
  const sweep = (now: number, all: boolean): AuditEvent[] => {
    const written: AuditEvent[] = [];
    for (const [key, interval] of open) {
      if (!all && now - interval.start < intervalMs) break;
      close(key, interval, now, written);
    }
    return written;
  };

  return {
    note(refusal) {
      const now = options.clock.now();
      const written = sweep(now, false);
      const apart = sources.has(refusal.source) || sources.size < maxSources;
      // Past the cap, refusals from sources not yet counted apart share one count, of no one tenant or client.
      const counted = apart ? refusal : { ...refusal, source: otherSources, tenant: 'unknown', client: null };
      const key = keyOf(counted, counted.source);
      const interval = open.get(key);
      if (interval !== undefined) {
        interval.more += 1;
        interval.last = refusal;
        return written;
      }
      open.set(key, { start: now, first: counted, last: refusal, more: 0 });
      sources.set(counted.source, (sources.get(counted.source) ?? 0) + 1);
      written.push(
        entry(
          counted,
          `${refusal.code} (${refusal.status}): ${refusal.description}${refusal.detail === undefined ? '' : ` (${refusal.detail})`}`,
          refusal.requestId,
        ),
      );
      return written;
    },
    due: () => sweep(options.clock.now(), false),
    drain: () => sweep(options.clock.now(), true),
  };
}
