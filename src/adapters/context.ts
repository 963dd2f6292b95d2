import type { DetailTypes } from '../core/tokens/authorization-details.js';
import { endpoints } from '../core/metadata.js';
import type { VerifiedTokens } from '../core/tokens/jwt.js';
import type {
  Clock,
  Logger,
  PolicyEngine,
  SigningKeys,
  Revocations,
  AuditLog,
  RateLimiter,
  Metrics,
} from '../core/ports.js';
import type { Registry } from '../core/registry/registry.js';
import { createGrantStore } from './db/grant-store.js';
import { sha256Hex } from './node-hash.js';
import type { Sql } from './db/sql.js';
import { createSqlStore } from './db/sql-store.js';
import { passwordAuthenticator } from './password-authenticator.js';
import { createSignInThrottle } from './db/sign-in-throttle.js';
import { createClientUseStore } from './db/client-use-store.js';
import type { ServiceContext, Limits } from '../core/context.js';
import type { ClientDocuments } from '../core/clients/metadata-document.js';

/** The durable state behind the token endpoint and the code flow. */
export type Storage = Pick<ServiceContext, 'store' | 'grants' | 'signInThrottle' | 'clientUses'>;

/** The storage ports over SQL, identical on PostgreSQL and PGlite; codes and refresh tokens expire by `clock`. */
export function sqlStorage(sql: Sql, clock: Clock): Storage {
  return {
    store: createSqlStore(sql),
    grants: createGrantStore(sql, () => clock.now()),
    signInThrottle: createSignInThrottle(sql),
    clientUses: createClientUseStore(sql),
  };
}

export interface ContextParts {
  readonly issuer: string;
  readonly storage: Storage;
  readonly keys: SigningKeys;
  readonly registry: () => Registry;
  readonly policy: () => PolicyEngine;
  readonly detailTypes: DetailTypes;
  readonly audit: AuditLog;
  readonly revocations: Revocations;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly limits: Limits;
  /** Kept by the caller so it outlives one context (a Workers context lives one request). */
  readonly rateLimit: RateLimiter;
  /** Kept by the caller, like rateLimit. */
  readonly verifiedTokens: VerifiedTokens;
  /** Client ID metadata documents, where the entry point accepts them. */
  readonly clientDocuments?: ClientDocuments;
}

/** The one context every endpoint works with, from the parts an entry point (Node or Workers) or a test has opened. */
export function buildContext(parts: ContextParts): ServiceContext {
  return {
    issuer: parts.issuer,
    tokenEndpoint: endpoints(parts.issuer).token,
    registry: parts.registry,
    keys: parts.keys,
    store: parts.storage.store,
    grants: parts.storage.grants,
    authenticator: passwordAuthenticator(parts.registry),
    signInThrottle: parts.storage.signInThrottle,
    clientUses: parts.storage.clientUses,
    policy: parts.policy,
    detailTypes: parts.detailTypes,
    audit: parts.audit,
    revocations: parts.revocations,
    metrics: parts.metrics,
    clock: parts.clock,
    sha256: sha256Hex,
    logger: parts.logger,
    limits: parts.limits,
    rateLimit: parts.rateLimit,
    verifiedTokens: parts.verifiedTokens,
    ...(parts.clientDocuments === undefined ? {} : { clientDocuments: parts.clientDocuments }),
  };
}
