import type { Logger } from '../core/ports.js';

/**
 * postgres.js 3.4.x can throw from a setImmediate callback after a connection closed under it
 * ("Cannot read properties of null (reading 'write')" in connection.js nextWrite; upstream
 * porsager/postgres#1154, fix proposed in #1168). Nothing can catch it, and it would end the
 * process, although the query it belonged to has already failed and been answered with 503.
 */
export function isKnownDriverFault(error: unknown): boolean {
  return (
    error instanceof TypeError &&
    error.message === "Cannot read properties of null (reading 'write')" &&
    /postgres[\\/]src[\\/]connection\.js/.test(error.stack ?? '') &&
    /nextWrite/.test(error.stack ?? '')
  );
}

/** Logs and survives exactly that driver fault; anything else still ends the process. */
export function guardKnownDriverFaults(logger: Logger): void {
  process.on('uncaughtException', (error) => {
    if (isKnownDriverFault(error)) {
      logger.warn('database driver fault after a lost connection; the affected query already failed', { detail: error.message });
      return;
    }
    logger.error('uncaught exception', { detail: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(1);
  });
}
