import type { Server as HttpServer } from 'node:http';
import { serve, type Http2Bindings, type HttpBindings, type ServerType } from '@hono/node-server';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { jsonLogger } from '../adapters/json-logger.js';
import { migrate } from '../adapters/db/migrations.js';
import { openPglite } from '../adapters/db/pglite.js';
import { openPostgres } from '../adapters/db/postgres.js';
import type { Database } from '../adapters/db/sql.js';
import { createAuditSinkStore } from '../adapters/db/audit-sink-store.js';
import { createAuditReader } from '../adapters/db/audit-reader.js';
import { createAuditWriter } from '../adapters/db/audit-writer.js';
import { createRevocations } from '../adapters/db/revocation-store.js';
import { revocationEntry } from '../core/revocation/revoke.js';
import { sha256Hex } from '../adapters/node-hash.js';
import { VerifiedTokens } from '../core/tokens/jwt.js';
import { nodeSigner } from '../adapters/node-signer.js';
import { nodeBodyReader } from './body-reader.js';
import { createRateLimiter, createSharedRateLimiter } from '../core/clients/rate-limit.js';
import { createRateLimitStore } from '../adapters/db/rate-limit-store.js';
import { createRefusalTally } from '../core/audit/refusal-tally.js';
import { startAgentSweep } from './agent-sweep.js';
import { startAuditSinks } from './audit-sinks.js';
import { startCheckpoints } from './checkpoints.js';
import { prometheusMetrics } from '../adapters/prometheus.js';
import { assertDistinctKeys, importSigningKeys, type PrivateJwks } from '../adapters/signing-keys.js';
import { purgeUsedAssertions } from '../adapters/db/sql-store.js';
import { systemClock } from '../adapters/system-clock.js';
import type { AuditEvent } from '../core/audit/chain.js';
import type { Clock, DocumentFetcher, Logger } from '../core/ports.js';
import { buildContext, sqlStorage } from '../adapters/context.js';
import { nodeDocumentFetcher } from '../adapters/node-document-fetcher.js';
import { createClientDocuments } from '../core/clients/metadata-document.js';
import { createApp } from '../http/app.js';
import type { Config } from '../config.js';
import { drainable } from './drain.js';
import { loadDetailTypes, loadOrCreateKeyFile, readJsonFile } from './files.js';
import { auditedReloads, loadRegistryAndPolicies, readRegistryFile } from './registry-and-policies.js';
import { followRegistry } from '../adapters/db/registry-store.js';
import { startPolicyVersions, type PolicySet } from './policy-versions.js';
import { policiesTopic, sqlPolicyStore } from '../adapters/db/policy-store.js';
import { followChanges } from '../adapters/db/change-feed.js';
import type { PolicyChange } from '../core/decisions/policy-set.js';

export interface RunningBaton {
  readonly url: string;
  readonly issuer: string;
  readonly database: Database;
  /** Applies the registry file to the stored registry; a bad file is refused and the running registry stays. */
  reloadRegistry(): Promise<void>;
  /** Re-reads and validates the policy folder and activates it for every instance; a bad set is refused and the running set stays. */
  reloadPolicies(): Promise<PolicyChange>;
  /** The policy set in force on this instance. */
  policies(): PolicySet;
  /** Signs a checkpoint of the audit log now (one is also signed at the configured cadence). */
  checkpoint(): Promise<void>;
  /** Accepts no new connection from now on, and says so at /readyz; open connections are served as before, until close(). */
  stopAccepting(): void;
  /**
   * Drains and stops (once; later calls get the same promise): accepts no new connection, answers
   * what is in flight within the drain timeout, then flushes the audit log and closes the database.
   */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
  /** An already open database (tests give each suite its own schema). */
  readonly database?: Database;
  readonly clock?: Clock;
  readonly fetch?: typeof fetch;
  /** How client metadata documents are fetched (default: the SSRF-safe Node fetcher the configuration describes). */
  readonly documentFetcher?: DocumentFetcher;
}

async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  if (config.databaseUrl !== undefined)
    return openPostgres(
      config.databaseUrl,
      config.databaseSchema === undefined ? {} : { schema: config.databaseSchema },
    );
  const dir = join(config.dataDir, 'pglite');
  logger.warn(
    'EMBEDDED DEFAULT: using PGlite in a local data folder; for development only, set DATABASE_URL in production',
    { data_dir: dir },
  );
  return openPglite(dir);
}

