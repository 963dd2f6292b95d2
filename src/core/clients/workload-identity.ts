import { OAuthError, type OAuthErrorCode } from '../errors.js';
import { verifyJwt } from '../tokens/jwt.js';
import type { Clock } from '../ports.js';
import type { Agent, Registry, WorkloadIssuer } from '../registry/registry.js';

export interface WorkloadContext {
  readonly clock: Clock;
  readonly limits: { readonly clockToleranceSeconds: number };
}

/**
 * Verifies a workload identity token (a Kubernetes service-account token, a SPIFFE JWT-SVID, a CI
 * OIDC token) from a registered workload issuer and returns the agent its `sub` maps to. Such a
 * token is a bearer credential reused for its whole lifetime by design, so its `jti` is not consumed.
 */
export async function verifyWorkloadToken(
  ctx: WorkloadContext,
  registry: Registry,
  workload: WorkloadIssuer,
  token: string,
  param: string,
  errorCode: OAuthErrorCode,
): Promise<Agent> {
  const { payload } = await verifyJwt(token, {
    param,
    errorCode,
    resolve: workload.resolve,
    algorithms: workload.algorithms,
    issuer: workload.issuer,
    audience: workload.audiences,
    ...(workload.typ === undefined ? {} : { typ: workload.typ }),
    requiredClaims: ['sub', 'exp'],
    clock: ctx.clock,
    clockToleranceSeconds: ctx.limits.clockToleranceSeconds,
  });
  const sub = payload.sub as string;
  const mapped = workload.subjects.find((entry) => entry.pattern.test(sub));
  // The registry refuses a mapping to an unknown agent or one of another tenant; checked again so a
  // registry built another way cannot lend an agent across tenants.
  const agent = mapped === undefined ? undefined : registry.agents.get(mapped.agent);
  if (agent === undefined || agent.tenant !== workload.tenant)
    throw new OAuthError(errorCode, `${param} subject is not mapped to an agent`);
  return agent;
}
