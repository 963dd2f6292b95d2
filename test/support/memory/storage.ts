import { sha256Hex } from '../../../src/adapters/node-hash.js';
import type { SaveCheckpoint } from '../../../src/adapters/db/audit-reader.js';
import type { Storage } from '../../../src/adapters/context.js';
import type { AuditLog, AuditQueries, Clock, Revocations } from '../../../src/core/ports.js';
import { memoryAuditLog, memoryAuditQueries } from './audit.js';
import { memoryGrantStore } from './grant-store.js';
import { memoryRevocations } from './revocations.js';
import { memorySignInThrottle } from './sign-in-throttle.js';
import { memoryClientUses } from './client-uses.js';
import { memoryState, type MemoryState } from './state.js';
import { memoryStore } from './store.js';

/** Every storage port in memory, over one state. */
export interface MemoryStorage extends Storage {
  /** What they keep, for a test to read (and to change, as a superuser could change a database). */
  readonly state: MemoryState;
  readonly revocations: Revocations;
  readonly audit: AuditLog;
  readonly queries: AuditQueries & { saveCheckpoint: SaveCheckpoint };
}

/** The storage ports in memory, on a clock of their own (expiry is read from it). */
export function memoryStorage(clock: Clock): MemoryStorage {
  const state = memoryState();
  const now = () => clock.now();
  return {
    state,
    store: memoryStore(state),
    grants: memoryGrantStore(state, now),
    signInThrottle: memorySignInThrottle(state),
    clientUses: memoryClientUses(state),
    revocations: memoryRevocations(state, now),
    audit: memoryAuditLog(state, sha256Hex, clock),
    queries: memoryAuditQueries(state, sha256Hex),
  };
}
