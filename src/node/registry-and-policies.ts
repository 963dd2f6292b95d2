import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { loadCedarPolicySet } from '../adapters/cedar/cedar-engine.js';
import { warnIfNoDelegateAction } from '../core/decisions/policy.js';
import type { AuditLog, Logger, Metrics, PolicyEngine } from '../core/ports.js';
import type { Registry } from '../core/registry/registry.js';
import type { Config } from '../config.js';
import { loadRegistryFile, readPolicyFolder } from './files.js';

/** A loaded policy set, with the ids of its policies. */
export type PolicySet = PolicyEngine & { readonly policyIds: readonly string[] };

/** Where the registry and the policy set are read from. */
export type SourceFiles = Pick<Config, 'registryFile' | 'policyDir'>;

/** The registry and the policy set a Baton runs with, read from their files; a re-read swaps in the new one only if it is valid. */
export interface RegistryAndPolicies {
  readonly registry: () => Registry;
  readonly policies: () => PolicySet;
  rereadRegistry(): Promise<void>;
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

/** Reads the configured registry file and policy folder (a policy set without Action::"delegate" is warned about, now and at each re-read). */
export async function loadRegistryAndPolicies(
  files: SourceFiles,
  issuer: string,
  logger: Logger,
  fetchImpl?: typeof fetch,
): Promise<RegistryAndPolicies> {
  let registry = await loadRegistryFile(files.registryFile, issuer, fetchImpl);
  let policies = readPolicies(files.policyDir, logger);
  return {
    registry: () => registry,
    policies: () => policies,
    async rereadRegistry() {
      registry = await loadRegistryFile(files.registryFile, issuer, fetchImpl);
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
        () => sources.rereadRegistry(),
        () => files.registryFile,
      ),
    policies: (by) =>
      audited(
        'policy.reload',
        by,
        () => sources.rereadPolicies(),
        (ids) => `${files.policyDir}: ${ids.join(', ')}`,
      ),
  };
}
