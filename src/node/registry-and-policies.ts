import type { AuditLog, Logger, Metrics } from '../core/ports.js';
import type { Registry } from '../core/registry/registry.js';
import type { Config } from '../config.js';
import { loadRegistryFile } from './files.js';

/** Where the registry is read from (the policy set: policy-versions.ts). */
export type SourceFiles = Pick<Config, 'registryFile'>;

/** The registry a Baton runs with, read from its file; a re-read swaps in the new one only if it is valid. */
export interface RegistryAndPolicies {
  readonly registry: () => Registry;
  rereadRegistry(): Promise<void>;
}

/** Re-reads the registry on request; `by` names who asked (an operator, SIGHUP). Rejects, keeping the running one, once the refusal is audited. */
export interface Reloads {
  readonly registry: (by: string) => Promise<void>;
}

/** Reads the configured registry file. */
export async function loadRegistryAndPolicies(
  files: SourceFiles,
  issuer: string,
  _logger: Logger,
  fetchImpl?: typeof fetch,
): Promise<RegistryAndPolicies> {
  let registry = await loadRegistryFile(files.registryFile, issuer, fetchImpl);
  return {
    registry: () => registry,
    async rereadRegistry() {
      registry = await loadRegistryFile(files.registryFile, issuer, fetchImpl);
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
    type: 'registry.reload',
    by: string,
    run: () => Promise<T>,
    describe: (result: T) => string,
  ): Promise<T> => {
    const what = 'registry';
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
        () => sources.rereadRegistry(),
        () => files.registryFile,
      ),
  };
}
