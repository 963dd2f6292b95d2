import type { AuditLog, Logger, Metrics } from '../core/ports.js';
import type { Registry } from '../core/registry/registry.js';
import { changeLine, registryDiff, type EntityChange } from '../core/registry/diff.js';
import { keepRuntimeState } from '../core/registry/sub-agents.js';
import { registryDocumentSchema, type RegistryDocument } from '../core/registry/document.js';
import type { RegistryStore } from '../core/registry/store.js';
import { compileRegistry } from '../core/registry/compile.js';
import type { Config } from '../config.js';
import { readJsonFile } from './files.js';

/** Where the registry file is (the policy set: policy-versions.ts). */
export type SourceFiles = Pick<Config, 'registryFile'>;

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
    // Suspensions and sub-agents made at run time stay (a file never lifts a suspension).
    const next = keepRuntimeState(current, document);
    changes = registryDiff(current, next);
    return next;
  });
  return { version: result.version, changed: result.changed, changes: result.changed ? changes : [] };
}

/** The registry a Baton runs with, and the file an operator's reload applies to it. */
export interface RegistryAndPolicies {
  readonly registry: () => Registry;
  /** Applies the registry file to the stored registry (in force here at once, everywhere within a second); returns what changed. */
  rereadRegistry(by: string): Promise<string>;
}

/** Re-reads the registry on request; `by` names who asked (an operator, SIGHUP). Rejects, keeping the running one, once the refusal is audited. */
export interface Reloads {
  readonly registry: (by: string) => Promise<void>;
}

/** The stored registry, and its file as what a reload applies. */
export function loadRegistryAndPolicies(
  files: SourceFiles,
  issuer: string,
  registry: RegistrySource,
): RegistryAndPolicies {
  return {
    registry: registry.registry,
    async rereadRegistry(by) {
      const { version, changed, changes } = await applyRegistryFile(registry.store, files.registryFile, issuer, by);
      return `${files.registryFile}: version ${version}: ${changed ? changes.map(changeLine).join('; ') || 'reordered' : 'no changes'}`;
    },
  };
}

/** Reloads as system events (tenant "*"): audited, logged and counted whether applied or refused. */
export function auditedReloads(
  sources: RegistryAndPolicies,
  parts: { readonly audit: AuditLog; readonly metrics: Metrics; readonly logger: Logger },
): Reloads {
  const { audit, metrics, logger } = parts;
  const type = 'registry.reload';
  return {
    async registry(by) {
      try {
        const detail = await sources.rereadRegistry(by);
        metrics.reload('registry', 'applied');
        await audit.append({ tenant: '*', type, decision: 'applied', client: by, reason: detail });
        logger.info(`${type} applied`, { by, detail });
      } catch (error) {
        const detail = error instanceof Error ? error.message : String(error);
        logger.error(`${type} refused; the running one stays`, { by, detail });
        metrics.reload('registry', 'refused');
        await audit
          .append({ tenant: '*', type, decision: 'refused', client: by, reason: detail })
          .catch(() => undefined);
        throw error;
      }
    },
  };
}