/** Where one key set comes from: its two settings, and its file and words for the embedded default. */
interface KeySource {
  readonly inline: string | undefined;
  readonly file: string | undefined;
  readonly variable: string;
  /** Why instances sharing a database need it configured. */
  readonly why: string;
  readonly defaultFile: string;
  readonly what: string;
}

/** A key set: configured, or for the embedded default generated and kept in the data folder. */
async function configuredKeys(config: Config, logger: Logger, source: KeySource): Promise<PrivateJwks> {
  if (source.inline !== undefined) return JSON.parse(source.inline) as PrivateJwks;
  if (source.file !== undefined) return readJsonFile(source.file) as PrivateJwks;
  if (config.databaseUrl !== undefined)
    throw new Error(`${source.variable} or ${source.variable}_FILE is required with DATABASE_URL: ${source.why}`);
  const file = join(config.dataDir, source.defaultFile);
  const { jwks, created } = await loadOrCreateKeyFile(file, config.signingAlg);
  logger.warn(
    `EMBEDDED DEFAULT: ${source.what} ${created ? 'generated and stored' : 'read'} in ${file}; for development only, provide ${source.variable} in production`,
  );
  return jwks;
}

/** The token signing keys. */
const signingKeys = (config: Config, logger: Logger): Promise<PrivateJwks> =>
  configuredKeys(config, logger, {
    inline: config.signingKeys,
    file: config.signingKeysFile,
    variable: 'BATON_SIGNING_KEYS',
    why: 'instances sharing a database must share keys',
    defaultFile: 'signing-keys.json',
    what: 'signing keys',
  });

/** The keys that sign audit checkpoints and nothing else. */
const auditKeys = (config: Config, logger: Logger): Promise<PrivateJwks> =>
  configuredKeys(config, logger, {
    inline: config.auditKeys,
    file: config.auditKeysFile,
    variable: 'BATON_AUDIT_KEYS',
    why: 'audit checkpoints are signed with a key of their own, shared by the instances',
    defaultFile: 'audit-keys.json',
    what: 'audit checkpoint keys',
  });

/** Where checkpoints are published: the configured directory, or the data folder's for the embedded default; none with DATABASE_URL unless configured. */
function checkpointDirectory(config: Config): string | undefined {
  return config.checkpointDir ?? (config.databaseUrl === undefined ? join(config.dataDir, 'checkpoints') : undefined);
}

/** How often each instance deletes used assertion ids that can no longer matter. */
const purgeIntervalMs = 5 * 60_000;

/**
 * How often an instance charges the shared rate limit buckets with what it admitted (one statement
 * for all callers, none when nothing was admitted or refused), and how often it deletes the buckets
 * that are full again.
 */
const rateLimitSyncMs = 100;
const rateLimitPurgeMs = 60_000;

/**
 * The rate limit: shared by every instance on PostgreSQL; on PGlite, which only one process can
 * open, the process's own buckets are the service's.
 */
function rateLimiter(config: Config, database: Database, clock: Clock, logger: Logger) {
  const options = { perSecond: config.rateLimitPerSecond, clock };
  if (database.kind !== 'postgres' || config.rateLimitPerSecond <= 0)
    return { limiter: createRateLimiter(options), stop: () => Promise.resolve() };
  const limiter = createSharedRateLimiter({ ...options, store: createRateLimitStore(database.sql), logger });
  const sync = setInterval(() => void limiter.sync(), rateLimitSyncMs);
  const purge = setInterval(() => void limiter.purge(), rateLimitPurgeMs);
  sync.unref();
  purge.unref();
  return {
    limiter,
    // What is owed since the last sync is a few requests, left uncharged; a sync under way is awaited.
    stop: async () => {
      clearInterval(sync);
      clearInterval(purge);
      await limiter.settled();
    },
  };
}

