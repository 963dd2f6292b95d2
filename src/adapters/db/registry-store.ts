import { OAuthError, StorageUnavailableError } from '../../core/errors.js';
import type { Clock, KeyResolver, Logger } from '../../core/ports.js';
import { compileRegistry, RegistryError, type CompileOptions } from '../../core/registry/compile.js';
import type { RegistryDocument } from '../../core/registry/document.js';
import { changeLine, registryDiff } from '../../core/registry/diff.js';
import { runEdit } from '../../core/registry/edit.js';
import { keepRuntimeState } from '../../core/registry/sub-agents.js';
import type { Registry } from '../../core/registry/registry.js';
import { emptyRegistryDocument, type RegistryStore, type StoredRegistry } from '../../core/registry/store.js';
import { bumpVersion, followChanges, type ChangeFollower } from './change-feed.js';
import type { Database, Sql } from './sql.js';

/** The topic of the registry in baton_versions. */
export const registryTopic = 'registry';

/** How many versions of the document are kept (the audit log keeps what each change was, for good). */
export const keptRegistryVersions = 100;

/** Serializes registry writers across instances (pg_advisory_xact_lock key). */
const registryLock = 7301866;

export interface RegistryStoreOptions {
  /** Baton's issuer (the registry is compiled against it). */
  readonly issuer: string;
  readonly clock: Clock;
  readonly fetch?: typeof fetch;
}

/**
 * How stored documents are compiled: against the issuer, retiring keys on the clock, and key sets
 * reused from one compile to the next (a JWKS is imported once, a jwks_uri keeps its cached keys).
 */
function compiler(options: RegistryStoreOptions): () => CompileOptions & { readonly now: () => number } {
  let kept: ReadonlyMap<string, KeyResolver> = new Map();
  return () => {
    // What this compile uses is what the next one may reuse (a compile cut short leaves fewer: they
    // are imported again), so the keys of removed entities are dropped.
    const keyCache = { previous: kept, next: new Map<string, KeyResolver>() };
    kept = keyCache.next;
    return {
      issuer: options.issuer,
      file: 'registry',
      now: () => options.clock.now(),
      ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
      keyCache,
    };
  };
}

interface DocumentRow {
  version: string | number;
  document: string;
}

async function latest(sql: Sql): Promise<StoredRegistry> {
  const [row] = await sql<DocumentRow>`
    SELECT version, document FROM registry_documents ORDER BY version DESC LIMIT 1`;
  return row === undefined
    ? { version: 0, document: emptyRegistryDocument() }
    : { version: Number(row.version), document: JSON.parse(row.document) as RegistryDocument };
}

/**
 * A failure of the database (not of the edit) as unavailable: the edit did not happen. The driver's
 * errors carry a `code` (an SQLSTATE, or its own such as ECONNREFUSED or CONNECTION_CLOSED); what
 * the edit itself throws (a refusal, a RegistryError) passes through.
 */
function unavailable(error: unknown): unknown {
  if (error instanceof RegistryError || error instanceof OAuthError || error instanceof StorageUnavailableError)
    return error;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? new StorageUnavailableError(error) : error;
}

/**
 * The registry in PostgreSQL (or PGlite): every version of the document is kept in
 * registry_documents, the newest in force. An edit takes a transaction-scoped advisory lock, so
 * writers on every instance queue one behind the other; it reads the newest version, applies the
 * edit, compiles the result (the JWKS of a jwks_uri is fetched lazily, at first use, never here,
 * so the transaction stays short under the statement deadline), inserts the next version and
 * bumps the 'registry' topic, whose NOTIFY goes out at commit.
 */
export function createSqlRegistryStore(
  sql: Sql,
  options: RegistryStoreOptions,
  compile = compiler(options),
): RegistryStore {
  return {
    read: () => latest(sql),
    async edit(by, edit) {
      try {
        return await sql.begin(async (tx) => {
          await tx`SELECT pg_advisory_xact_lock(${registryLock})`;
          const current = await latest(tx);
          const outcome = await runEdit(current.document, current.version, edit, compile());
          if (!outcome.changed) return { version: current.version, registry: outcome.registry, changed: false };
          const version = await bumpVersion(tx, registryTopic);
          await tx`
            INSERT INTO registry_documents (version, document, changed_by)
            VALUES (${version}, ${JSON.stringify(outcome.document)}, ${by})`;
          await tx`DELETE FROM registry_documents WHERE version <= ${version - keptRegistryVersions}`;
          return { version, registry: outcome.registry, changed: true };
        });
      } catch (error) {
        throw unavailable(error);
      }
    },
  };
}

