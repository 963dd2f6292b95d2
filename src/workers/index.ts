import * as cedar from '@cedar-policy/cedar-wasm/web';
import postgres from 'postgres';
import cedarWasm from '../../node_modules/@cedar-policy/cedar-wasm/web/cedar_wasm_bg.wasm';
import schemaText from '../../policies/baton.cedarschema';
import delegationPolicies from '../../policies/delegation.cedar';
import entities from '../../policies/entities.json' with { type: 'json' };
import paymentsPolicies from '../../policies/payments.cedar';
import registryDocument from '../../policies/registry.json' with { type: 'json' };
import paymentInitiation from '../../schemas/authorization-details/payment_initiation.json' with { type: 'json' };
import toolInvocation from '../../schemas/authorization-details/tool_invocation.json' with { type: 'json' };
import { loadCedarPolicySet, policySourceOf } from '../adapters/cedar/cedar-engine.js';
import { policySetDigest, type PolicyChange } from '../core/decisions/policy-set.js';
import { buildContext, sqlStorage } from '../adapters/context.js';
import { createRateLimiter } from '../core/clients/rate-limit.js';
import { createRefusalTally, type RefusalTally } from '../core/audit/refusal-tally.js';
import { createAuditReader } from '../adapters/db/audit-reader.js';
import { createAuditWriter } from '../adapters/db/audit-writer.js';
import { migrate } from '../adapters/db/migrations.js';
import { wrapPostgres } from '../adapters/db/postgres.js';
import { jsonLogger } from '../adapters/json-logger.js';
import { sha256Hex } from '../adapters/node-hash.js';
import { VerifiedTokens } from '../core/tokens/jwt.js';
import { importSigningKeys, type PrivateJwks } from '../adapters/signing-keys.js';
import { systemClock } from '../adapters/system-clock.js';
import { compileDetailType } from '../core/tokens/authorization-details.js';
import { compileRegistry } from '../core/registry/compile.js';
import { registryDocumentSchema } from '../core/registry/document.js';
import type { Registry } from '../core/registry/registry.js';
import type { RegistryStore } from '../core/registry/store.js';
import { currentVersion } from '../adapters/db/change-feed.js';
import { createSqlRegistryStore, registryTopic } from '../adapters/db/registry-store.js';
import type { Sql } from '../adapters/db/sql.js';
import { noMetrics } from '../core/telemetry.js';
import { createApp } from '../http/app.js';
import { parseConfig, type Config } from '../config.js';
import { requestRevocations } from './revocations.js';
import type { RateLimiter } from '../core/ports.js';

/** Bindings and variables (wrangler.toml `[vars]`, secrets, the Hyperdrive binding). */
interface Env {
  readonly HYPERDRIVE?: { readonly connectionString: string };
  readonly DATABASE_URL?: string;
  readonly BATON_SIGNING_KEYS?: string;
  readonly [name: string]: unknown;
}

interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
}

/** What an isolate prepares once and reuses: configuration, keys, registry, policies, types. */
interface Isolate {
  readonly config: Config & { readonly issuer: string };
  readonly keys: Awaited<ReturnType<typeof importSigningKeys>>;
  /** The registry version it holds (from the database), and when the database was last asked for a newer one. */
  registry: { version: number; registry: Registry; checkedAt: number } | undefined;
  readonly policies: ReturnType<typeof loadCedarPolicySet>;
  readonly detailTypes: ReturnType<typeof detailTypes>;
  /**
   * Per isolate: Workers run many isolates, so the limit holds per isolate, not per deployment. The
   * shared limiter of the Node server needs a timer that outlives requests to charge the shared
   * buckets in batches, and a Worker has none; a statement per request would put the database on
   * the request path.
   */
  readonly rateLimit: RateLimiter;
  /** Per isolate, like the rate limit: no timer outlives a request, so a summary is written at the next refusal after its interval. */
  readonly refusals: RefusalTally;
  readonly verifiedTokens: VerifiedTokens;
  migrated: boolean;
}

