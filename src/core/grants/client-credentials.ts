import { attenuateScope, audienceScopes, resolveTargets } from '../tokens/attenuate.js';
import { attenuateAuthorizationDetails, parseAuthorizationDetails } from '../tokens/authorization-details.js';
import type { Caller, Registry } from '../registry/registry.js';
import type { ClientCredentialsRequest } from './token-request.js';
import { issue, type TokenResponse } from '../tokens/mint.js';
import { type ServiceContext } from '../context.js';

/**
 * RFC 6749 §4.4: a client, agent or resource server gets a token for itself. Without a target
 * the token is for Baton (an agent token usable as `actor_token`, or an auditor's token).
 */
export async function clientCredentials(ctx: ServiceContext, registry: Registry, caller: Caller, request: ClientCredentialsRequest, requestId: string | null): Promise<TokenResponse> {
  const requested = parseAuthorizationDetails(request.authorization_details, ctx.detailTypes, ctx.limits.maxAuthorizationDetails);
  // A client's registered entries cap what it may ask for; they are not granted unasked.
  const authorizationDetails = requested === undefined ? [] : attenuateAuthorizationDetails(ctx.detailTypes, requested, caller.authorizationDetails, "the client's registration");
  const targets = resolveTargets(registry, caller.tenant, request.audience, request.resource);
  const audience = targets.length > 0 ? targets : [ctx.issuer];
  const scope = attenuateScope(request.scope, [
    ['what this client may request', caller.scope ?? new Set()],
    ['what the audience offers', audienceScopes(registry, audience)],
  ]);
  const now = Math.floor(ctx.clock.now() / 1000);
  return issue(ctx, {
    tenant: caller.tenant,
    subject: caller.id,
    caller,
    audience,
    scope,
    authorizationDetails,
    act: undefined,
    expiresAt: now + ctx.limits.maxTokenLifetimeSeconds,
    parentJti: null,
    rootGrant: null,
    auditType: 'token.client_credentials',
    requestId,
  });
}
