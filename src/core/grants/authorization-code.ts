import { z } from 'zod';
import { OAuthError } from '../errors.js';
import { peekJwt } from '../tokens/jwt.js';
import type { Caller, Registry } from '../registry/registry.js';
import { assertInGoodStanding, grantPrincipals } from '../registry/standing.js';
import type { ServiceContext } from '../context.js';
import type { TokenResponse } from '../tokens/mint.js';
import type { AuditTrail } from '../audit/chain.js';
import { sha256Base64url } from '../secrets.js';
import { verifyPkce } from '../code-flow/pkce.js';
import type { Grant } from './grant.js';
import { callerInTenant } from '../clients/metadata-document.js';
import { resourceParameter, tokenTypes } from './parameters.js';
import { issueWithRefresh, narrowAudience, revokeGrant } from './refresh-token.js';
import { proveActor } from './token-exchange.js';

const grantType = 'authorization_code';

const schema = z.object({
  grant_type: z.literal(grantType),
  code: z.string({ error: 'is required' }).min(1, 'is required').max(256),
  redirect_uri: z.string({ error: 'is required' }).min(1, 'is required').max(2048),
  code_verifier: z.string().max(256).optional(),
  actor_token: z.string().min(1, 'must not be empty').optional(),
  actor_token_type: z.string().min(1, 'must not be empty').optional(),
  resource: resourceParameter,
});
export type AuthorizationCodeRequest = z.infer<typeof schema>;

/**
 * RFC 6749 §4.1.3 with PKCE (S256) and the on-behalf-of draft: the code is single use and bound
 * to client, redirect URI, challenge, user, agent, scope and details; when it names an agent the
 * request must carry that agent's actor_token. A reused code revokes what was issued from it.
 */
export const authorizationCode: Grant<typeof schema> = {
  grantType,
  schema,
  auditType: 'token.authorization_code',
  publicClients: true,
  handle: redeemCode,
};

/**
 * The on-behalf-of draft sends `actor_token` without `actor_token_type` at this endpoint; the
 * token says what it is, as the exchange tells them apart: Baton's own token is an agent token,
 * anything else an agent's assertion.
 */
function actorTokenType(ctx: ServiceContext, request: AuthorizationCodeRequest): string | undefined {
  if (request.actor_token === undefined || request.actor_token_type !== undefined) return request.actor_token_type;
  return peekJwt(request.actor_token, 'actor_token', 'invalid_request').payload.iss === ctx.issuer
    ? tokenTypes.accessToken
    : tokenTypes.jwt;
}

async function redeemCode(
  ctx: ServiceContext,
  registry: Registry,
  presented: Caller,
  request: AuthorizationCodeRequest,
  trail: AuditTrail,
  requestId: string | null,
): Promise<TokenResponse> {
  const redeemed = await ctx.grants.redeemCode(sha256Base64url(ctx.sha256, request.code));
  if (redeemed.status === 'unknown') throw new OAuthError('invalid_grant', 'authorization code is invalid');
  if (redeemed.status === 'expired') throw new OAuthError('invalid_grant', 'authorization code has expired');
  trail.tenant = redeemed.tenant;
  trail.root_grant = redeemed.grantId;
  if (redeemed.status === 'revoked') throw new OAuthError('invalid_grant', 'authorization code has been revoked');
  if (redeemed.status === 'reused') {
    await revokeGrant(ctx, redeemed.tenant, redeemed.grantId);
    throw new OAuthError(
      'invalid_grant',
      'authorization code has already been used; tokens issued from it are revoked',
    );
  }
  const { detail } = redeemed;
  trail.user = detail.user;
  trail.actor_chain = detail.agent === null ? [] : [detail.agent];
  if (detail.clientId !== presented.id)
    throw new OAuthError('invalid_grant', 'authorization code was issued to another client');
  const caller = callerInTenant(registry, presented, redeemed.tenant, ctx.clock.now());
  if (request.redirect_uri !== detail.redirectUri)
    throw new OAuthError('invalid_grant', 'redirect_uri does not match the authorization request');
  verifyPkce(ctx.sha256, request.code_verifier, detail.codeChallenge);
  assertInGoodStanding(registry, redeemed.tenant, grantPrincipals(detail), ctx.clock.now(), 'invalid_grant');
  if (detail.agent !== null) {
    if (request.actor_token === undefined)
      throw new OAuthError('invalid_grant', `actor_token is required: the code was issued for agent "${detail.agent}"`);
    let actor;
    try {
      actor = await proveActor(ctx, registry, caller, {
        actor_token: request.actor_token,
        actor_token_type: actorTokenType(ctx, request),
      });
    } catch (error) {
      throw error instanceof OAuthError
        ? new OAuthError('invalid_grant', error.description, error.detail === undefined ? {} : { detail: error.detail })
        : error;
    }
    if (actor.id !== detail.agent)
      throw new OAuthError('invalid_grant', 'actor_token does not prove the requested actor');
  }
  return issueWithRefresh(
    ctx,
    caller,
    redeemed.tenant,
    redeemed.grantId,
    detail,
    detail.scope,
    narrowAudience(detail.audience, request.resource),
    authorizationCode.auditType,
    requestId,
  );
}
