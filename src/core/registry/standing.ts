import { OAuthError, echo, type OAuthErrorCode } from '../errors.js';
import { isDocumentClientId } from '../clients/document-client-id.js';
import { suspensionKey, type Caller, type Registry, type Suspension } from './registry.js';

/** Someone a grant is for or made by: an agent (by id), a client (by client_id) or a user (by sub). */
export interface Principal {
  readonly kind: Suspension['kind'];
  readonly id: string;
}

/** The principal a caller at the token endpoint stands for; a resource server is never suspended. */
export function callerPrincipal(caller: Caller): Principal | undefined {
  return caller.kind === 'resource_server' ? undefined : { kind: caller.kind, id: caller.id };
}

/** Why a principal may not take part in a grant, in words fit for the caller. */
export interface StandingProblem {
  readonly status: 'suspended' | 'expired';
  readonly description: string;
}

/**
 * Why `principal` may not take part in a new grant in `tenant` at `now` (ms, the service clock):
 * it is suspended, or it is an agent past its `expires_at`. Undefined when it is in good standing.
 */
export function standingProblem(
  registry: Registry,
  tenant: string,
  principal: Principal,
  now: number,
): StandingProblem | undefined {
  // A user's sub comes from a token: it is echoed, never carried in whole (and only once refused:
  // this check is on every grant and decision).
  const name = (): string => (principal.kind === 'user' ? echo(principal.id) : principal.id);
  if (registry.suspensions.size > 0 && registry.suspensions.has(suspensionKey(tenant, principal.kind, principal.id)))
    return { status: 'suspended', description: `${principal.kind} ${name()} is suspended` };
  if (principal.kind === 'agent') {
    const expiresAt = registry.agents.get(principal.id)?.expiresAt;
    // At its expiry the agent is gone, whatever a periodic sweep has yet to remove.
    if (expiresAt !== undefined && now >= expiresAt)
      return { status: 'expired', description: `agent ${name()} has expired` };
  }
  return undefined;
}

/** The first of `principals` (in order) not in good standing in `tenant` at `now`, and why. */
export function firstStandingProblem(
  registry: Registry,
  tenant: string,
  principals: readonly (Principal | undefined)[],
  now: number,
): StandingProblem | undefined {
  for (const principal of principals) {
    const problem = principal === undefined ? undefined : standingProblem(registry, tenant, principal, now);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/**
 * The one check of every grant path: refuses with `code` the first of `principals` (in order)
 * that is suspended or expired in `tenant`, describing which and why.
 */
export function assertInGoodStanding(
  registry: Registry,
  tenant: string,
  principals: readonly (Principal | undefined)[],
  now: number,
  code: OAuthErrorCode,
): void {
  const problem = firstStandingProblem(registry, tenant, principals, now);
  if (problem !== undefined) throw new OAuthError(code, problem.description);
}

/** Who a code-flow grant is for: its user, then the agent consented to, if any (the client is the caller). */
export function grantPrincipals(grant: { readonly user: string; readonly agent: string | null }): Principal[] {
  return [
    { kind: 'user', id: grant.user },
    ...(grant.agent === null ? [] : [{ kind: 'agent' as const, id: grant.agent }]),
  ];
}

/** What a token says of who it is for and by, as the standing check reads it. */
export interface TokenParties {
  readonly tenant: string;
  readonly sub: string;
  readonly clientId: string;
}

/**
 * Why a token Baton issued may not be used now: its user, an actor of its chain or the client it
 * was issued to is suspended, or an actor has expired. A suspension revokes what the principal
 * holds, but an expiry revokes nothing: this keeps such a token from being honoured meanwhile.
 */
export function tokenStandingProblem(
  registry: Registry,
  token: TokenParties,
  /** Actor ids, current actor first. */
  chain: readonly string[],
  now: number,
): StandingProblem | undefined {
  const client = registry.callers.get(token.clientId);
  return firstStandingProblem(
    registry,
    token.tenant,
    [
      { kind: 'user', id: token.sub },
      ...chain.map((id) => ({ kind: 'agent' as const, id })),
      // A client identified by a metadata document is in no registry, but may be suspended.
      client === undefined
        ? isDocumentClientId(token.clientId)
          ? { kind: 'client', id: token.clientId }
          : undefined
        : callerPrincipal(client),
    ],
    now,
  );
}
