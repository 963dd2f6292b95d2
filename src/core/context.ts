import type { DetailTypes } from './tokens/authorization-details.js';
import type { VerifiedTokens } from './tokens/jwt.js';
import type {
  AuditLog,
  Authenticator,
  ClientUses,
  Clock,
  GrantStore,
  Logger,
  Metrics,
  PolicyEngine,
  RateLimiter,
  Revocations,
  SignInThrottle,
  SigningKeys,
  Store,
} from './ports.js';
import type { Registry } from './registry/registry.js';
import type { ClientDocuments } from './clients/metadata-document.js';
import type { Sha256 } from './sha256.js';

/** Limits a deployment may tune; defaults come from the configuration. */
export interface Limits {
  readonly maxChainLength: number;
  readonly maxTokenLifetimeSeconds: number;
  readonly clockToleranceSeconds: number;
  readonly maxAssertionLifetimeSeconds: number;
  readonly maxAuthorizationDetails: number;
  readonly maxTokenBytes: number;
  readonly codeLifetimeSeconds: number;
  readonly refreshTokenLifetimeSeconds: number;
  /** The longest an ephemeral sub-agent registered by an orchestrator may live. */
  readonly maxSubAgentLifetimeSeconds: number;
}

/**
 * Everything the core works with, built once by an entry point from its configuration and the
 * adapters it opened (Node or Workers), or by a test from in-memory ones.
 */
export interface ServiceContext {
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly registry: () => Registry;
  readonly keys: SigningKeys;
  readonly store: Store;
  readonly grants: GrantStore;
  readonly authenticator: Authenticator;
  readonly signInThrottle: SignInThrottle;
  /** When dynamically registered clients were last used. */
  readonly clientUses: ClientUses;
  readonly policy: () => PolicyEngine;
  /** The `authorization_details` types this deployment accepts. */
  readonly detailTypes: DetailTypes;
  readonly audit: AuditLog;
  readonly revocations: Revocations;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly sha256: Sha256;
  readonly logger: Logger;
  readonly limits: Limits;
  readonly rateLimit: RateLimiter;
  /** Tokens whose signature was already checked; kept by the entry point so it outlives a Workers request. */
  readonly verifiedTokens: VerifiedTokens;
  /** Client ID metadata documents; undefined where this entry point does not accept them (Workers). */
  readonly clientDocuments?: ClientDocuments;
}