function detailTypes() {
  return new Map(
    [
      compileDetailType('payment_initiation.json', paymentInitiation),
      compileDetailType('tool_invocation.json', toolInvocation),
    ].map((t) => [t.type, t]),
  );
}

async function prepare(env: Env): Promise<Isolate> {
  const vars = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string'));
  const config = parseConfig(vars);
  if (config.issuer === undefined) throw new Error('BATON_ISSUER is required on Workers');
  if (env.BATON_SIGNING_KEYS === undefined) throw new Error('the BATON_SIGNING_KEYS secret is required on Workers');
  cedar.initSync({ module: cedarWasm });
  return {
    config: { ...config, issuer: config.issuer },
    rateLimit: createRateLimiter({ perSecond: config.rateLimitPerSecond, clock: systemClock }),
    refusals: createRefusalTally({ clock: systemClock, intervalSeconds: config.refusalIntervalSeconds }),
    verifiedTokens: new VerifiedTokens(sha256Hex),
    keys: await importSigningKeys(JSON.parse(env.BATON_SIGNING_KEYS) as PrivateJwks),
    registry: undefined,
    policies: loadCedarPolicySet(
      cedar,
      policySourceOf(bundledPolicies, 'policies'),
      policySetDigest(sha256Hex, bundledPolicies),
    ),
    detailTypes: detailTypes(),
    migrated: false,
  };
}

/**
 * The bundled policy set, named as in the folder. The bundle holds entities.json parsed, so its
 * text here is that value written back (2-space JSON), and the digest is of this text: it differs
 * from the folder's when the file is laid out otherwise.
 */
const bundledPolicies = {
  'baton.cedarschema': schemaText,
  'delegation.cedar': delegationPolicies,
  'entities.json': JSON.stringify(entities, null, 2),
  'payments.cedar': paymentsPolicies,
};

/** How often an isolate asks the database whether the registry moved: a change is in force within a second. */
const registryCheckMs = 1000;

/**
 * The registry in force for a request: the one the isolate holds, checked against the stored
 * version at most once a second (no timer outlives a request, so the check rides on a request).
 * An empty database is seeded with the bundled registry, as a Node instance seeds it with its file.
 * When the check fails, a registry already held stays in force.
 */
async function registryFor(shared: Isolate, sql: Sql): Promise<Registry> {
  const held = shared.registry;
  const now = systemClock.now();
  if (held !== undefined && now - held.checkedAt < registryCheckMs) return held.registry;
  try {
    const version = await currentVersion(sql, registryTopic);
    if (held !== undefined && version <= held.version) {
      held.checkedAt = now;
      return held.registry;
    }
    const store = createSqlRegistryStore(sql, { issuer: shared.config.issuer, clock: systemClock });
    let next: { version: number; registry: Registry };
    if (version === 0) {
      next = await store.edit('seed from the bundled policies/registry.json', (document, current) =>
        current === 0 ? registryDocumentSchema.parse(registryDocument) : document,
      );
    } else {
      const stored = await store.read();
      next = {
        version: stored.version,
        registry: await compileRegistry(stored.document, {
          issuer: shared.config.issuer,
          file: 'registry',
          now: () => systemClock.now(),
        }),
      };
    }
    if (held === undefined || next.version > held.version) shared.registry = { ...next, checkedAt: now };
    return (shared.registry as { registry: Registry }).registry;
  } catch (error) {
    if (held === undefined) throw error;
    logger.warn('checking the registry version failed; the held one stays', {
      detail: error instanceof Error ? error.message : String(error),
    });
    held.checkedAt = now;
    return held.registry;
  }
}

let isolate: Promise<Isolate> | undefined;
const logger = jsonLogger((line) => console.log(line.trimEnd()));

/**
 * The Workers entry point: the same app and core as on Node. The database client is made per
 * request (Hyperdrive pools the connections); each request's audit entries are committed before
 * its answer, and the client is closed after.
 */
