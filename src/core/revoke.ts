import { z } from 'zod';
import { verifyBatonToken, type BatonToken } from './baton-token.js';
import { authenticateClient } from './client-auth.js';
import { OAuthError, invalidRequest } from './errors.js';
import type { Caller } from './registry.js';
import type { RevocationTarget } from './revocation.js';
import { clientAuthParamsSchema, type FormParams } from './token-request.js';
import type { TokenServiceContext } from './token-service.js';
import type { ActClaim } from './ports.js';
import { scopeClaim } from './attenuate.js';

const tokenParam = z.object({ token: z.string({ error: 'is required' }).min(1, 'is required'), token_type_hint: z.string().optional() });

function tokenOf(params: FormParams): string {
  const parsed = tokenParam.safeParse(params);
  if (!parsed.success) throw invalidRequest(`token ${parsed.error.issues[0]?.message ?? 'is invalid'}`);
  return parsed.data.token;
}

/** A Baton token that verifies now, or undefined (invalid, expired, revoked, foreign). */
async function liveToken(ctx: TokenServiceContext, token: string, tenant: string): Promise<BatonToken | undefined> {
  if (token.length > ctx.limits.maxTokenBytes) return undefined;
  try {
    const verified = await verifyBatonToken(ctx, token, 'token');
    return verified.tenant === tenant ? verified : undefined;
  } catch {
    return undefined;
  }
}

/** True when the token, or a token it derives from, was issued to `caller`. */
async function issuedToOrDerived(ctx: TokenServiceContext, token: BatonToken, caller: Caller): Promise<boolean> {
  let lineage = await ctx.store.findToken(token.tenant, token.jti);
  for (let hops = 0; lineage !== undefined && hops < 64; hops++) {
    if (lineage.clientId === caller.id) return true;
    if (lineage.parentJti === null) return false;
    lineage = await ctx.store.findToken(token.tenant, lineage.parentJti);
  }
  return false;
}

/** Records a revocation and how far it cascaded. */
async function auditRevocation(ctx: TokenServiceContext, tenant: string, client: string, target: RevocationTarget, revoked: readonly string[], requestId: string | null): Promise<void> {
  const what =
    target.kind === 'token' ? 'the token' : target.kind === 'grant' ? `grant ${target.grant}` : `everything ${target.kind} ${target.kind === 'agent' ? target.agent : target.user} holds or appears in`;
  await ctx.audit.append({
    tenant,
    type: 'token.revocation',
    decision: 'applied',
    jti: target.kind === 'token' ? target.jti : null,
    client,
    ...(target.kind === 'agent' ? { actor_chain: [target.agent] } : {}),
    ...(target.kind === 'user' ? { user: target.user } : {}),
    reason: `revoked ${what}: ${revoked.length} token${revoked.length === 1 ? '' : 's'}`,
    request_id: requestId,
  });
}

/**
 * RFC 7009: a client revokes a token issued to it, or derived from one issued to it; the token
 * and everything derived from it are revoked. An unknown or invalid token is answered like a
 * revoked one (200), so nothing is learned about it. `observe` learns the authenticated client.
 */
export async function revokeToken(ctx: TokenServiceContext, params: FormParams, authorization: string | undefined, requestId: string | null, observe?: (caller: Caller) => void): Promise<void> {
  const client = clientAuthParamsSchema.safeParse(params);
  if (!client.success) throw invalidRequest('malformed client authentication parameters');
  const caller = await authenticateClient(ctx, ctx.registry(), authorization, client.data);
  observe?.(caller);
  const token = await liveToken(ctx, tokenOf(params), caller.tenant);
  if (token === undefined) return;
  if (!(await issuedToOrDerived(ctx, token, caller))) {
    await ctx.audit.append({ tenant: caller.tenant, type: 'token.revocation', decision: 'refused', jti: token.jti, client: caller.id, reason: 'unauthorized_client: the token was not issued to this client', request_id: requestId });
    throw new OAuthError('unauthorized_client', 'the token was not issued to this client').markAudited();
  }
  const target: RevocationTarget = { kind: 'token', jti: token.jti };
  const revoked = await ctx.revocations.revoke(caller.tenant, target);
  ctx.metrics.revocation(revoked.length);
  await auditRevocation(ctx, caller.tenant, caller.id, target, revoked, requestId);
}

/** The operator's kill switch: revoke everything an agent holds or acts in, or everything a user granted. */
export async function killSwitch(ctx: TokenServiceContext, operator: Caller, body: unknown, requestId: string | null): Promise<{ revoked: number }> {
  const parsed = z.union([z.strictObject({ agent: z.string().min(1).max(128) }), z.strictObject({ user: z.string().min(1).max(256) })]).safeParse(body);
  if (!parsed.success) throw invalidRequest('body must be {"agent": "<agent id>"} or {"user": "<user id>"}');
  const target: RevocationTarget = 'agent' in parsed.data ? { kind: 'agent', agent: parsed.data.agent } : { kind: 'user', user: parsed.data.user };
  const revoked = await ctx.revocations.revoke(operator.tenant, target);
  ctx.metrics.revocation(revoked.length);
  await auditRevocation(ctx, operator.tenant, operator.id, target, revoked, requestId);
  return { revoked: revoked.length };
}

/** RFC 7662 for a resource server of the token's tenant: the claims with the full nested `act`, or `{active: false}`. */
export async function introspect(ctx: TokenServiceContext, caller: Caller, params: FormParams): Promise<Record<string, unknown>> {
  const token = await liveToken(ctx, tokenOf(params), caller.tenant);
  if (token === undefined) return { active: false };
  const p = token.payload;
  return {
    active: true,
    iss: p.iss,
    sub: p.sub,
    ...(p.act === undefined ? {} : { act: p.act as ActClaim }),
    ...(scopeClaim(p).length > 0 ? { scope: scopeClaim(p).join(' ') } : {}),
    ...(p.authorization_details === undefined ? {} : { authorization_details: p.authorization_details }),
    client_id: token.clientId,
    aud: p.aud,
    exp: p.exp,
    iat: p.iat,
    jti: token.jti,
    tenant: token.tenant,
    token_type: 'Bearer',
  };
}

