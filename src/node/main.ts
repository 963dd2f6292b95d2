import './v8-flags.js';
import { ConfigError } from '../config.js';
import { loadConfig } from './config.js';
import { DetailTypeError } from '../core/tokens/authorization-details.js';
import { RegistryError } from '../core/registry/compile.js';
import { PolicySetError } from '../adapters/cedar/cedar-engine.js';
import cluster from 'node:cluster';
import { stopAcceptingTogether, superviseWorkers } from './cluster.js';
import { shutdownBoundMs } from './drain.js';
import { startBaton } from './server.js';
import { guardKnownDriverFaults } from './driver-guard.js';
import { jsonLogger } from '../adapters/json-logger.js';
import { batchedStdout } from './log-sink.js';

/** Node entry point: the only place that reads the environment and handles signals. */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = jsonLogger(batchedStdout());
  if (config.workers > 1 && cluster.isPrimary) {
    superviseWorkers(config.workers, logger, shutdownBoundMs(config.drainTimeoutSeconds));
    return;
  }
  guardKnownDriverFaults(logger);
  const baton = await startBaton(config, { logger });
  // SIGHUP re-reads registry and policies; a bad file is logged and the running one stays.
  process.on('SIGHUP', () => {
    baton.reloadRegistry().catch(() => undefined);
    baton.reloadPolicies().catch(() => undefined);
  });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    // The drain is bounded; flushing the audit log and closing the database wait on the database,
    // which may not answer. Past the bound the process goes anyway: no answered request is
    // lost (its entry committed before the answer), and the non-zero code says the exit was forced.
    setTimeout(() => {
      logger.error('shutdown did not finish in time; exiting', {
        bound_seconds: shutdownBoundMs(config.drainTimeoutSeconds) / 1000,
      });
      process.exit(1);
    }, shutdownBoundMs(config.drainTimeoutSeconds)).unref();
    // Workers share one port: all of them stop accepting before any drains.
    const closing = cluster.isWorker
      ? stopAcceptingTogether(() => baton.stopAccepting()).then(() => baton.close())
      : baton.close();
    closing.then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('shutdown failed', { detail: error instanceof Error ? error.message : String(error) });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  const known =
    error instanceof ConfigError ||
    error instanceof RegistryError ||
    error instanceof PolicySetError ||
    error instanceof DetailTypeError;
  process.stderr.write(
    `baton: ${known ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
