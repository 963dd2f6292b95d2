import { invalidRequest } from '../errors.js';
import type { AuditLine } from './chain.js';
import type { OcsfEvent } from './ocsf.js';

/** Where a tenant's audit entries are pushed, as OCSF events. */
export const sinkKinds = ['webhook', 'splunk', 'datadog'] as const;
export type SinkKind = (typeof sinkKinds)[number];

/** A sink as an operator configures it (`PUT /admin/audit-sinks/{id}`). */
export interface SinkConfig {
  readonly kind: SinkKind;
  readonly url: string;
  /** The webhook's bearer token, Splunk's HEC token or Datadog's API key; never shown back. */
  readonly credential: string | null;
  /** Entries per request, 1–1000. */
  readonly batchSize: number;
}

/** A stored sink: its configuration, the cursor (every entry of its tenant up to `deliveredSeq` was accepted) and its delivery state. */
export interface StoredSink extends SinkConfig {
  readonly tenant: string;
  readonly id: string;
  readonly deliveredSeq: number;
  /** Failed attempts since the last delivery. */
  readonly failures: number;
  readonly lastError: string | null;
}

/** A sink's id: what an operator names it, also its metric label. */
export const sinkIdSyntax = /^[A-Za-z0-9._-]{1,64}$/;

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Checks a sink's configuration (the body of `PUT /admin/audit-sinks/{id}`). */
export function parseSinkConfig(body: unknown): SinkConfig {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw invalidRequest('body must be a JSON object');
  const { kind, url, credential, batch_size: batchSize, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw invalidRequest(`unknown member "${unknown[0]?.slice(0, 64) ?? ''}"`);
  if (typeof kind !== 'string' || !(sinkKinds as readonly string[]).includes(kind))
    throw invalidRequest('kind must be webhook, splunk or datadog');
  if (typeof url !== 'string' || url.length > 2048) throw invalidRequest('url must be an https URL');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidRequest('url must be an https URL');
  }
  // Plain HTTP only to this host itself (a local collector, or a test's sink): entries leave over TLS.
  if (!(parsed.protocol === 'https:' || (parsed.protocol === 'http:' && loopbackHosts.has(parsed.hostname))))
    throw invalidRequest('url must be an https URL (http only to localhost)');
  if (parsed.username !== '' || parsed.password !== '' || parsed.hash !== '')
    throw invalidRequest('url must carry no credentials and no fragment');
  if (
    credential !== undefined &&
    credential !== null &&
    (typeof credential !== 'string' || !/^[\x21-\x7E]{1,512}$/.test(credential))
  )
    throw invalidRequest('credential must be 1–512 visible ASCII characters');
  if ((kind === 'splunk' || kind === 'datadog') && typeof credential !== 'string')
    throw invalidRequest(`credential is required for ${kind} (${kind === 'splunk' ? 'the HEC token' : 'the API key'})`);
  if (
    batchSize !== undefined &&
    !(Number.isInteger(batchSize) && (batchSize as number) >= 1 && (batchSize as number) <= 1000)
  )
    throw invalidRequest('batch_size must be an integer from 1 to 1000');
  return {
    kind: kind as SinkKind,
    url: parsed.href,
    credential: typeof credential === 'string' ? credential : null,
    batchSize: (batchSize as number | undefined) ?? 100,
  };
}

/** A sink as the admin API shows it: never its credential. */
export function sinkView(sink: StoredSink): Record<string, unknown> {
  return {
    id: sink.id,
    kind: sink.kind,
    url: sink.url,
    credential: sink.credential === null ? null : 'set',
    batch_size: sink.batchSize,
    delivered_seq: sink.deliveredSeq,
    failures: sink.failures,
    last_error: sink.lastError,
  };
}

/** One request to a sink. */
export interface SinkRequest {
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * The request that delivers `events` (in sequence order) to a sink: JSON lines to a webhook (with
 * the credential as a bearer token), Splunk HTTP Event Collector events (`time` in seconds,
 * sourcetype `ocsf`), or a Datadog logs intake array (source `baton`, the event as the message's
 * attributes). Every event carries its sequence number and hash (metadata.sequence, metadata.uid).
 */
export function sinkRequest(kind: SinkKind, credential: string | null, events: readonly OcsfEvent[]): SinkRequest {
  switch (kind) {
    case 'webhook':
      return {
        headers: {
          'Content-Type': 'application/x-ndjson',
          ...(credential === null ? {} : { Authorization: `Bearer ${credential}` }),
        },
        body: events.map((e) => `${JSON.stringify(e)}\n`).join(''),
      };
    case 'splunk':
      return {
        headers: { 'Content-Type': 'application/json', Authorization: `Splunk ${credential ?? ''}` },
        body: events
          .map((e) =>
            JSON.stringify({ time: (e.time as number) / 1000, source: 'baton', sourcetype: 'ocsf', event: e }),
          )
          .join('\n'),
      };
    case 'datadog':
      return {
        headers: { 'Content-Type': 'application/json', 'DD-API-KEY': credential ?? '' },
        body: JSON.stringify(
          events.map((e) => ({
            ddsource: 'baton',
            service: 'baton',
            ddtags: `ocsf_class_uid:${String(e.class_uid)}`,
            message: JSON.stringify(e),
          })),
        ),
      };
  }
}

/** How long a sink waits after its `failures`-th failure in a row: doubling from `baseMs`, at most `maxMs`. */
export function sinkBackoffMs(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
}

/** A batch of a sink's entries: whole lines of its tenant after the cursor, in sequence order. */
export interface SinkBatch {
  readonly lines: readonly (AuditLine & { canonical: string })[];
  /** The log's last sequence number when the batch was read: the sink's lag is measured against it. */
  readonly head: number;
}

/** The sinks, their cursors and leases, as stored (src/adapters/db/audit-sink-store.ts). */
export interface AuditSinkStore {
  list(tenant: string): Promise<StoredSink[]>;
  /** Creates or replaces a sink's configuration (its cursor is kept); true when it was created. */
  put(tenant: string, id: string, config: SinkConfig, by: string): Promise<boolean>;
  /** Removes a sink; false when there was none. */
  remove(tenant: string, id: string): Promise<boolean>;
  /** Takes or renews the lease of every sink due for an attempt whose lease is free, expired or already `holder`'s. */
  claim(holder: string, leaseMs: number): Promise<StoredSink[]>;
  /** The tenant's next entries after `after`, at most `limit`. */
  batch(tenant: string, after: number, limit: number): Promise<SinkBatch>;
  /** Moves the cursor from `from` to `to` and clears the failures, if `holder` still holds the lease and the cursor is still `from`. */
  delivered(sink: StoredSink, holder: string, from: number, to: number): Promise<boolean>;
  /** Counts a failed attempt and sets when the next one may be made. */
  failed(sink: StoredSink, holder: string, error: string, retryInMs: number): Promise<void>;
  /** Gives the lease up (on close), so another instance takes over at once. */
  release(holder: string): Promise<void>;
}

/** What the delivery reports per sink (labelled `tenant/id`). */
export interface SinkMetrics {
  sinkDelivered(sink: string, entries: number, cursor: number): void;
  /** Seconds since the oldest entry not yet delivered was written; 0 when the sink is caught up. */
  sinkLag(sink: string, seconds: number): void;
  sinkRetry(sink: string): void;
  sinkFailure(sink: string): void;
}
