import './v8-flags.js';
import { ConfigError, loadConfig } from './config.js';
import { DetailTypeError } from '../core/authorization-details.js';
import { RegistryError } from '../core/registry.js';
import { PolicySetError } from '../adapters/cedar/cedar-engine.js';
import cluster from 'node:cluster';
import { superviseWorkers } from './cluster.js';
import { startBaton } from './server.js';
import { guardKnownDriverFaults } from './driver-guard.js';
import { jsonLogger } from '../adapters/json-logger.js';
import { batchedStdout } from './log-sink.js';

/** Node entry point: the only place that reads the environment and handles signals. */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = jsonLogger(batchedStdout());
  if (config.workers > 1 && cluster.isPrimary) {
    superviseWorkers(config.workers, logger);
    return;
  }
  guardKnownDriverFaults(logger);
  const baton = await startBaton(config, { logger });
  // SIGHUP re-reads registry and policies; a bad file is logged and the running one stays.
  process.on('SIGHUP', () => {
    baton.reloadRegistry().catch(() => undefined);
    baton.reloadPolicies().catch(() => undefined);
  });
  const stop = (): void => {
    baton.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  const known = error instanceof ConfigError || error instanceof RegistryError || error instanceof PolicySetError || error instanceof DetailTypeError;
  process.stderr.write(`baton: ${known ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
