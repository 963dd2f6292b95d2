// One load run with autocannon, shared by every HTTP benchmark: a POST (constant, or built per
// request), closed loop or at a fixed rate, latencies from each 2xx answer's own time, and the server's CPU meanwhile.

import autocannon from 'autocannon';
import { Buffer } from 'node:buffer';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { URL } from 'node:url';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeExit, machineBusyMs, messageOf, percentile, processCpuMs } from './harness.mjs';

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
          ...(typeof target.body === 'function'
            ? { setupRequest: (request) => ({ ...request, body: target.body() }) }
            : { body: target.body }),
          onResponse: checkBody,
        },
      ],
    });
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status <= 299) latencies.push(ms);
    });
    instance.on('reqError', (error) => {
      firstFailure ??= `request error: ${messageOf(error)}`;
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
    // autocannon counts answers per sample and stops only at the end of a sample: a run of `amount`
    // requests (a warm-up) samples every 100 ms rather than every second, so it ends soon after its
    // last answer instead of at the next whole second, and so does a run shorter than a second.
    const sampleInt = amount !== undefined ? 100 : Math.min(1000, duration * 1000);
    const result = await start({ connections, sampleInt, ...(amount === undefined ? { duration } : { amount }) });
    results = [{ ...result, requests: { ...result.requests, mean: (result.requests.mean * 1000) / sampleInt } }];
  } else {
    results = [
      await paced(target, {
        connections,
        duration,
        rate,
        latencies,
        check: checkBody,
        stopped: () => died !== undefined,
      }),
    ];
  }
  const elapsedMs = performance.now() - started;
  const cpuAfter = target.pid === undefined ? undefined : processCpuMs(target.pid);
  const harness = process.cpuUsage(harnessBefore);
  const machineCores = (machineBusyMs() - machineBefore) / elapsedMs;

  latencies.sort((a, b) => a - b);
  const sum = (pick) => results.reduce((total, r) => total + pick(r), 0);
  // A request that got no 2xx: another status, a socket error or a timeout.
  const failed = sum((r) => r.non2xx + r.errors + r.timeouts) + (died === undefined ? 0 : 1);
  if (died !== undefined)
    firstFailure = `${target.label ?? 'the server'} exited during the run (${describeExit(died)})${firstFailure === undefined ? '' : `; clients saw: ${firstFailure}`}`;
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
 * HTTP/1.1 keep-alive connections for the open-loop runs: one request at a time per connection,
 * each answer read by its Content-Length, requests waiting in order for a free connection. Node's
 * http client costs several times more CPU per request, and on a 2-core machine the load
 * generator's CPU is taken from the server. An answer without Content-Length (chunked) or a
 * malformed one fails that request and closes its connection; a connection the server closes
 * fails only the request on it, if any.
 */
function connectionPool(url, connections, timeoutMs) {
  const waiting = [];
  const idle = [];
  const all = new Set();
  let closed = false;

  function open() {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    socket.setNoDelay(true);
    const connection = { socket, current: undefined, buffered: Buffer.alloc(0), timer: undefined };
    all.add(connection);
    const finish = (answer) => {
      const { current } = connection;
      if (current === undefined) return;
      clearTimeout(connection.timer);
      connection.current = undefined;
      current.done(answer);
    };
    const fail = (error) => {
      finish({ status: 0, body: '', error });
      all.delete(connection);
      const parked = idle.indexOf(connection);
      if (parked !== -1) idle.splice(parked, 1);
      socket.destroy();
      if (!closed) dispatch();
    };
    socket.on('data', (chunk) => {
      connection.buffered = connection.buffered.length === 0 ? chunk : Buffer.concat([connection.buffered, chunk]);
      const end = connection.buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = connection.buffered.subarray(0, end).toString('latin1');
      const status = Number(head.slice(9, 12));
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (!head.startsWith('HTTP/1.1 ') || Number.isNaN(status) || length === null)
        return fail(new Error(`unreadable answer: ${head.split('\r\n')[0]}`));
      const total = end + 4 + Number(length[1]);
      if (connection.buffered.length < total) return;
      const body = connection.buffered.subarray(end + 4, total).toString('utf8');
      connection.buffered = connection.buffered.subarray(total);
      finish({ status, body });
      next(connection);
    });
    socket.on('error', (error) => fail(error));
    socket.on('close', () => fail(new Error('connection closed')));
    return connection;
  }

  function send(connection, item) {
    connection.current = item;
    connection.timer = setTimeout(() => {
      const { current } = connection;
      connection.current = undefined;
      current?.done({ status: 0, body: '', timedOut: true });
      all.delete(connection);
      connection.socket.destroy();
      if (!closed) dispatch();
    }, timeoutMs);
    connection.socket.write(item.bytes);
  }

  function next(connection) {
    const item = waiting.shift();
    if (item === undefined) idle.push(connection);
    else send(connection, item);
  }

  function dispatch() {
    while (waiting.length > 0) {
      // Oldest idle first, so no connection sits idle long enough for the server to close it.
      const connection = idle.shift() ?? (all.size < connections ? open() : undefined);
      if (connection === undefined) return;
      send(connection, waiting.shift());
    }
  }

  return {
    /** Opens every connection before the clock starts, as a client that holds its connections would have them. */
    async connectAll() {
      const opening = [];
      while (all.size < connections) {
        const { socket } = open();
        opening.push(new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject)));
      }
      await Promise.all(opening);
      idle.push(...all);
    },
    /** Sends raw request bytes; resolves with { status, body } or { status: 0, error | timedOut }. */
    request(bytes) {
      return new Promise((done) => {
        waiting.push({ bytes, done });
        dispatch();
      });
    },
    close() {
      closed = true;
      for (const connection of all) connection.socket.destroy();
    },
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
  const url = new URL(target.path, target.url);
  const pool = connectionPool(url, connections, 10_000);
  await pool.connectAll();
  const head = `POST ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n${Object.entries(
    target.headers ?? {},
  )
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}`;
  const bodyOf = typeof target.body === 'function' ? target.body : () => target.body;
  const count = Math.round(rate * duration);
  const interval = 1000 / rate;
  const answers = [];
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  const send = async (due) => {
    const body = bodyOf();
    const answer = await pool.request(Buffer.from(`${head}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`));
    if (answer.status >= 200 && answer.status <= 299) latencies.push(performance.now() - due);
    else if (answer.timedOut) timeouts++;
    else if (answer.status === 0) errors++;
    else non2xx++;
    check(
      answer.status,
      answer.status === 0 ? `request error: ${answer.timedOut ? 'timeout' : answer.error.message}` : answer.body,
    );
  };
  const started = performance.now();
  let sent = 0;
  while (sent < count && !stopped()) {
    const due = Math.min(count, Math.floor((performance.now() - started) / interval) + 1);
    for (; sent < due; sent++) answers.push(send(started + sent * interval));
    await sleep(1);
  }
  await Promise.all(answers);
  const seconds = (performance.now() - started) / 1000;
  pool.close();
  const total = answers.length;
  // The shape autocannon reports, so closed and open loop runs read the same.
  return { requests: { mean: (total - non2xx - errors - timeouts) / seconds, total }, non2xx, errors, timeouts };
}
