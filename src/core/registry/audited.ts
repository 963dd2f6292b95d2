import type { AuditType } from '../audit/chain.js';
import { OAuthError, refusalReason } from '../errors.js';
import type { AuditLog } from '../ports.js';
import type { Caller } from './registry.js';

/** Who made a call that changes the registry, and how its refusal is recorded. */
export interface RegistryCall {
  readonly caller: Caller;
  readonly type: AuditType;
  readonly requestId: string | null;
  /** What was asked, put before the refusal's reason. */
  readonly what?: string;
}

/** Runs a registry call; a refusal is audited in the caller's tenant first, then rethrown marked as audited. */
export async function refusalAudited<T>(audit: AuditLog, call: RegistryCall, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    const reason = refusalReason(error);
    await audit.append({
      tenant: call.caller.tenant,
      type: call.type,
      decision: 'refused',
      client: call.caller.id,
      reason: call.what === undefined ? reason : `${call.what}: ${reason}`,
      request_id: call.requestId,
    });
    throw error.markAudited();
  }
}
