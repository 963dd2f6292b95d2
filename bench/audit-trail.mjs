// GET /audit/actions/{id} for the audit benchmark (bench/audit.mjs): the requests under load, the
// reader's actionTrail() alone in this process, and the plans of its statements.

import { Buffer } from 'node:buffer';
import { Agent, request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';
import { createAuditReader } from '../dist/adapters/db/audit-reader.js';
import { sha256Hex } from '../dist/adapters/node-hash.js';
import { cpuMeter, host, logTail, messageOf, percentile } from './harness.mjs';

const requestTimeoutMs = 10_000;

/** Sorted latencies: p50, p90, p99 and the longest. */
function latencyFigures(latencies) {
  const sorted = Float64Array.from(latencies).sort();
  return {
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1],
  };
}

/** One HTTP/1.1 GET on loopback; `ms` runs from the call until the whole body is in. */
function httpGet({ port, agent, path, headers }) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = httpRequest({ host, port, path, method: 'GET', agent, headers, timeout: requestTimeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          text: Buffer.concat(chunks).toString('utf8'),
          ms: performance.now() - started,
        }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to GET ${path} within ${requestTimeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Sends `count` GET /audit/actions/{id} for actions `pick()` chooses, on `connections` keep-alive
 * connections, each connection sending its next request when the previous answer is in. Every
 * answer must be 200 with a verified trail that ends with the action's decision. `baton` is the
 * child process (spawnBaton); `databaseName` is the bench database, for the CPU shares.
 */
export async function getTrails({ port, token, pick, count, connections, baton, databaseName }) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const headers = { authorization: `Bearer ${token}` };
  const latencies = new Float64Array(count);
  const trailLengths = new Map();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next;
      next += 1;
      const actionId = pick();
      let response;
      try {
        response = await httpGet({ port, agent, path: `/audit/actions/${encodeURIComponent(actionId)}`, headers });
      } catch (error) {
        throw new Error(
          `GET /audit/actions/${actionId}: ${messageOf(error)}${baton.alive() ? '' : ' (Baton has exited)'}`,
        );
      }
      if (response.status !== 200)
        throw new Error(
          `GET /audit/actions/${actionId}: HTTP ${response.status}: ${response.text.slice(0, 500)}\nBaton's log (warnings and errors):\n${logTail(baton.log, { skipInfo: true })}`,
        );
      const body = JSON.parse(response.text);
      const last = body.entries.at(-1);
      if (
        body.action_id !== actionId ||
        last?.entry.action_id !== actionId ||
        !body.entries.every((e) => e.verified === true)
      ) {
        throw new Error(`GET /audit/actions/${actionId}: unexpected trail ${response.text.slice(0, 500)}`);
      }
      trailLengths.set(body.entries.length, (trailLengths.get(body.entries.length) ?? 0) + 1);
      latencies[i] = response.ms;
    }
  };
  const cpu = cpuMeter(databaseName, { pid: baton.pid, name: 'Baton' });
  const started = performance.now();
  try {
    await Promise.all(Array.from({ length: connections }, worker));
  } finally {
    agent.destroy();
  }
  const elapsed = performance.now() - started;
  return {
    count,
    connections,
    perSecond: (count * 1000) / elapsed,
    ...latencyFigures(latencies),
    trailLengths,
    cpu: cpu.summary(),
  };
}

/** actionTrail() called `count` times in this process, one at a time: the database part of the endpoint, without HTTP and authentication. */
export async function measureTrailQueries({ reader, pick, count, databaseName }) {
  const latencies = new Float64Array(count);
  const cpu = cpuMeter(databaseName);
  for (let i = 0; i < count; i += 1) {
    const started = performance.now();
    const trail = await reader.actionTrail('acme', pick());
    latencies[i] = performance.now() - started;
    if (trail.entries.length === 0) throw new Error('actionTrail found no entries for a sampled action id');
  }
  return { count, ...latencyFigures(latencies), cpu: cpu.summary() };
}

/** A Sql client that remembers every statement it is given, to EXPLAIN them exactly as sent. */
function recordingSql(sql, log) {
  const tag = (strings, ...values) => {
    log.push({ strings, values });
    return sql(strings, ...values);
  };
  tag.script = (text) => sql.script(text);
  tag.begin = (fn) => sql.begin(fn);
  return tag;
}

/**
 * EXPLAIN ANALYZE of the statements actionTrail runs for one action, recorded from the reader
 * itself (so they follow src/), with the generic plan (what a prepared statement may switch to
 * after five runs) and with a custom plan.
 */
export async function explainTrail(sql, raw, actionId) {
  const log = [];
  await createAuditReader(recordingSql(sql, log), sha256Hex).actionTrail('acme', actionId);
  const out = [];
  for (const mode of ['force_generic_plan', 'force_custom_plan']) {
    await raw.begin(async (tx) => {
      await tx.unsafe(`SET LOCAL plan_cache_mode = ${mode}`);
      for (const [i, { strings, values }] of log.entries()) {
        const text =
          strings[0] +
          strings
            .slice(1)
            .map((part, k) => `$${k + 1}${part}`)
            .join('');
        const plan = await tx.unsafe(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, values);
        const summary = text.replace(/\s+/g, ' ').trim();
        out.push(
          `-- query ${i + 1} of ${log.length} (${mode.replace('force_', '').replaceAll('_', ' ')}): ${summary.length > 160 ? `${summary.slice(0, 160)}…` : summary}\n${plan.map((r) => r['QUERY PLAN']).join('\n')}`,
        );
      }
    });
  }
  return out.join('\n\n');
}
