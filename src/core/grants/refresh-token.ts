import { z } from 'zod';
import { attenuateScope } from '../tokens/attenuate.js';
import type { AuthorizationDetail } from '../tokens/authorization-details.js';
import { OAuthError, echo } from '../errors.js';
import type { GrantDetail } from '../ports.js';
import type { Caller, Registry } from '../registry/registry.js';
import { assertInGoodStanding, grantPrincipals } from '../registry/standing.js';
import type { ServiceContext } from '../context.js';
import { issue, type TokenResponse } from '../tokens/mint.js';
import type { AuditTrail, AuditType } from '../audit/chain.js';
import { secret, sha256Base64url } from '../secrets.js';
import type { Grant } from './grant.js';
import { callerInTenant } from '../clients/metadata-document.js';
import { resourceParameter, scopeParameter } from './parameters.js';

const grantType = 'refresh_token';

const schema = z.object({
  grant_type: z.literal(grantType),
  refresh_token: z.string({ error: 'is required' }).min(1, 'is required').max(256),
  scope: scopeParameter.optional(),
  resource: resourceParameter,
});
export type RefreshTokenRequest = z.infer<typeof schema>;

/** RFC 6749 §6 with rotation: each refresh token works once; a replay revokes its whole family. */
export const refreshToken: Grant<typeof schema> = {
  grantType,
  schema,
  auditType: 'token.refresh',
  publicClients: true,
  handle: redeemRefreshToken,
};

async function redeemRefreshToken(
  ctx: ServiceContext,
  registry: Registry,
  presented: Caller,
  request: RefreshTokenRequest,
  trail: AuditTrail,
  requestId: string | null,
): Promise<TokenResponse> {
  const redeemed = await ctx.grants.redeemRefresh(sha256Base64url(ctx.sha256, request.refresh_token));
  if (redeemed.status === 'unknown' || redeemed.status === 'expired')
    throw new OAuthError('invalid_grant', 'refresh token is invalid or expired');
  trail.tenant = redeemed.tenant;
  trail.root_grant = redeemed.grantId;
  if (redeemed.status === 'revoked') throw new OAuthError('invalid_grant', 'refresh token has been revoked');
  if (redeemed.status === 'reused') {
    await revokeGrant(ctx, redeemed.tenant, redeemed.grantId);
    throw new OAuthError('invalid_grant', 'refresh token has already been used; its family is revoked');
  }
  const { detail } = redeemed;
  if (detail.clientId !== presented.id)
    throw new OAuthError('invalid_grant', 'refresh token was issued to another client');
  const caller = callerInTenant(registry, presented, redeemed.tenant, ctx.clock.now());
  trail.user = detail.user;
  trail.actor_chain = detail.agent === null ? [] : [detail.agent];
  assertInGoodStanding(registry, redeemed.tenant, grantPrincipals(detail), ctx.clock.now(), 'invalid_grant');
  const scope = attenuateScope(request.scope, [['the scope granted', new Set(detail.scope)]]);
  return issueWithRefresh(
    ctx,
    caller,
    redeemed.tenant,
    redeemed.grantId,
    detail,
    request.scope === undefined ? detail.scope : scope,
    narrowAudience(detail.audience, request.resource),
    refreshToken.auditType,
    requestId,
  );
}

/**
 * The audience of an access token from a grant for `granted`: the RFC 8707 `resource` values of
 * the token request when given, each of which must be one the grant was for; else all of them.
 */
export function narrowAudience(granted: readonly string[], resource: readonly string[]): readonly string[] {
  for (const r of resource)
    if (!granted.includes(r))
      throw new OAuthError('invalid_target', `resource "${echo(r, 120)}" is not one the grant was made for`);
  return resource.length === 0 ? granted : [...new Set(resource)];
}

/**
 * Issues the access token (for `audience`, within the grant's) and a fresh refresh token of the same family: for a redeemed refresh
 * token, and for a redeemed authorization code, which starts the family.
 */
export async function issueWithRefresh(
  ctx: ServiceContext,
  caller: Caller,
  tenant: string,
  family: string,
  detail: GrantDetail,
  scope: readonly string[],
  audience: readonly string[],
  auditType: AuditType,
  requestId: string | null,
): Promise<TokenResponse & { refresh_token: string }> {
  const now = Math.floor(ctx.clock.now() / 1000);
  const response = await issue(ctx, {
    tenant,
    subject: detail.user,
    caller,
    audience,
    scope,
    authorizationDetails: detail.authorizationDetails as AuthorizationDetail[],
    act: detail.agent === null ? undefined : { sub: detail.agent },
    issuedAt: now,
    expiresAt: now + ctx.limits.maxTokenLifetimeSeconds,
    parentJti: null,
    rootGrant: family,
    auditType,
    requestId,
  });
  const refresh = secret();
  // A refresh token keeps what the grant was for, not how the code was delivered.
  const kept: GrantDetail = {
    clientId: detail.clientId,
    user: detail.user,
    agent: detail.agent,
    scope,
    audience: detail.audience,
    authorizationDetails: detail.authorizationDetails,
  };
  await ctx.grants.saveRefresh(
    sha256Base64url(ctx.sha256, refresh),
    tenant,
    family,
    kept,
    new Date(ctx.clock.now() + ctx.limits.refreshTokenLifetimeSeconds * 1000),
  );
  return { ...response, refresh_token: refresh };
}

/**
 * A replayed code or refresh token: the grant is revoked as a whole, with every token issued
 * under it, including those a redemption still in flight stores after this (see Revocations).
 */
export async function revokeGrant(ctx: ServiceContext, tenant: string, grant: string): Promise<void> {
  await ctx.revocations.revoke(tenant, { kind: 'grant', grant });
}
