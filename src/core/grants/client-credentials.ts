import { z } from 'zod';
import { attenuateScope, audienceScopes, resolveTargets } from '../tokens/attenuate.js';
import { attenuateAuthorizationDetails, parseAuthorizationDetails } from '../tokens/authorization-details.js';
import type { Caller, Registry } from '../registry/registry.js';
import { issue, type TokenResponse } from '../tokens/mint.js';
import type { AuditTrail } from '../audit/chain.js';
import type { ServiceContext } from '../context.js';
import type { Grant } from './grant.js';
import { audienceParameter, resourceParameter, scopeParameter } from './parameters.js';

const grantType = 'client_credentials';

const schema = z.object({
  grant_type: z.literal(grantType),
  audience: audienceParameter,
  resource: resourceParameter,
  scope: scopeParameter.optional(),
  authorization_details: z.string().optional(),
});
export type ClientCredentialsRequest = z.infer<typeof schema>;

/**
 * RFC 6749 §4.4: a client, agent or resource server gets a token for itself. Without a target
 * the token is for Baton (an agent token usable as `actor_token`, or an auditor's token).
 */
export const clientCredentials: Grant<typeof schema> = {
  grantType,
  schema,
  auditType: 'token.client_credentials',
  publicClients: false,
  handle: issueForCaller,
};

// The trail already names the caller: this grant establishes nothing else before it mints.
async function issueForCaller(
  ctx: ServiceContext,
  registry: Registry,
  caller: Caller,
  request: ClientCredentialsRequest,
  _trail: AuditTrail,
  requestId: string | null,
): Promise<TokenResponse> {
  const requested = parseAuthorizationDetails(
    request.authorization_details,
    ctx.detailTypes,
    ctx.limits.maxAuthorizationDetails,
  );
  // A client's registered entries cap what it may ask for; they are not granted unasked.
  const authorizationDetails =
    requested === undefined
      ? []
      : attenuateAuthorizationDetails(
          ctx.detailTypes,
          requested,
          caller.authorizationDetails,
          "the client's registration",
        );
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
    issuedAt: now,
    expiresAt: now + ctx.limits.maxTokenLifetimeSeconds,
    parentJti: null,
    rootGrant: null,
    auditType: clientCredentials.auditType,
    requestId,
  });
}
