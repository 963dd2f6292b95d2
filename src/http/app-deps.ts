import type { Context } from 'hono';
import type { CheckpointWitness } from '../core/audit/checkpoint.js';
import type { AuditSinkStore } from '../core/audit/sinks.js';
import type { RefusalTally } from '../core/audit/refusal-tally.js';
import type { ServiceContext } from '../core/context.js';
import type { PolicyAdmin } from '../core/decisions/policy-set.js';
import type { AuditQueries, Logger } from '../core/ports.js';
import type { RegistryStore } from '../core/registry/store.js';
import type { BodyReader } from './body.js';

/** What `createApp` is built from: the service, and what only the runtime entry point can give it. */
export interface AppDeps {
  readonly service: ServiceContext;
  readonly logger: Logger;
  readonly maxBodyBytes: number;
  /** Resolves when the database answers; rejects otherwise. */
  readonly checkReady: () => Promise<void>;
  /** Re-read and swap in the registry; reject (keeping the old one) when invalid, once the refusal is audited. `by` names who asked. */
  readonly reload: {
    readonly registry: (by: string) => Promise<void>;
  };
  /** The deployment-wide policy set's versions: reload from the folder, roll back, list. */
  readonly policies: PolicyAdmin;
  readonly auditQueries: AuditQueries;
  /** The registry kept in the database, edited by the admin API (absent where it is bundled: no admin API then); edits swap this instance's registry at once. */
  readonly registryStore?: RegistryStore;
  /** The tenants' audit sinks (absent where Baton does not push entries: no admin API for them then). */
  readonly auditSinks?: AuditSinkStore;
  /** The audit keys and the checkpoints known outside the database; none where no audit key is configured. */
  readonly checkpoints?: CheckpointWitness;
  /** How request bodies are read (default: the Fetch API stream); the Node entry reads Node's own request. */
  readonly readBody?: BodyReader;
  /** Prometheus exposition of the process's metrics. */
  readonly metricsText: () => Promise<{ contentType: string; body: string }>;
  /** Bounds the audit entries of refusals that have none of their own; kept by the caller, so it outlives a Workers request. */
  readonly refusals: RefusalTally;
  /** The remote address of a request, when the runtime knows it (the source of an unauthenticated refusal). */
  readonly remoteAddress?: (c: Context) => string | undefined;
}
