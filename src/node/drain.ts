import { Server as NetServer } from 'node:net';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from '../core/ports.js';

export interface DrainOptions {
  /** Longest the drain waits for in-flight requests before it cuts every connection. */
  readonly timeoutMs: number;
  readonly logger: Logger;
}

export interface Drain {
  /** True once the server has stopped accepting: it is on its way out. */
  readonly stopping: boolean;
  /** Accepts no new connection from now on; requests on open connections are served as before. */
  stopAccepting(): void;
  /** Begins the drain (once: later calls get the same promise); resolves when every connection is closed. */
  drain(): Promise<void>;
}

/** After the drain, how long flushing the audit log and closing the database may take. */
const finishMs = 5000;

/** The longest a stop may take, signal to exit: the drain timeout, then the flush. */
export function shutdownBoundMs(drainTimeoutSeconds: number): number {
  return drainTimeoutSeconds * 1000 + finishMs;
}

/**
 * How long a connection idle when the drain begins may still bring its next request. A keep-alive
 * client that was just answered sends its next request within a round trip and a moment of its
 * own; one quiet this long is idle, and closing it then is what any keep-alive timeout does.
 */
const idleGraceMs = 500;

/**
 * Makes `server` stoppable under load, in bounded time, without cutting anyone off before their
 * answer. Once the drain begins it accepts no new connection, answers every request it has or
 * that still comes on an open connection with `Connection: close` (so the client sends no further
 * request on it, and the connection ends with that answer), closes connections that stay idle,
 * and at the deadline cuts whatever is left. Processes that share one listener stop accepting
 * first, all of them, and only then drain (see cluster.ts).
 */
export function drainable(server: Server, options: DrainOptions): Drain {
  const open = new Set<ServerResponse>();
  let draining = false;
  let answered = 0;
  let closed: Promise<void> | undefined;
  let ending: Promise<void> | undefined;
  // First among the listeners: the app may answer synchronously, within its own listener.
  server.prependListener('request', (_request: IncomingMessage, response: ServerResponse) => {
    if (draining) response.setHeader('Connection', 'close');
    open.add(response);
    response.once('close', () => {
      open.delete(response);
      if (draining && response.writableFinished) answered += 1;
    });
  });

  /** Resolves when the last connection has closed. */
  function stopAccepting(): Promise<void> {
    // http.Server's own close() would also close the connections idle at this instant (see drain()).
    closed ??= new Promise((resolve) => NetServer.prototype.close.call(server, () => resolve()));
    return closed;
  }

  function drain(): Promise<void> {
    ending ??= (async () => {
      const connectionsClosed = stopAccepting();
      draining = true;
      const inFlight = open.size;
      for (const response of open) if (!response.headersSent) response.setHeader('Connection', 'close');
      options.logger.info('drain started', { in_flight: inFlight, timeout_seconds: options.timeoutMs / 1000 });
      const started = performance.now();
      let abandoned = 0;
      let deadlineHit = false;
      // A connection idle at this instant may have its next request already waiting, unread, in
      // the kernel; closing it now would answer that request with a reset. Given a moment, the
      // request is read and answered (with Connection: close) like any other.
      const idle = setTimeout(() => server.closeIdleConnections(), Math.min(idleGraceMs, options.timeoutMs));
      const deadline = setTimeout(() => {
        deadlineHit = true;
        abandoned = open.size;
        server.closeAllConnections();
      }, options.timeoutMs);
      await connectionsClosed;
      clearTimeout(idle);
      clearTimeout(deadline);
      // answered: requests in flight and any that came on connections already open; abandoned: those
      // still unanswered at the deadline, whose connections were cut.
      options.logger.info('drain finished', {
        in_flight: inFlight,
        answered,
        abandoned,
        deadline_hit: deadlineHit,
        duration_ms: Math.round(performance.now() - started),
      });
    })();
    return ending;
  }

  return {
    get stopping() {
      return closed !== undefined;
    },
    stopAccepting: () => void stopAccepting(),
    drain,
  };
}
