import { genesisHash } from '../../../src/core/audit/chain.js';
import type { GrantDetail, TokenLineage } from '../../../src/core/ports.js';

/** An audit entry as the PostgreSQL adapter stores it: its columns, its canonical text and its links. */
export interface StoredEntry {
  readonly seq: number;
  readonly tenant: string;
  readonly type: string;
  readonly action_id: string | null;
  readonly jti: string | null;
  readonly root_grant: string | null;
  readonly canonical: string;
  readonly prev_hash: string;
  readonly hash: string;
}

/** A code-flow grant, made with its code and revoked as a whole (migration 9's `grants`). */
export interface StoredGrant {
  readonly tenant: string;
  readonly grantId: string;
  readonly clientId: string;
  readonly subject: string;
  readonly agent: string | null;
  revoked: boolean;
}

/** An authorization code or a refresh token, kept by its hash. */
export interface StoredSecret {
  readonly tenant: string;
  /** The grant (for a refresh token, its family, which is its grant). */
  readonly grantId: string;
  readonly detail: GrantDetail;
  readonly expiresAt: Date;
  used: boolean;
}

/** A sign-in throttle key's row. */
export interface StoredAttempts {
  attempts: number;
  lastAttempt: Date;
  lockedUntil: Date | undefined;
}

/**
 * Everything the in-memory adapters keep, in one place as the PostgreSQL adapters keep it in one
 * database: the audit log writes lineage that the store, the revocations and the audit trail read.
 * Maps are keyed by `key(tenant, id)` where a table's key is scoped by tenant.
 */
export interface MemoryState {
  readonly usedAssertions: Set<string>;
  readonly tokens: Map<string, TokenLineage>;
  readonly revoked: Set<string>;
  readonly grants: Map<string, StoredGrant>;
  readonly codes: Map<string, StoredSecret>;
  readonly refreshTokens: Map<string, StoredSecret>;
  /** The log by sequence number, in sequence order (a test may take an entry out, as a superuser could). */
  readonly entries: Map<number, StoredEntry>;
  /** The chain head, kept apart from the entries as `audit_head` is. */
  head: { seq: number; hash: string };
  readonly checkpoints: { seq: number; hash: string; jws: string }[];
  readonly signInAttempts: Map<string, StoredAttempts>;
  /** The last recorded use (ms) of dynamically registered clients (migration 14's `client_uses`). */
  readonly clientUses: Map<string, number>;
}

/** A key of a table scoped by tenant. */
export const key = (...parts: readonly string[]): string => parts.join('\u0000');

/** An empty state. */
export function memoryState(): MemoryState {
  return {
    usedAssertions: new Set(),
    tokens: new Map(),
    revoked: new Set(),
    grants: new Map(),
    codes: new Map(),
    refreshTokens: new Map(),
    entries: new Map(),
    head: { seq: 0, hash: genesisHash },
    checkpoints: [],
    signInAttempts: new Map(),
    clientUses: new Map(),
  };
}
