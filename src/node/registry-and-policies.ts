import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { loadCedarPolicySet } from '../adapters/cedar/cedar-engine.js';
import { warnIfNoDelegateAction } from '../core/decisions/policy.js';
import type { AuditLog, Logger, Metrics, PolicyEngine } from '../core/ports.js';
import type { Registry } from '../core/registry/registry.js';
import { changeLine, registryDiff, type EntityChange } from '../core/registry/diff.js';
import { registryDocumentSchema, type RegistryDocument } from '../core/registry/document.js';
import type { RegistryStore } from '../core/registry/store.js';
import { compileRegistry } from '../core/registry/compile.js';
import type { Config } from '../config.js';
import { readJsonFile, readPolicyFolder } from './files.js';

/** A loaded policy set, with the ids of its policies. */
export type PolicySet = PolicyEngine & { readonly policyIds: readonly string[] };

/** Where the registry and the policy set are read from. */
export type SourceFiles = Pick<Config, 'registryFile' | 'policyDir'>;

/** The registry in force on this instance, and the store it follows (see followRegistry). */
export interface RegistrySource {
  readonly registry: () => Registry;
  readonly store: RegistryStore;
}

/**
 * Reads and validates a registry file, as a document to store: a bad file is a RegistryError
 * naming the file, the path in it and the reason, and nothing is stored.
 */
export async function readRegistryFile(file: string, issuer: string): Promise<RegistryDocument> {
  const content = readJsonFile(file);
  await compileRegistry(content, { issuer, file });
  return registryDocumentSchema.parse(content);
}

/**
 * Applies a registry file to the store in one edit (the one way a file is applied: reloads and
 * `baton registry apply`); returns the version in force, whether this wrote it, and what changed.
 * The same file again changes nothing and writes no version.
 */
export async function applyRegistryFile(
  store: RegistryStore,
  file: string,
  issuer: string,
  by: string,
): Promise<{ version: number; changed: boolean; changes: EntityChange[] }> {
  const document = await readRegistryFile(file, issuer);
  let changes: EntityChange[] = [];
  const result = await store.edit(by, (current) => {
    changes = registryDiff(current, document);
    return document;
  });
  return { version: result.version, changed: result.changed, changes: result.changed ? changes : [] };
}

/** The registry and the policy set a Baton runs with; a re-read swaps in the new one only if it is valid. */
export interface RegistryAndPolicies {
  readonly registry: () => Registry;
  readonly policies: () => PolicySet;
  /** Applies the registry file to the stored registry (in force here at once, everywhere within a second); returns what changed. */
  rereadRegistry(by: string): Promise<string>;
  /** Returns the new set's policy ids. */
  rereadPolicies(): Promise<readonly string[]>;
}

/** Re-reads the policy set or the registry on request; `by` names who asked (an operator, SIGHUP). Rejects, keeping the running one, once the refusal is audited. */
export interface Reloads {
  readonly policies: (by: string) => Promise<readonly string[]>;
  readonly registry: (by: string) => Promise<void>;
}

function readPolicies(policyDir: string, logger: Logger): PolicySet {
  const policies = loadCedarPolicySet(cedar, readPolicyFolder(policyDir));
  warnIfNoDelegateAction(policies, logger, policyDir);
  return policies;
}

/** Reads the policy folder (a policy set without Action::"delegate" is warned about, now and at each re-read) beside the stored registry. */
export function loadRegistryAndPolicies(
  files: SourceFiles,
  issuer: string,
  logger: Logger,
  registry: RegistrySource,
): RegistryAndPolicies {
  let policies = readPolicies(files.policyDir, logger);
  return {
    registry: registry.registry,
    policies: () => policies,
    async rereadRegistry(by) {
      const { version, changed, changes } = await applyRegistryFile(registry.store, files.registryFile, issuer, by);
      return `${files.registryFile}: version ${version}: ${changed ? changes.map(changeLine).join('; ') || 'reordered' : 'no changes'}`;
    },
    async rereadPolicies() {
      policies = readPolicies(files.policyDir, logger);
      return policies.policyIds;
    },
  };
}

/** Reloads as system events (tenant "*"): audited, logged and counted whether applied or refused. */
export function auditedReloads(
  sources: RegistryAndPolicies,
  files: SourceFiles,
  parts: { readonly audit: AuditLog; readonly metrics: Metrics; readonly logger: Logger },
): Reloads {
  const { audit, metrics, logger } = parts;
  const audited = async <T>(
    type: 'policy.reload' | 'registry.reload',
    by: string,
    run: () => Promise<T>,
    describe: (result: T) => string,
  ): Promise<T> => {
    const what = type === 'policy.reload' ? 'policies' : 'registry';
    try {
      const result = await run();
      metrics.reload(what, 'applied');
      await audit.append({ tenant: '*', type, decision: 'applied', client: by, reason: describe(result) });
      logger.info(`${type} applied`, { by, detail: describe(result) });
      return result;
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      logger.error(`${type} refused; the running one stays`, { by, detail });
      metrics.reload(what, 'refused');
      await audit.append({ tenant: '*', type, decision: 'refused', client: by, reason: detail }).catch(() => undefined);
      throw error;
    }
  };
  return {
    registry: (by) =>
      audited(
        'registry.reload',
        by,
        () => sources.rereadRegistry(by),
        (changes) => changes,
      ).then(() => undefined),
    policies: (by) =>
      audited(
        'policy.reload',
        by,
        () => sources.rereadPolicies(),
        (ids) => `${files.policyDir}: ${ids.join(', ')}`,
      ),
  };
}
