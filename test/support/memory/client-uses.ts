import { throttledClientUses } from '../../../src/core/clients/client-uses.js';
import type { ClientUses } from '../../../src/core/ports.js';
import type { MemoryState } from './state.js';

/** The last use of dynamically registered clients in memory, written as the SQL store writes it. */
export function memoryClientUses(state: MemoryState): ClientUses {
  return throttledClientUses({
    note: async (clientId, at) => {
      const last = state.clientUses.get(clientId);
      if (last === undefined || last < at - 3_600_000) state.clientUses.set(clientId, at);
    },
    lastUsed: async () => new Map(state.clientUses),
    forget: async (clientIds) => {
      for (const id of clientIds) state.clientUses.delete(id);
    },
  });
}
