import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Metrics } from '../core/ports.js';
import type { SinkMetrics } from '../core/audit/sinks.js';

/** Prometheus metrics in a registry of their own, with Node's process metrics. */
export function prometheusMetrics(signing: {
  kid: string;
  alg: string;
}): Metrics & SinkMetrics & { readonly contentType: string; text(): Promise<string> } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'baton_' });
  const requests = new Counter({
    name: 'baton_http_requests_total',
    help: 'HTTP requests by route, method and status.',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'baton_http_request_duration_seconds',
    help: 'HTTP request latency by route.',
    labelNames: ['route', 'method'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const grants = new Counter({
    name: 'baton_token_requests_total',
    help: 'Token endpoint requests by grant type, outcome and reason class.',
    labelNames: ['grant_type', 'outcome', 'reason'],
    registers: [registry],
  });
  const decisions = new Counter({
    name: 'baton_decisions_total',
    help: 'Decisions by API, outcome and reason class.',
    labelNames: ['api', 'outcome', 'reason'],
    registers: [registry],
  });
  const revocations = new Counter({
    name: 'baton_revoked_tokens_total',
    help: 'Tokens revoked, cascades included.',
    registers: [registry],
  });
  const revocationCalls = new Counter({
    name: 'baton_revocations_total',
    help: 'Revocation requests and kill switches applied.',
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: 'baton_audit_batch_size',
    help: 'Entries committed per audit transaction.',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [registry],
  });
  const appendLatency = new Histogram({
    name: 'baton_audit_append_duration_seconds',
    help: 'Duration of an audit commit.',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const reloads = new Counter({
    name: 'baton_reloads_total',
    help: 'Policy and registry reloads by outcome.',
    labelNames: ['what', 'outcome'],
    registers: [registry],
  });
  const key = new Gauge({
    name: 'baton_signing_key_info',
    help: 'The signing key in use.',
    labelNames: ['kid', 'alg'],
    registers: [registry],
  });
  key.set({ kid: signing.kid, alg: signing.alg }, 1);
  const sinkDelivered = new Counter({
    name: 'baton_audit_sink_delivered_total',
    help: 'Audit entries accepted by each sink (tenant/id).',
    labelNames: ['sink'],
    registers: [registry],
  });
  const sinkCursor = new Gauge({
    name: 'baton_audit_sink_cursor',
    help: 'The sequence number up to which each sink (tenant/id) has every entry of its tenant.',
    labelNames: ['sink'],
    registers: [registry],
  });
  const sinkLag = new Gauge({
    name: 'baton_audit_sink_lag_seconds',
    help: 'Age of the oldest entry a sink (tenant/id) has not accepted yet; 0 when caught up.',
    labelNames: ['sink'],
    registers: [registry],
  });
  const sinkRetries = new Counter({
    name: 'baton_audit_sink_retries_total',
    help: 'Deliveries to a sink (tenant/id) tried again after a failure.',
    labelNames: ['sink'],
    registers: [registry],
  });
  const sinkFailures = new Counter({
    name: 'baton_audit_sink_failures_total',
    help: 'Failed deliveries to a sink (tenant/id): refused, unreachable or too slow.',
    labelNames: ['sink'],
    registers: [registry],
  });
  return {
    contentType: registry.contentType,
    text: () => registry.metrics(),
    request(route, method, status, seconds) {
      requests.inc({ route, method, status: String(status) });
      latency.observe({ route, method }, seconds);
    },
    grant: (grantType, outcome, reason) => grants.inc({ grant_type: grantType, outcome, reason }),
    decision: (api, outcome, reason) => decisions.inc({ api, outcome, reason }),
    revocation(tokens) {
      revocationCalls.inc();
      revocations.inc(tokens);
    },
    auditBatch(size, seconds) {
      batchSize.observe(size);
      appendLatency.observe(seconds);
    },
    reload: (what, outcome) => reloads.inc({ what, outcome }),
    sinkDelivered(sink, entries, cursor) {
      sinkDelivered.inc({ sink }, entries);
      sinkCursor.set({ sink }, cursor);
    },
    sinkLag: (sink, seconds) => sinkLag.set({ sink }, seconds),
    sinkRetry: (sink) => sinkRetries.inc({ sink }),
    sinkFailure: (sink) => sinkFailures.inc({ sink }),
  };
}
