import type { Logger } from '../core/ports.js';

/**
 * postgres.js 3.4.x can throw from a setImmediate callback after a connection closed under it
 * ("Cannot read properties of null (reading 'write')" in connection.js nextWrite; upstream
 * porsager/postgres#1154, fix proposed in #1168). Nothing can catch it, and it would end the
 * process, although the query it belonged to has already failed and been answered with 503.
 */
export function isKnownDriverFault(error: unknown): boolean {
  // Also matches the serialized form a test runner passes on (an object, not a TypeError).
  const { name, message, stack } = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: unknown;
    message?: unknown;
    stack?: unknown;
  };
  return (
    name === 'TypeError' &&
    message === "Cannot read properties of null (reading 'write')" &&
    typeof stack === 'string' &&
    /postgres[\\/]src[\\/]connection\.js/.test(stack) &&
    /nextWrite/.test(stack)
  );
}

const connectionErrors = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);

/** A rejection the driver left unobserved because the connection was lost; the query it belonged to was answered with 503. */
export function isLostConnection(reason: unknown): boolean {
  const code = (typeof reason === 'object' && reason !== null ? (reason as { code?: unknown }).code : undefined) as
    string | undefined;
  return code !== undefined && connectionErrors.has(code);
}

/** Logs and survives exactly those driver faults; anything else still ends the process. */
export function guardKnownDriverFaults(logger: Logger): void {
  process.on('unhandledRejection', (reason) => {
    if (isLostConnection(reason)) {
      logger.warn('database connection lost; the affected query already failed', {
        detail: String((reason as { code: string }).code),
      });
      return;
    }
    logger.error('unhandled rejection', {
      detail: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason),
    });
    process.exit(1);
  });
  process.on('uncaughtException', (error) => {
    if (isKnownDriverFault(error)) {
      logger.warn('database driver fault after a lost connection; the affected query already failed', {
        detail: error.message,
      });
      return;
    }
    logger.error('uncaught exception', {
      detail: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    process.exit(1);
  });
}
