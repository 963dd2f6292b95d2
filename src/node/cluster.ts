import cluster from 'node:cluster';
import type { Logger } from '../core/ports.js';

/**
 * Runs `count` Baton processes on this machine behind one listening port (node:cluster): each is
 * a full instance on the shared PostgreSQL, as several hosts would be. SIGHUP is passed on to
 * every worker; SIGTERM or SIGINT stops them all. A worker that exits on its own (a start-up
 * error, a crash) stops the rest, and this process exits non-zero for the supervisor above
 * (systemd, Kubernetes) to act on, rather than restarting in a loop here.
 */
export function superviseWorkers(count: number, logger: Logger): void {
  let stopping = false;
  const live = new Set<number>();
  const stopAll = (code: number): void => {
    if (!stopping) {
      stopping = true;
      process.exitCode = code;
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    }
    if (live.size === 0) process.exit(code);
  };
  cluster.on('exit', (worker, code, signal) => {
    live.delete(worker.id);
    if (!stopping) {
      logger.error('worker exited; stopping the others', { worker: worker.id, code, signal });
      stopAll(1);
    } else if (live.size === 0) process.exit(process.exitCode ?? 0);
  });
  for (let i = 0; i < count; i++) live.add(cluster.fork().id);
  logger.info('workers started', { workers: count });
  process.on('SIGHUP', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
  });
  process.once('SIGTERM', () => stopAll(0));
  process.once('SIGINT', () => stopAll(0));
}
