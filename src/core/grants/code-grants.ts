import { attenuateScope } from '../tokens/attenuate.js';
import type { AuthorizationDetail } from '../tokens/authorization-details.js';
import { OAuthError } from '../errors.js';
import type { GrantDetail } from '../ports.js';
import { peekJwt } from '../tokens/jwt.js';
import type { Caller, Registry } from '../registry/registry.js';
import { tokenTypes, type AuthorizationCodeRequest, type RefreshTokenRequest } from './token-request.js';
import { proveActor } from './token-exchange.js';
import { type ServiceContext } from '../context.js';
import { issue, type TokenResponse } from '../tokens/mint.js';
import { type AuditTrail } from '../audit/chain.js';
import { secret, sha256Base64url } from '../secrets.js';
import { verifyPkce } from '../code-flow/pkce.js';

/** Issues the access token and a fresh refresh token of the same family. */
async function issueWithRefresh(ctx: ServiceContext, caller: Caller, tenant: string, family: string, detail: GrantDetail, scope: readonly string[], auditType: 'token.authorization_code' | 'token.refresh', requestId: string | null): Promise<TokenResponse & { refresh_token: string }> {
  const now = Math.floor(ctx.clock.now() / 1000);
  const response = await issue(ctx, {
    tenant,
    subject: detail.user,
    caller,
    audience: detail.audience,
    scope,
    authorizationDetails: detail.authorizationDetails as AuthorizationDetail[],
    act: detail.agent === null ? undefined : { sub: detail.agent },
    expiresAt: now + ctx.limits.maxTokenLifetimeSeconds,
    parentJti: null,
    rootGrant: family,
    auditType,
    requestId,
  });
  const refresh = secret();
  // A refresh token keeps what the grant was for, not how the code was delivered.
  const kept: GrantDetail = { clientId: detail.clientId, user: detail.user, agent: detail.agent, scope, audience: detail.audience, authorizationDetails: detail.authorizationDetails };
  await ctx.grants.saveRefresh(sha256Base64url(ctx.sha256, refresh), tenant, family, kept, new Date(ctx.clock.now() + ctx.limits.refreshTokenLifetimeSeconds * 1000));
  return { ...response, refresh_token: refresh };
}

/**
 * A replayed code or refresh token: the grant is revoked as a whole, with every token issued
 * under it, including those a redemption still in flight stores after this (see Revocations).
 */
async function revokeGrant(ctx: ServiceContext, tenant: string, grant: string): Promise<void> {
  await ctx.revocations.revoke(tenant, { kind: 'grant', grant });
}

/**
 * The on-behalf-of draft sends `actor_token` without `actor_token_type` at this endpoint; the
 * token says what it is, as the exchange tells them apart: Baton's own token is an agent token,
 * anything else an agent's assertion.
 */
function actorTokenType(ctx: ServiceContext, request: AuthorizationCodeRequest): string | undefined {
  if (request.actor_token === undefined || request.actor_token_type !== undefined) return request.actor_token_type;
  return peekJwt(request.actor_token, 'actor_token', 'invalid_request').payload.iss === ctx.issuer ? tokenTypes.accessToken : tokenTypes.jwt;
}

/**
 * RFC 6749 §4.1.3 with PKCE (S256) and the on-behalf-of draft: the code is single use and bound
 * to client, redirect URI, challenge, user, agent, scope and details; when it names an agent the
 * request must carry that agent's actor_token. A reused code revokes what was issued from it.
 */
export async function authorizationCode(ctx: ServiceContext, registry: Registry, caller: Caller, request: AuthorizationCodeRequest, trail: AuditTrail, requestId: string | null): Promise<TokenResponse> {
  const redeemed = await ctx.grants.redeemCode(sha256Base64url(ctx.sha256, request.code));
  if (redeemed.status === 'unknown') throw new OAuthError('invalid_grant', 'authorization code is invalid');
  if (redeemed.status === 'expired') throw new OAuthError('invalid_grant', 'authorization code has expired');
  trail.tenant = redeemed.tenant;
  trail.root_grant = redeemed.grantId;
  if (redeemed.status === 'revoked') throw new OAuthError('invalid_grant', 'authorization code has been revoked');
  if (redeemed.status === 'reused') {
    await revokeGrant(ctx, redeemed.tenant, redeemed.grantId);
    throw new OAuthError('invalid_grant', 'authorization code has already been used; tokens issued from it are revoked');
  }
  const { detail } = redeemed;
  trail.user = detail.user;
  trail.actor_chain = detail.agent === null ? [] : [detail.agent];
  if (detail.clientId !== caller.id) throw new OAuthError('invalid_grant', 'authorization code was issued to another client');
  if (request.redirect_uri !== detail.redirectUri) throw new OAuthError('invalid_grant', 'redirect_uri does not match the authorization request');
  verifyPkce(ctx.sha256, request.code_verifier, detail.codeChallenge);
  if (detail.agent !== null) {
    if (request.actor_token === undefined) throw new OAuthError('invalid_grant', `actor_token is required: the code was issued for agent "${detail.agent}"`);
    let actor;
    try {
      actor = await proveActor(ctx, registry, caller, { actor_token: request.actor_token, actor_token_type: actorTokenType(ctx, request) });
    } catch (error) {
      throw error instanceof OAuthError ? new OAuthError('invalid_grant', error.description, error.detail === undefined ? {} : { detail: error.detail }) : error;
    }
    if (actor.id !== detail.agent) throw new OAuthError('invalid_grant', 'actor_token does not prove the requested actor');
  }
  return issueWithRefresh(ctx, caller, redeemed.tenant, redeemed.grantId, detail, detail.scope, 'token.authorization_code', requestId);
}

/** RFC 6749 §6 with rotation: each refresh token works once; a replay revokes its whole family. */
export async function refreshToken(ctx: ServiceContext, caller: Caller, request: RefreshTokenRequest, trail: AuditTrail, requestId: string | null): Promise<TokenResponse> {
  const redeemed = await ctx.grants.redeemRefresh(sha256Base64url(ctx.sha256, request.refresh_token));
  if (redeemed.status === 'unknown' || redeemed.status === 'expired') throw new OAuthError('invalid_grant', 'refresh token is invalid or expired');
  trail.tenant = redeemed.tenant;
  trail.root_grant = redeemed.grantId;
  if (redeemed.status === 'revoked') throw new OAuthError('invalid_grant', 'refresh token has been revoked');
  if (redeemed.status === 'reused') {
    await revokeGrant(ctx, redeemed.tenant, redeemed.grantId);
    throw new OAuthError('invalid_grant', 'refresh token has already been used; its family is revoked');
  }
  const { detail } = redeemed;
  if (detail.clientId !== caller.id) throw new OAuthError('invalid_grant', 'refresh token was issued to another client');
  const scope = attenuateScope(request.scope, [['the scope granted', new Set(detail.scope)]]);
  return issueWithRefresh(ctx, caller, redeemed.tenant, redeemed.grantId, detail, request.scope === undefined ? detail.scope : scope, 'token.refresh', requestId);
}