/** Starts Baton: database and migrations, keys, registry, the HTTP app on the configured port. */
export async function startBaton(config: Config, options: StartOptions = {}): Promise<RunningBaton> {
  const logger = options.logger ?? jsonLogger((line) => process.stdout.write(line));
  const keys = await importSigningKeys(await signingKeys(config, logger), nodeSigner);
  const checkpointKeys = await importSigningKeys(await auditKeys(config, logger), nodeSigner);
  await assertDistinctKeys(keys, checkpointKeys);
  const database = options.database ?? (await openDatabase(config, logger));
  const closeDatabase = options.database === undefined ? () => database.close() : () => Promise.resolve();
  let server: ServerType | undefined;
  let stopRegistry: (() => Promise<void>) | undefined;
  let rateLimit: ReturnType<typeof rateLimiter> | undefined;
  try {
    await migrate(database.sql);
    // The issuer may depend on the port the server gets, so requests wait for the app behind this slot.
    const slot: {
      handle?: (request: Request, bindings: HttpBindings | Http2Bindings) => Response | Promise<Response>;
    } = {};
    const port = await new Promise<number>((resolve, reject) => {
      server = serve(
        {
          fetch: (request, bindings) => slot.handle?.(request, bindings) ?? new Response('starting', { status: 503 }),
          port: config.port,
          hostname: config.host,
        },
        (info) => resolve(info.port),
      );
      server.once('error', reject);
    });
    // serve() makes a node:http server unless told otherwise, and it is told nothing.
    const drain = drainable(server as unknown as HttpServer, { timeoutMs: config.drainTimeoutSeconds * 1000, logger });
    const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    const issuer = config.issuer ?? `http://localhost:${port}`;
    const clock = options.clock ?? systemClock;
    // The database's registry is the one in force; the file seeds an empty database, and is applied
    // again by a reload (SIGHUP, /admin/registry/reload) or `baton registry apply`.
    const registry = await followRegistry(database, {
      issuer,
      clock,
      logger,
      seed: { load: () => readRegistryFile(config.registryFile, issuer), source: config.registryFile },
      ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    });
    stopRegistry = registry.stop;
    const sources = loadRegistryAndPolicies(config, issuer, registry);
    const metrics = prometheusMetrics(keys.current);
    // The writer has connections of its own (PostgreSQL), so a batch stuck on one can be abandoned
    // with it, and readiness probes the very connections appends go on.
    const openSession = database.openSession;
    const audit = createAuditWriter(database.sql, {
      sha256: sha256Hex,
      clock,
      onBatch: (size, ms) => metrics.auditBatch(size, ms / 1000),
      ...(openSession === undefined ? {} : { openSession: () => openSession(2) }),
      onUndelivered: (seqs) =>
        logger.warn('audit entries committed after their callers were answered 503; recorded as not delivered', {
          seqs: seqs.join(','),
        }),
    });
    // A follow-up pass that revokes more tokens says so in the log (no client asked for it).
    const revocations = await createRevocations(database.sql, {
      logger,
      onFollowUp: async (tenant, target, revoked) =>
        void (await audit.append(revocationEntry(tenant, null, target, revoked, null, true))),
    });
    if (registry.seeded !== undefined)
      await audit.append({
        tenant: '*',
        type: 'registry.reload',
        decision: 'applied',
        client: 'start-up',
        reason: `${config.registryFile}: version ${registry.seeded}: seeded an empty database`,
      });
    const auditQueries = createAuditReader(database.sql, sha256Hex);
    const auditSinks = createAuditSinkStore(database.sql);
    const reload = auditedReloads(sources, { audit, metrics, logger });
    const policies = await startPolicyVersions({
      store: sqlPolicyStore(database.sql),
      policyDir: config.policyDir,
      sha256: sha256Hex,
      audit,
      metrics,
      logger,
    });
    // Another instance's reload or rollback is in force here within a second: a notification
    // wakes the follower at once, the poll catches a lost one.
    const policyFeed = await followChanges(database, [policiesTopic], {
      onChange: () => policies.refresh(),
      logger,
    });
    await policyFeed.check();
    const limit = rateLimiter(config, database, clock, logger);
    rateLimit = limit;
    const service = buildContext({
      issuer,
      storage: sqlStorage(database.sql, clock),
      keys,
      registry: sources.registry,
      policy: policies.current,
      detailTypes: loadDetailTypes(config.detailTypesDir),
      audit,
      revocations,
      metrics,
      clock,
      logger,
      limits: config.limits,
      rateLimit: limit.limiter,
      verifiedTokens: new VerifiedTokens(sha256Hex),
      clientDocuments: createClientDocuments({
        fetcher:
          options.documentFetcher ??
          nodeDocumentFetcher({
            allowHttpLoopback: config.cimdAllowHttpLoopback,
            ...(config.cimdLoopbackCaFile === undefined
              ? {}
              : { loopbackCa: readFileSync(config.cimdLoopbackCaFile, 'utf8') }),
          }),
        clock,
        allowHttpLoopback: config.cimdAllowHttpLoopback,
      }),
    });
    const checkpoints = await startCheckpoints({
      queries: auditQueries,
      keys: checkpointKeys,
      issuer,
      clock,
      logger,
      intervalSeconds: config.checkpointIntervalSeconds,
      directory: checkpointDirectory(config),
    });
    // Used assertion ids are kept until their assertion could no longer be accepted anywhere: past
    // its expiry, the clock tolerance and a minute of skew between instances.
    const purge = setInterval(() => {
      const before = new Date(clock.now() - (config.limits.clockToleranceSeconds + 60) * 1000);
      purgeUsedAssertions(database.sql, before).then(
        (purged) => purged > 0 && logger.info('expired assertion ids purged', { purged }),
        (error: unknown) =>
          logger.warn('purging expired assertion ids failed; will retry', {
            detail: error instanceof Error ? error.message : String(error),
          }),
      );
    }, purgeIntervalMs);
    purge.unref();
    // Refusals counted in an interval are summarized when it ends, even if no refusal follows.
    const refusals = createRefusalTally({ clock, intervalSeconds: config.refusalIntervalSeconds });
    const writeRefusals = (events: readonly AuditEvent[]): Promise<unknown> =>
      Promise.all(events.map((event) => audit.append(event))).catch((error: unknown) =>
        logger.warn('writing the summary of refused requests failed', {
          detail: error instanceof Error ? error.message : String(error),
        }),
      );
    const refusalSummaries = setInterval(
      () => void writeRefusals(refusals.due()),
      config.refusalIntervalSeconds * 1000,
    );
    refusalSummaries.unref();
    const app = createApp({
      service,
      logger,
      maxBodyBytes: config.maxBodyBytes,
      readBody: nodeBodyReader,
      checkReady: async () => {
        // A load balancer stops sending to a draining instance before its connections close.
        if (drain.stopping) throw new Error('stopping');
        // Ready only if an entry could commit now, on the writer's own connection.
        await audit.ready();
      },
      reload,
      policies,
      auditQueries,
      registryStore: registry.store,
      auditSinks,
      checkpoints: checkpoints.witness,
      metricsText: async () => ({ contentType: metrics.contentType, body: await metrics.text() }),
      refusals,
      remoteAddress: (c) => (c.env as Partial<HttpBindings> | undefined)?.incoming?.socket.remoteAddress,
    });
    slot.handle = (request, bindings) => app.fetch(request, bindings);
    const sweep = startAgentSweep(service, registry.store, config.agentSweepIntervalSeconds);
    const sinks = startAuditSinks({
      store: auditSinks,
      clock,
      logger,
      metrics,
      intervalMs: config.auditSinkIntervalMs,
      leaseMs: config.auditSinkLeaseMs,
      backoffMs: config.auditSinkBackoffMs,
      maxBackoffMs: config.auditSinkMaxBackoffMs,
      timeoutMs: config.auditSinkTimeoutMs,
    });
    logger.info('baton started', {
      url,
      issuer,
      database: database.kind,
      registry: config.registryFile,
      registry_version: registry.version(),
      policies: policies.current().policyIds,
      policy_version: policies.current().version,
      policy_digest: policies.current().digest,
      signing_kid: keys.current.kid,
      audit_kid: checkpointKeys.current.kid,
      checkpoint_dir: checkpointDirectory(config) ?? null,
    });
    let closing: Promise<void> | undefined;
    return {
      url,
      issuer,
      database,
      reloadRegistry: () => reload.registry('SIGHUP'),
      reloadPolicies: () => policies.reload('SIGHUP'),
      policies: policies.current,
      checkpoint: () => checkpoints.now(),
      stopAccepting: () => drain.stopAccepting(),
      close() {
        // The HTTP side first, bounded by the drain timeout; every answer it gave left after its
        // entry committed. The writer may still hold entries of requests cut at the deadline, and
        // the refusal tally its open intervals: both are flushed before the database closes.
        closing ??= (async () => {
          await drain.drain();
          await policyFeed.stop();
          checkpoints.stop();
          sweep.stop();
          await sinks.stop();
          clearInterval(purge);
          clearInterval(refusalSummaries);
          revocations.stop();
          await registry.stop();
          await limit.stop();
          await writeRefusals(refusals.drain());
          await audit.drain();
          await audit.close();
          await closeDatabase();
        })();
        return closing;
      },
    };
  } catch (error) {
    await rateLimit?.stop();
    if (server !== undefined) await new Promise<void>((resolve) => (server as ServerType).close(() => resolve()));
    await stopRegistry?.();
    await closeDatabase();
    throw error;
  }
}
