import type { Store } from '../../../src/core/ports.js';
import { key, type MemoryState } from './state.js';

/** The Store port in memory: an assertion id is taken once per tenant and issuer; lineage is what the audit log wrote. */
export function memoryStore(state: MemoryState): Store {
  return {
    async consumeAssertion(use) {
      const id = key(use.tenant, use.issuer, use.jti);
      if (state.usedAssertions.has(id)) return false;
      state.usedAssertions.add(id);
      return true;
    },
    async findToken(tenant, jti) {
      return state.tokens.get(key(tenant, jti));
    },
  };
}
