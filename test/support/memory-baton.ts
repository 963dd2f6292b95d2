import type { JWTPayload } from 'jose';
import { buildContext } from '../../src/adapters/context.js';
import { nodeSigner } from '../../src/adapters/node-signer.js';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { prometheusMetrics } from '../../src/adapters/prometheus.js';
import { generateSigningKeys, importSigningKeys, type PrivateJwks } from '../../src/adapters/signing-keys.js';
import { systemClock } from '../../src/adapters/system-clock.js';
import { createRefusalTally } from '../../src/core/audit/refusal-tally.js';
import { createRateLimiter } from '../../src/core/clients/rate-limit.js';
import type { ServiceContext } from '../../src/core/context.js';
import type { Clock, DocumentFetcher, SigningKeys } from '../../src/core/ports.js';
import { nodeDocumentFetcher } from '../../src/adapters/node-document-fetcher.js';
import { createClientDocuments } from '../../src/core/clients/metadata-document.js';
import { VerifiedTokens } from '../../src/core/tokens/jwt.js';
import { createApp } from '../../src/http/app.js';
import { startCheckpoints } from '../../src/node/checkpoints.js';
import type { Config } from '../../src/config.js';
import { loadConfig } from '../../src/node/config.js';
import { loadDetailTypes } from '../../src/node/files.js';
import {
  auditedReloads,
  loadRegistryAndPolicies,
  readRegistryFile,
  type Reloads,
} from '../../src/node/registry-and-policies.js';
import { memoryRegistryStore, type MemoryRegistryStore } from './memory/registry-store.js';
import { startPolicyVersions, type PolicyVersions } from '../../src/node/policy-versions.js';
import type { PolicyChange } from '../../src/core/decisions/policy-set.js';
import { memoryPolicyStore } from './memory/policy-store.js';
import { batonSigner, captureLogger, type CapturedLogger, type Fetch } from './baton.js';
import { memoryStorage, type MemoryStorage } from './memory/storage.js';

/** A Baton with no socket and no database: requests go to its app, its state stays in memory. */
export interface MemoryBaton {
  /** The issuer, which requests are addressed to (nothing listens there). */
  readonly url: string;
  readonly issuer: string;
  /** Answers a request through the app (`app.request()`), as the global fetch would over a socket. */
  readonly fetch: Fetch;
  readonly service: ServiceContext;
  /** What it keeps: the audit log, the token lineage, revocations, grants. */
  readonly storage: MemoryStorage;
  readonly signingJwks: PrivateJwks;
  /** The keys that sign its audit checkpoints. */
  readonly auditJwks: PrivateJwks;
  readonly logger: CapturedLogger;
  /** The registry store the admin API edits. */
  readonly registryStore: MemoryRegistryStore;
  /** The audit log's entries after sequence number `after` (all by default), as stored (canonical JSON parsed), in sequence order. */
  auditEntries(after?: number): Record<string, unknown>[];
  /** Signs arbitrary claims with Baton's own current key (to forge tokens Baton never issued). */
  signAsBaton(claims: JWTPayload): Promise<string>;
  /** Re-reads the registry; a bad file is refused and the running registry stays. */
  reloadRegistry(): Promise<void>;
  /** Re-reads and validates the policy folder and activates it; a bad set is refused and the running set stays. */
  reloadPolicies(): Promise<PolicyChange>;
  /** The policy versions and the set in force. */
  readonly policies: PolicyVersions;
  /** Signs a checkpoint of the audit log now (kept in memory, published nowhere). */
  checkpoint(): Promise<void>;
  close(): Promise<void>;
}

/** What a test may put in place of a memory Baton's defaults. */
export interface MemoryOptions {
  readonly clock?: Clock;
  /** How client metadata documents are fetched (default: the Node fetcher the configuration describes). */
  readonly documentFetcher?: DocumentFetcher;
}

/** Where a memory Baton says it is, unless BATON_ISSUER says otherwise. */
const defaultIssuer = 'http://baton.test';

/** Baton's service context on in-memory storage, and what it was assembled from. */
export interface MemoryService {
  readonly config: Config;
  readonly service: ServiceContext;
  readonly storage: MemoryStorage;
  readonly signingJwks: PrivateJwks;
  /** The keys that sign audit checkpoints, and their private half. */
  readonly auditJwks: PrivateJwks;
  readonly checkpointKeys: SigningKeys;
  readonly metrics: ReturnType<typeof prometheusMetrics>;
  readonly logger: CapturedLogger;
  readonly reload: Reloads;
  readonly policies: PolicyVersions;
  /** The registry in force, kept in memory as the database keeps it (seeded from the registry file). */
  readonly registryStore: MemoryRegistryStore;
}

