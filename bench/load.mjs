// One load run with autocannon, shared by every HTTP benchmark: a POST (constant, or built per
// request), closed loop or at a fixed rate, latencies from each 2xx answer's own time, and the server's CPU meanwhile.

import autocannon from 'autocannon';
import { Buffer } from 'node:buffer';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { URL } from 'node:url';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeExit, machineBusyMs, processCpuMs } from './harness.mjs';

/** Nearest-rank percentile of sorted values. */
export const percentile = (sorted, q) => (sorted.length === 0 ? NaN : sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]);

/**
 * Sends `target.body` (a string, or a function returning each request's body) to `target.url` +
 * `target.path` for `duration` seconds or `amount` requests, on `connections` connections: as fast as answered (autocannon, closed loop), or at
 * `rate` requests/s overall, evenly spaced (open loop, see `paced`).
 * `target.exited` (a promise) stops the run if the server dies; `target.pid` gives its CPU time;
 * `check(body)` may name what is wrong with a 2xx body (counted in `wrong`). Latency percentiles
 * come from each 2xx response's own time: autocannon's histogram keeps whole milliseconds, and
 * with a rate it adds synthetic samples (coordinated-omission correction) that would blur p50/p99.
 */
export async function loadRun(target, { connections, duration, rate, amount, check }) {
  const latencies = [];
  let firstFailure;
  let wrong = 0;
  // If the server dies mid-run, every further request fails at once: stop rather than count them for the rest of the run.
  const instances = [];
  let died;
  void target.exited.then((status) => {
    died = status;
    for (const instance of instances) instance.stop();
  });
  /** Counts a 2xx whose body `check` finds wrong, and keeps the first failure of any kind. */
  const checkBody = (status, body) => {
    if (status < 200 || status > 299) firstFailure ??= `HTTP ${status}: ${body}`;
    else {
      const problem = check?.(body);
      if (problem !== undefined) {
        wrong++;
        firstFailure ??= problem;
      }
    }
  };
  const start = (settings) => {
    const instance = autocannon({
      url: target.url,
      timeout: 10,
      ...settings,
      requests: [
        {
          method: 'POST',
          path: target.path,
          headers: target.headers,
          ...(typeof target.body === 'function' ? { setupRequest: (request) => ({ ...request, body: target.body() }) } : { body: target.body }),
          onResponse: checkBody,
        },
      ],
    });
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status <= 299) latencies.push(ms);
    });
    instance.on('reqError', (error) => {
      firstFailure ??= `request error: ${error instanceof Error ? error.message : String(error)}`;
    });
    instances.push(instance);
    return instance;
  };

  const cpuBefore = target.pid === undefined ? undefined : processCpuMs(target.pid);
  const harnessBefore = process.cpuUsage();
  const machineBefore = machineBusyMs();
  const started = performance.now();
  let results;
  if (rate === undefined) {
    results = [await start({ connections, ...(amount === undefined ? { duration } : { amount }) })];
  } else {
    results = [await paced(target, { connections, duration, rate, latencies, check: checkBody, stopped: () => died !== undefined })];
  }
  const elapsedMs = performance.now() - started;
  const cpuAfter = target.pid === undefined ? undefined : processCpuMs(target.pid);
  const harness = process.cpuUsage(harnessBefore);
  const machineCores = (machineBusyMs() - machineBefore) / elapsedMs;

  latencies.sort((a, b) => a - b);
  const sum = (pick) => results.reduce((total, r) => total + pick(r), 0);
  // A request that got no 2xx: another status, a socket error or a timeout.
  const failed = sum((r) => r.non2xx + r.errors + r.timeouts) + (died === undefined ? 0 : 1);
  if (died !== undefined) firstFailure = `${target.label ?? 'the server'} exited during the run (${describeExit(died)})${firstFailure === undefined ? '' : `; clients saw: ${firstFailure}`}`;
  else if (failed > 0) firstFailure ??= `${sum((r) => r.errors)} socket errors, ${sum((r) => r.timeouts)} timeouts`;
  const total = sum((r) => r.requests.total);
  const cpuMs = cpuBefore === undefined || cpuAfter === undefined ? NaN : cpuAfter - cpuBefore;
  return {
    // Each instance's mean of its per-second counts; together, the overall rate.
    requestsPerSecond: sum((r) => r.requests.mean),
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    total,
    failed,
    wrong,
    firstFailure,
    // The server's CPU time per answered request (less sensitive to other work on the machine
    // than the rate), and the shares of a core the server, this process and the machine used.
    serverCpuUs: total === 0 ? NaN : (cpuMs * 1000) / total,
    serverCores: cpuMs / elapsedMs,
    harnessCores: (harness.user + harness.system) / 1000 / elapsedMs,
    machineCores,
  };
}

/**
 * Open loop at a fixed rate: request i is due at start + i/rate, whether or not earlier ones have
 * been answered, over at most `connections` keep-alive connections (further requests wait for a
 * free one, as a real client's would). Latency runs from when a request was due, so time spent
 * waiting behind a slow answer counts (no coordinated omission). autocannon's own rate limit sends
 * each connection's share of a second back to back at the top of the second, which measures
 * bursts rather than the rate.
 */
async function paced(target, { connections, duration, rate, latencies, check, stopped }) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const url = new URL(target.path, target.url);
  const bodyOf = typeof target.body === 'function' ? target.body : () => target.body;
  const count = Math.round(rate * duration);
  const interval = 1000 / rate;
  const answers = [];
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  const send = (due) =>
    new Promise((resolve) => {
      const body = bodyOf();
      const headers = { ...target.headers, 'content-length': String(Buffer.byteLength(body)) };
      const req = request(url, { method: 'POST', agent, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => {
          const ok = res.statusCode >= 200 && res.statusCode <= 299;
          if (ok) latencies.push(performance.now() - due);
          else non2xx++;
          check(res.statusCode, body);
          resolve();
        });
      });
      req.setTimeout(10_000, () => {
        timeouts++;
        req.destroy(new Error('timeout'));
      });
      req.on('error', (error) => {
        if (error.message !== 'timeout') errors++;
        check(0, `request error: ${error.message}`);
        resolve();
      });
      req.end(body);
    });
  const started = performance.now();
  let sent = 0;
  while (sent < count && !stopped()) {
    const due = Math.min(count, Math.floor((performance.now() - started) / interval) + 1);
    for (; sent < due; sent++) answers.push(send(started + sent * interval));
    await sleep(1);
  }
  await Promise.all(answers);
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  const total = answers.length;
  // The shape autocannon reports, so closed and open loop runs read the same.
  return { requests: { mean: (total - non2xx - errors - timeouts) / seconds, total }, non2xx, errors, timeouts };
}
