import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { loadCedarPolicySet, policySourceOf } from '../adapters/cedar/cedar-engine.js';
import { warnIfNoDelegateAction } from '../core/decisions/policy.js';
import { policySetDigest, type PolicyAdmin, type PolicyChange } from '../core/decisions/policy-set.js';
import { OAuthError } from '../core/errors.js';
import type {
  AuditLog,
  Logger,
  Metrics,
  PolicyEngine,
  PolicyFiles,
  PolicyStore,
  PolicyVersion,
} from '../core/ports.js';
import type { Sha256 } from '../core/sha256.js';
import { readPolicyFiles } from './files.js';

/** A loaded policy set: its engine (with its digest), the ids of its policies, and its stored version. */
export type PolicySet = PolicyEngine & { readonly policyIds: readonly string[]; readonly version: number };

/** The policy set in force on this instance, and the operator calls that change it for every instance. */
export interface PolicyVersions extends PolicyAdmin {
  readonly current: () => PolicySet;
  /** Swaps in the stored active version if it is not the one in force (the change feed calls it on topic 'policies'). */
  refresh(): Promise<void>;
}

export interface PolicyVersionOptions {
  readonly store: PolicyStore;
  /** The folder a reload reads, and the seed of an empty store. */
  readonly policyDir: string;
  readonly sha256: Sha256;
  readonly audit: AuditLog;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

/** Parses and validates (strict) a set's files; throws PolicySetError naming each problem. */
function loadFiles(files: PolicyFiles, where: string, sha256: Sha256, version: number): PolicySet {
  const engine = loadCedarPolicySet(cedar, policySourceOf(files, where), policySetDigest(sha256, files));
  return Object.assign(engine, { version });
}

const detailOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Once a version is stored the folder is read only by a reload; an instance restarted after the
 * folder was edited says so, rather than leaving an operator to believe the edit is in force.
 */
function warnIfFolderDiffers(policyDir: string, active: PolicySet, sha256: Sha256, logger: Logger): void {
  let digest: string;
  try {
    digest = policySetDigest(sha256, readPolicyFiles(policyDir));
  } catch {
    return;
  }
  if (digest !== active.digest)
    logger.warn('the policy folder differs from the active policy version, which stays in force', {
      policy_dir: policyDir,
      version: active.version,
      digest: active.digest,
      folder_digest: digest,
      detail: 'reload (SIGHUP or POST /admin/policies/reload) to activate the folder for every instance',
    });
}

/**
 * Loads the active policy version, seeding the store from the policy folder when it holds none
 * (instances starting together seed once: the store serializes seeds). Reloads and rollbacks
 * validate once, here, then activate the version for every instance (topic 'policies') and swap
 * it in on this one at once; every one is audited (tenant "*") with the digest it put in force.
 */
export async function startPolicyVersions(options: PolicyVersionOptions): Promise<PolicyVersions> {
  const { store, policyDir, sha256, audit, metrics, logger } = options;
  const fromStore = (v: PolicyVersion): PolicySet =>
    loadFiles(v.files, `policy version ${v.version}`, sha256, v.version);

  let stored = await store.active();
  if (stored === undefined) {
    const files = readPolicyFiles(policyDir);
    const seed = loadFiles(files, policyDir, sha256, 0);
    stored = await store.seed({
      files,
      digest: seed.digest,
      policyIds: seed.policyIds,
      createdBy: `seed:${policyDir}`,
    });
    logger.info('policy set stored from the policy folder', { version: stored.version, digest: stored.digest });
  }
  let current = fromStore(stored);
  warnIfNoDelegateAction(current, logger, policyDir);
  warnIfFolderDiffers(policyDir, current, sha256, logger);

  /**
   * Puts the store's active version in force here (`known`: a set already loaded, used when it is
   * that version). One refresh at a time, each reading the store after the last one finished, so
   * a slower one never puts back an older version.
   */
  let refreshing: Promise<void> = Promise.resolve();
  const refresh = (known?: PolicySet): Promise<void> => {
    const run = refreshing.then(async () => {
      const active = await store.active();
      if (active === undefined || (active.version === current.version && active.digest === current.digest)) return;
      current =
        known !== undefined && known.version === active.version && known.digest === active.digest
          ? known
          : fromStore(active);
      logger.info('policy version in force', { version: current.version, digest: current.digest });
    });
    refreshing = run.catch(() => undefined);
    return run;
  };

  const change = (status: PolicyChange['status'], to: PolicySet, from: PolicyVersion | undefined): PolicyChange => ({
    status,
    version: to.version,
    digest: to.digest,
    policies: to.policyIds,
    previous: from === undefined ? null : { version: from.version, digest: from.digest },
  });

  /** `asked`: what was refused came in the request (an upload, a version), so it is the caller's error, logged as a warning. */
  async function refused(
    type: 'policy.reload' | 'policy.rollback',
    by: string,
    error: unknown,
    asked = false,
  ): Promise<never> {
    const detail = detailOf(error);
    if (asked) logger.warn(`${type} refused; the running set stays`, { by, detail });
    else logger.error(`${type} refused; the running set stays`, { by, detail });
    if (type === 'policy.reload') metrics.reload('policies', 'refused');
    await audit
      .append({ tenant: '*', type, decision: 'refused', client: by, policy_digest: current.digest, reason: detail })
      .catch(() => undefined);
    throw error instanceof OAuthError ? error.markAudited() : error;
  }

  async function applied(
    type: 'policy.reload' | 'policy.rollback',
    by: string,
    result: PolicyChange,
    where = '',
  ): Promise<PolicyChange> {
    const from = result.previous === null ? 'none' : `version ${result.previous.version} (${result.previous.digest})`;
    const reason =
      result.status === 'unchanged'
        ? `${where}: unchanged, version ${result.version} (${result.digest}) stays: ${result.policies.join(', ')}`
        : `${where === '' ? '' : `${where}: `}version ${result.version} (${result.digest}) from ${from}: ${result.policies.join(', ')}`;
    if (type === 'policy.reload') metrics.reload('policies', 'applied');
    await audit.append({ tenant: '*', type, decision: 'applied', client: by, policy_digest: result.digest, reason });
    logger.info(`${type} applied`, { by, detail: reason });
    return result;
  }

  /** Validates a set once, here, stores it as the next version unless it is the active one, and puts it in force. */
  async function activateFiles(
    read: () => PolicyFiles,
    where: string,
    by: string,
    asked: boolean,
  ): Promise<PolicyChange> {
    let result: PolicyChange;
    try {
      const files = read();
      const loaded = loadFiles(files, where, sha256, 0);
      warnIfNoDelegateAction(loaded, logger, where);
      const { from, to, changed } = await store.store({
        files,
        digest: loaded.digest,
        policyIds: loaded.policyIds,
        createdBy: by,
      });
      const next = Object.assign(loaded, { version: to.version });
      // Committed: a failure to swap here now is retried by the change feed (this instance follows it too).
      await refresh(next).catch((error: unknown) =>
        logger.warn('putting the new policy version in force failed; will retry', { detail: detailOf(error) }),
      );
      result = change(changed ? 'reloaded' : 'unchanged', next, changed ? from : to);
    } catch (error) {
      return refused('policy.reload', by, error, asked);
    }
    return applied('policy.reload', by, result, where);
  }

  return {
    current: () => current,
    refresh: () => refresh(),
    reload: (by) => activateFiles(() => readPolicyFiles(policyDir), policyDir, by, false),
    upload: (files, by) => activateFiles(() => files, 'upload', by, true),
    async rollback(version, by) {
      let result: PolicyChange;
      try {
        const target = await store.get(version);
        if (target === undefined)
          throw new OAuthError('invalid_request', `there is no policy version ${version}`, { status: 404 });
        // Validated again: a set stored by an older Baton may not pass this one's validation.
        const next = fromStore(target);
        const activated = await store.activate(version);
        if (activated === undefined)
          throw new OAuthError('invalid_request', `there is no policy version ${version}`, { status: 404 });
        await refresh(next);
        result = change('rolled back', next, activated.from);
      } catch (error) {
        return refused('policy.rollback', by, error, true);
      }
      return applied('policy.rollback', by, result);
    },
    list: () => store.list(),
  };
}
