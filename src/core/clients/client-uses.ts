import type { ServiceContext } from '../context.js';
import type { ClientUses } from '../ports.js';
import type { Caller } from '../registry/registry.js';

/** How often a client's use is recorded at most: the expiry of unused clients counts in days, so an hour is exact enough. */
export const useRecordIntervalMs = 3_600_000;

/** How many clients a process remembers recording; past that it forgets them all and records each once more. */
const rememberedClients = 10_000;

/**
 * Wraps a ClientUses so that a process records each client's use at most once per
 * `useRecordIntervalMs`, without a query in between: the token endpoint calls `note` on every
 * token a dynamically registered client obtains.
 */
export function throttledClientUses(uses: ClientUses): ClientUses {
  const recorded = new Map<string, number>();
  return {
    async note(clientId, at) {
      const last = recorded.get(clientId);
      if (last !== undefined && at - last < useRecordIntervalMs && at >= last) return;
      if (recorded.size >= rememberedClients) recorded.clear();
      recorded.set(clientId, at);
      try {
        await uses.note(clientId, at);
      } catch (error) {
        // Not recorded: the next use tries again.
        recorded.delete(clientId);
        throw error;
      }
    },
    lastUsed: () => uses.lastUsed(),
    async forget(clientIds) {
      for (const id of clientIds) recorded.delete(id);
      await uses.forget(clientIds);
    },
  };
}

/**
 * Records a use of a dynamically registered client (at the token endpoint), cheaply: at most
 * once an hour per client and process. A failure to record never fails the request; it is logged.
 */
export async function noteClientUse(ctx: ServiceContext, caller: Caller): Promise<void> {
  if (caller.registeredAt === undefined) return;
  try {
    await ctx.clientUses.note(caller.id, ctx.clock.now());
  } catch (error) {
    ctx.logger.warn('recording the use of a registered client failed', {
      client: caller.id,
      detail: error instanceof Error ? error.message : String(error),
    });
  }
}