/**
 * Assembles the service context as `startBaton` does, from the same configuration (`env` as the
 * environment), with the real policies, registry, authorization_details types and keys, but the
 * in-memory storage: for core tests, and for the memory Baton.
 */
export async function memoryService(
  env: Record<string, string> = {},
  options: MemoryOptions = {},
): Promise<MemoryService> {
  const config = loadConfig(env);
  const issuer = config.issuer ?? defaultIssuer;
  const logger = captureLogger();
  const clock = options.clock ?? systemClock;
  const [signingJwks, auditJwks] = await Promise.all([generateSigningKeys('EdDSA'), generateSigningKeys('EdDSA')]);
  const [keys, checkpointKeys] = await Promise.all([
    importSigningKeys(signingJwks, nodeSigner),
    importSigningKeys(auditJwks, nodeSigner),
  ]);
  const registryStore = await memoryRegistryStore(await readRegistryFile(config.registryFile, issuer), {
    issuer,
    clock,
  });
  const sources = loadRegistryAndPolicies(config, issuer, {
    registry: registryStore.registry,
    store: registryStore,
  });
  const metrics = prometheusMetrics(keys.current);
  const storage = memoryStorage(clock);
  const policies = await startPolicyVersions({
    store: memoryPolicyStore(clock),
    policyDir: config.policyDir,
    sha256: sha256Hex,
    audit: storage.audit,
    metrics,
    logger,
  });
  const service = buildContext({
    issuer,
    storage,
    keys,
    registry: sources.registry,
    policy: policies.current,
    detailTypes: loadDetailTypes(config.detailTypesDir),
    audit: storage.audit,
    revocations: storage.revocations,
    metrics,
    clock,
    logger,
    limits: config.limits,
    rateLimit: createRateLimiter({ perSecond: config.rateLimitPerSecond, clock }),
    verifiedTokens: new VerifiedTokens(sha256Hex),
    clientDocuments: createClientDocuments({
      fetcher: options.documentFetcher ?? nodeDocumentFetcher({ allowHttpLoopback: config.cimdAllowHttpLoopback }),
      clock,
      allowHttpLoopback: config.cimdAllowHttpLoopback,
    }),
  });
  return {
    config,
    service,
    storage,
    signingJwks,
    auditJwks,
    checkpointKeys,
    metrics,
    logger,
    reload: auditedReloads(sources, { audit: storage.audit, metrics, logger }),
    policies,
    registryStore,
  };
}

/**
 * The memory service behind Baton's app, with no server: a drop-in for `startTestBaton` where
 * what a test checks is not the storage or the socket. Requests come from 127.0.0.1, as a test's
 * over a socket would.
 */
export async function memoryBaton(env: Record<string, string> = {}, options: MemoryOptions = {}): Promise<MemoryBaton> {
  const {
    config,
    service,
    storage,
    signingJwks,
    auditJwks,
    checkpointKeys,
    metrics,
    logger,
    reload,
    policies,
    registryStore,
  } = await memoryService(env, options);
  const { issuer, clock } = service;
  const checkpoints = await startCheckpoints({
    queries: storage.queries,
    keys: checkpointKeys,
    issuer,
    clock,
    logger,
    intervalSeconds: config.checkpointIntervalSeconds,
    directory: undefined,
  });
  const app = createApp({
    service,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    checkReady: async () => undefined,
    reload,
    policies,
    auditQueries: storage.queries,
    registryStore,
    checkpoints: checkpoints.witness,
    metricsText: async () => ({ contentType: metrics.contentType, body: await metrics.text() }),
    refusals: createRefusalTally({ clock, intervalSeconds: config.refusalIntervalSeconds }),
    remoteAddress: () => '127.0.0.1',
  });
  return {
    url: issuer,
    issuer,
    fetch: async (input, init) => app.request(input, init),
    service,
    storage,
    signingJwks,
    auditJwks,
    logger,
    registryStore,
    auditEntries: (after = 0) =>
      [...storage.state.entries.values()]
        .filter((e) => e.seq > after)
        .map((e) => JSON.parse(e.canonical) as Record<string, unknown>),
    signAsBaton: await batonSigner(signingJwks),
    reloadRegistry: () => reload.registry('SIGHUP'),
    reloadPolicies: () => policies.reload('SIGHUP'),
    policies,
    checkpoint: () => checkpoints.now(),
    async close() {
      checkpoints.stop();
    },
  };
}