async function fetchHandler(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  isolate ??= prepare(env).catch((error: unknown) => {
    isolate = undefined;
    throw error;
  });
  const shared = await isolate;
  const url = env.HYPERDRIVE?.connectionString ?? env.DATABASE_URL;
  if (url === undefined)
    return Response.json({ error: 'server_error', error_description: 'no database is configured' }, { status: 500 });
  const schema = shared.config.databaseSchema;
  const pg = postgres(url, {
    max: 1,
    onnotice: () => {},
    connect_timeout: 10,
    ...(schema === undefined ? {} : { connection: { search_path: schema } }),
  });
  const sql = wrapPostgres(pg);
  const audit = createAuditWriter(sql, { sha256: sha256Hex, clock: systemClock });
  try {
    if (!shared.migrated) {
      if (schema !== undefined) await sql.script(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await migrate(sql);
      shared.migrated = true;
    }
    const registry = await registryFor(shared, sql);
    // Edits through the admin API are in force in this isolate at once.
    const stored = createSqlRegistryStore(sql, { issuer: shared.config.issuer, clock: systemClock });
    const registryStore: RegistryStore = {
      read: () => stored.read(),
      async edit(by, edit) {
        const result = await stored.edit(by, edit);
        if (shared.registry === undefined || result.version > shared.registry.version)
          shared.registry = { version: result.version, registry: result.registry, checkedAt: systemClock.now() };
        return result;
      },
    };
    const service = buildContext({
      issuer: shared.config.issuer,
      storage: sqlStorage(sql, systemClock),
      keys: shared.keys,
      // The isolate's registry: an admin edit in this request swaps it at once.
      registry: () => shared.registry?.registry ?? registry,
      policy: () => shared.policies,
      detailTypes: shared.detailTypes,
      audit,
      revocations: requestRevocations(sql),
      metrics: noMetrics,
      clock: systemClock,
      logger,
      limits: shared.config.limits,
      rateLimit: shared.rateLimit,
      verifiedTokens: shared.verifiedTokens,
    });
    // A reload is refused here, and audited as refused as on Node (a system event, tenant "*").
    const bundled = async (
      type: 'policy.reload' | 'policy.rollback' | 'registry.reload',
      by: string,
      reason: string,
    ): Promise<never> => {
      await audit.append({ tenant: '*', type, decision: 'refused', client: by, reason });
      throw new Error(reason);
    };
    const app = createApp({
      service,
      logger,
      maxBodyBytes: shared.config.maxBodyBytes,
      checkReady: async () => {
        await sql`SELECT 1`;
      },
      reload: {
        registry: (by) =>
          bundled(
            'registry.reload',
            by,
            'the registry file is bundled on Workers: change the registry with the admin API or baton registry apply',
          ),
      },
      policies: {
        reload: (by): Promise<PolicyChange> =>
          bundled('policy.reload', by, 'policies are bundled on Workers: deploy to change them'),
        upload: (_files, by): Promise<PolicyChange> =>
          bundled('policy.reload', by, 'policies are bundled on Workers: deploy to change them'),
        rollback: (_version, by): Promise<PolicyChange> =>
          bundled('policy.rollback', by, 'policies are bundled on Workers: deploy to change them'),
        list: () =>
          Promise.resolve([
            {
              version: 1,
              digest: shared.policies.digest,
              policyIds: shared.policies.policyIds,
              createdBy: 'bundle',
              createdAt: new Date(0),
              active: true,
            },
          ]),
      },
      auditQueries: createAuditReader(sql, sha256Hex),
      registryStore,
      metricsText: () => Promise.resolve({ contentType: 'text/plain; version=0.0.4', body: '' }),
      refusals: shared.refusals,
      remoteAddress: (c) => c.req.header('cf-connecting-ip'),
    });
    return await app.fetch(request);
  } finally {
    ctx.waitUntil(audit.drain().then(() => pg.end({ timeout: 5 })));
  }
}

// Workers load the module's default export.
// eslint-disable-next-line no-restricted-syntax
export default { fetch: fetchHandler };
