// One load run with autocannon, shared by every HTTP benchmark: a constant POST, closed loop or
// at a fixed rate, latencies from each 2xx answer's own time, and the server's CPU meanwhile.

import autocannon from 'autocannon';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeExit, machineBusyMs, processCpuMs } from './harness.mjs';

/** Nearest-rank percentile of sorted values. */
export const percentile = (sorted, q) => (sorted.length === 0 ? NaN : sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]);

/**
 * Sends `target.body` to `target.url` + `target.path` for `duration` seconds or `amount`
 * requests, on `connections` connections, as fast as answered or at `rate` requests/s overall.
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
          body: target.body,
          onResponse: (status, body) => {
            if (status < 200 || status > 299) firstFailure ??= `HTTP ${status}: ${body}`;
            else {
              const problem = check?.(body);
              if (problem !== undefined) {
                wrong++;
                firstFailure ??= problem;
              }
            }
          },
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
    // autocannon meters a rate per connection and per wall-clock second: each connection sends
    // back to back until its share of the second is used, and all connections share one tick.
    // With one instance the load would be a burst of `connections` concurrent requests at the top
    // of every second, then silence, and p99 would measure the burst. So each connection gets its
    // own instance, started 1/n s after the previous one, which spreads the bursts over the second.
    const n = Math.min(connections, rate);
    const share = (i) => Math.floor(rate / n) + (i < rate % n ? 1 : 0);
    results = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        await sleep((i * 1000) / n);
        return died === undefined ? await start({ connections: 1, duration, overallRate: share(i) }) : undefined;
      }),
    );
    results = results.filter((r) => r !== undefined);
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