/** The registry an instance runs with: compiled in memory, replaced when the stored one moves. */
export interface FollowedRegistry {
  /** The registry in force on this instance (a sync getter: requests never wait on the database). */
  readonly registry: () => Registry;
  /** The version it holds. */
  readonly version: () => number;
  /** The version this instance wrote when it found the database empty and stored the seed, if it did. */
  readonly seeded: number | undefined;
  /** Edits the stored registry; this instance swaps in the result at once, the others when they hear of it. */
  readonly store: RegistryStore;
  stop(): Promise<void>;
}

export interface FollowOptions extends RegistryStoreOptions {
  readonly logger: Logger;
  /** What to store when the database holds no registry yet (the configured file), read only then; `source` names it. */
  readonly seed: { readonly load: () => Promise<RegistryDocument>; readonly source: string };
  readonly pollMilliseconds?: number;
}

/**
 * Once the database holds a registry, the file no longer counts at start-up: an instance started
 * after the file was edited says so (with what applying it would change), rather than leave the
 * edit silently unapplied. A file that cannot be read is only reported: the stored registry runs.
 */
async function warnIfSeedDiffers(stored: StoredRegistry, options: FollowOptions): Promise<void> {
  try {
    const file = await options.seed.load();
    const changes = registryDiff(stored.document, keepRuntimeState(stored.document, file));
    if (changes.length > 0)
      options.logger.warn(
        'the registry file differs from the stored registry, which stays in force; apply it with baton registry apply or a reload',
        { file: options.seed.source, version: stored.version, changes: changes.slice(0, 20).map(changeLine) },
      );
  } catch (error) {
    options.logger.warn('the registry file cannot be read; the stored registry stays in force', {
      file: options.seed.source,
      detail: error instanceof Error ? error.message : String(error),
    });
  }
}

/**
 * Opens the stored registry for an instance: seeds it when the database holds none (instances
 * starting together queue on the writers' lock, and only the first writes; the database wins over
 * the file from then on), compiles the stored one, and follows the 'registry' topic to swap in each
 * newer version.
 */
export async function followRegistry(database: Database, options: FollowOptions): Promise<FollowedRegistry> {
  // One compiler for this instance's edits and the versions it follows, so both reuse its keys.
  const compile = compiler(options);
  const sqlStore = createSqlRegistryStore(database.sql, options, compile);
  let seeded: number | undefined;
  const stored = await sqlStore.read();
  if (stored.version === 0) {
    const seed = await options.seed.load();
    const result = await sqlStore.edit(`seed from ${options.seed.source}`, (document, version) =>
      version === 0 ? seed : document,
    );
    if (result.changed) seeded = result.version;
  } else {
    await warnIfSeedDiffers(stored, options);
  }
  const first = await latest(database.sql);
  let held = { version: first.version, registry: await compileRegistry(first.document, compile()) };
  const hold = (version: number, registry: Registry): void => {
    // Versions only move forward: a slow reader never puts an older registry back.
    if (version > held.version) held = { version, registry };
  };
  const follower: ChangeFollower = await followChanges(database, [registryTopic], {
    known: new Map([[registryTopic, held.version]]),
    logger: options.logger,
    ...(options.pollMilliseconds === undefined ? {} : { pollMilliseconds: options.pollMilliseconds }),
    onChange: async () => {
      const stored = await latest(database.sql);
      if (stored.version <= held.version) return;
      hold(stored.version, await compileRegistry(stored.document, compile()));
      options.logger.info('registry version in force', { version: stored.version });
    },
  });
  return {
    registry: () => held.registry,
    version: () => held.version,
    seeded,
    store: {
      read: () => sqlStore.read(),
      async edit(by, edit) {
        const result = await sqlStore.edit(by, edit);
        hold(result.version, result.registry);
        return result;
      },
    },
    stop: () => follower.stop(),
  };
}
