import cluster from 'node:cluster';
import type { Logger } from '../core/ports.js';

/** What a worker tells the primary once it accepts no new connection. */
const listenerClosed = { baton: 'listener-closed' } as const;
/** What the primary answers once no worker accepts any: drain now. */
const drainNow = { baton: 'drain' } as const;

const isMessage = (message: unknown, expected: { readonly baton: string }): boolean =>
  typeof message === 'object' && message !== null && (message as { baton?: unknown }).baton === expected.baton;

/**
 * Runs `count` Baton processes on this machine behind one listening port (node:cluster): each is
 * a full instance on the shared PostgreSQL, as several hosts would be. SIGHUP is passed on to
 * every worker; SIGTERM or SIGINT drains and stops them all, and a worker still there after
 * `boundMs` (its own bound, plus a second) is killed. A worker that exits on its own (a start-up
 * error, a crash) stops the rest, and this process exits non-zero for the supervisor above
 * (systemd, Kubernetes) to act on, rather than restarting in a loop here.
 *
 * The workers stop accepting before any of them drains (see `stopAcceptingTogether`): the port
 * is this process's, which hands each new connection to a worker, and one handed to a worker as
 * the last of them stops listening is left with nobody to serve it and reset.
 */
export function superviseWorkers(count: number, logger: Logger, boundMs: number): void {
  let stopping = false;
  let released = false;
  const live = new Set<number>();
  const notAccepting = new Set<number>();
  const releaseWhenAllClosed = (): void => {
    if (released || !stopping || ![...live].every((id) => notAccepting.has(id))) return;
    released = true;
    for (const worker of Object.values(cluster.workers ?? {})) if (worker?.isConnected()) worker.send(drainNow);
  };
  const stopAll = (code: number): void => {
    if (!stopping) {
      stopping = true;
      process.exitCode = code;
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
      // A worker bounds its own stop; one that cannot (its event loop stuck) must not hold the rest.
      setTimeout(() => {
        logger.error('workers did not stop in time; killing them', { workers: live.size });
        for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
        process.exit(1);
      }, boundMs + 1000).unref();
      releaseWhenAllClosed();
    }
    if (live.size === 0) process.exit(code);
  };
  cluster.on('message', (worker, message: unknown) => {
    if (!isMessage(message, listenerClosed)) return;
    // One worker stopped alone (someone signalled it): nobody else to wait for.
    if (!stopping) worker.send(drainNow);
    notAccepting.add(worker.id);
    releaseWhenAllClosed();
  });
  cluster.on('exit', (worker, code, signal) => {
    live.delete(worker.id);
    if (!stopping) {
      logger.error('worker exited; stopping the others', { worker: worker.id, code, signal });
      stopAll(1);
    } else {
      // A worker that had to force its exit (see main.ts) makes this one non-zero as well.
      if (code !== 0) process.exitCode = 1;
      if (live.size === 0) process.exit(process.exitCode ?? 0);
      releaseWhenAllClosed();
    }
  });
  for (let i = 0; i < count; i++) live.add(cluster.fork().id);
  logger.info('workers started', { workers: count });
  process.on('SIGHUP', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
  });
  process.once('SIGTERM', () => stopAll(0));
  process.once('SIGINT', () => stopAll(0));
}

/**
 * In a worker: stops accepting, tells the primary, and resolves once the primary says that no
 * worker accepts any more (or is gone), so that no client told to close reconnects to a worker.
 */
export function stopAcceptingTogether(stopAccepting: () => void): Promise<void> {
  stopAccepting();
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('message', onMessage);
      process.off('disconnect', done);
      resolve();
    };
    const onMessage = (message: unknown): void => {
      if (isMessage(message, drainNow)) done();
    };
    process.on('message', onMessage);
    process.once('disconnect', done);
    process.send?.(listenerClosed);
  });
}
