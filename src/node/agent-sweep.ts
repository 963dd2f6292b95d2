import type { ServiceContext } from '../core/context.js';
import { sweepExpiredAgents } from '../core/registry/sub-agents.js';
import type { RegistryStore } from '../core/registry/store.js';
import { sweepUnusedClients } from '../core/registry/unused-clients.js';

/**
 * Removes expired agents, and dynamically registered clients left unused, from the stored registry
 * every `intervalSeconds`. Each instance runs one; edits are serialized, so the first to run after
 * an expiry removes the agent or client and audits it, and the others find nothing left. An agent
 * is refused from its expiry on whether or not the sweep has run: this only keeps the registry tidy.
 */
export function startAgentSweep(
  service: ServiceContext,
  store: RegistryStore,
  intervalSeconds: number,
): { stop(): void } {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweepExpiredAgents(service, store)
      .then(async (removed) => {
        if (removed > 0) service.logger.info('expired agents removed from the registry', { removed });
        const unused = await sweepUnusedClients(service, store);
        if (unused > 0) service.logger.info('unused registered clients removed from the registry', { removed: unused });
      })
      .catch((error: unknown) =>
        service.logger.warn('sweep of expired agents failed; will retry', {
          detail: error instanceof Error ? error.message : String(error),
        }),
      )
      .finally(() => {
        running = false;
      });
  }, intervalSeconds * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
