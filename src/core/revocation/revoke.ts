import { z } from 'zod';
import { verifyBatonToken, type BatonToken } from '../tokens/baton-token.js';
import { authenticateResourceServer, checkBodyCredentials } from '../clients/callers.js';
import { authenticateClient } from '../clients/client-auth.js';
import type { AuditEvent } from '../audit/chain.js';
import { OAuthError, invalidRequest, refusalReason } from '../errors.js';
import type { Caller } from '../registry/registry.js';
import type { RevocationTarget, ActClaim } from '../ports.js';
import { clientAuthParamsSchema, type FormParams } from '../grants/token-request.js';
import { scopeClaim } from '../tokens/attenuate.js';
import { assertStorableText } from '../input/storable-text.js';
import type { ServiceContext } from '../context.js';
import { sha256Base64url } from '../secrets.js';
import { tokenStandingProblem } from '../registry/standing.js';
import { parseActClaim } from '../tokens/act-chain.js';

const tokenParam = z.object({
  token: z.string({ error: 'is required' }).min(1, 'is required'),
  token_type_hint: z.string().optional(),
});

function tokenOf(params: FormParams): { token: string; hint: string | undefined } {
  const parsed = tokenParam.safeParse(params);
  if (!parsed.success) throw invalidRequest(`token ${parsed.error.issues[0]?.message ?? 'is invalid'}`);
  return { token: parsed.data.token, hint: parsed.data.token_type_hint };
}

/** A Baton token that verifies now, or undefined (invalid, expired, revoked, foreign). */
async function liveToken(ctx: ServiceContext, token: string, tenant: string): Promise<BatonToken | undefined> {
  if (token.length > ctx.limits.maxTokenBytes) return undefined;
  try {
    const verified = await verifyBatonToken(ctx, token, 'token');
    return verified.tenant === tenant ? verified : undefined;
  } catch {
    return undefined;
  }
}

/** True when the token, or a token it derives from, was issued to `caller`. */
async function issuedToOrDerived(ctx: ServiceContext, token: BatonToken, caller: Caller): Promise<boolean> {
  let lineage = await ctx.store.findToken(token.tenant, token.jti);
  for (let hops = 0; lineage !== undefined && hops < 64; hops++) {
    if (lineage.clientId === caller.id) return true;
    if (lineage.parentJti === null) return false;
    lineage = await ctx.store.findToken(token.tenant, lineage.parentJti);
  }
  return false;
}

/** What a revocation target stands for, in the words of its audit entry. */
function revocationWhat(target: RevocationTarget): string {
  return target.kind === 'token'
    ? 'the token'
    : target.kind === 'grant'
      ? `grant ${target.grant} (its refresh tokens and every token issued under it)`
      : target.kind === 'client'
        ? `everything issued to client ${target.client}`
        : `everything ${target.kind} ${target.kind === 'agent' ? target.agent : target.user} holds or appears in`;
}

/** The entry of a revocation: who asked, what it reached, and how many tokens it revoked. */
export function revocationEntry(
  tenant: string,
  client: string | null,
  target: RevocationTarget,
  revoked: readonly string[],
  requestId: string | null,
  followUp = false,
): AuditEvent {
  const count = `${revoked.length} token${revoked.length === 1 ? '' : 's'}`;
  return {
    tenant,
    type: 'token.revocation',
    decision: 'applied',
    jti: target.kind === 'token' ? target.jti : null,
    root_grant: target.kind === 'grant' ? target.grant : null,
    client,
    ...(target.kind === 'agent' ? { actor_chain: [target.agent] } : {}),
    ...(target.kind === 'user' ? { user: target.user } : {}),
    reason: followUp
      ? `follow-up of the revocation of ${revocationWhat(target)}: ${count} more, derived from revoked tokens while it ran`
      : `revoked ${revocationWhat(target)}: ${count}`,
    request_id: requestId,
  };
}

/** Records a revocation and how far it cascaded. */
async function auditRevocation(
  ctx: ServiceContext,
  tenant: string,
  client: string,
  target: RevocationTarget,
  revoked: readonly string[],
  requestId: string | null,
): Promise<void> {
  await ctx.audit.append(revocationEntry(tenant, client, target, revoked, requestId));
}

/** Revokes in the caller's tenant, counts and audits it; returns the jtis newly revoked. */
export async function applyRevocation(
  ctx: ServiceContext,
  caller: Caller,
  target: RevocationTarget,
  requestId: string | null,
): Promise<readonly string[]> {
  const revoked = await ctx.revocations.revoke(caller.tenant, target);
  ctx.metrics.revocation(revoked.length);
  await auditRevocation(ctx, caller.tenant, caller.id, target, revoked, requestId);
  return revoked;
}

/** What a refused revocation had established, for its audit entry. */
type RevocationTrail = { tenant?: string; client?: string; jti?: string; root_grant?: string };

/** Revokes `token` if it is a live Baton access token of the caller's tenant; false if it is not one. */
async function revokeAccessToken(
  ctx: ServiceContext,
  caller: Caller,
  token: string,
  trail: RevocationTrail,
  requestId: string | null,
): Promise<boolean> {
  const access = await liveToken(ctx, token, caller.tenant);
  if (access === undefined) return false;
  trail.jti = access.jti;
  if (!(await issuedToOrDerived(ctx, access, caller)))
    throw new OAuthError('unauthorized_client', 'the token was not issued to this client');
  await applyRevocation(ctx, caller, { kind: 'token', jti: access.jti }, requestId);
  return true;
}

/** Revokes the grant of `token` if it is a refresh token of the caller's tenant; false if it is not one. */
async function revokeRefreshToken(
  ctx: ServiceContext,
  caller: Caller,
  token: string,
  trail: RevocationTrail,
  requestId: string | null,
): Promise<boolean> {
  const refresh = await ctx.grants.findRefresh(sha256Base64url(ctx.sha256, token));
  if (refresh === undefined || refresh.tenant !== caller.tenant) return false;
  trail.root_grant = refresh.grantId;
  if (refresh.clientId !== caller.id)
    throw new OAuthError('unauthorized_client', 'the token was not issued to this client');
  await applyRevocation(ctx, caller, { kind: 'grant', grant: refresh.grantId }, requestId);
  return true;
}

/**
 * RFC 7009: a client revokes a token issued to it, or derived from one issued to it. An access
 * token is revoked with everything derived from it; a refresh token (used or not) with its whole
 * grant: its family and every access token issued under it. `token_type_hint` only says where to
 * look first (an unknown hint is ignored); an unknown, invalid or foreign token is answered like a
 * revoked one (200), so nothing is learned about it. Every refusal is audited. `observe` learns
 * the authenticated client.
 */
export async function revokeToken(
  ctx: ServiceContext,
  params: FormParams,
  authorization: string | undefined,
  requestId: string | null,
  observe?: (caller: Caller) => void,
): Promise<void> {
  const trail: RevocationTrail = {};
  try {
    const client = clientAuthParamsSchema.safeParse(params);
    if (!client.success) throw invalidRequest('malformed client authentication parameters');
    const caller = await authenticateClient(ctx, ctx.registry(), authorization, client.data);
    observe?.(caller);
    trail.tenant = caller.tenant;
    trail.client = caller.id;
    const { token, hint } = tokenOf(params);
    const lookups =
      hint === 'refresh_token' ? [revokeRefreshToken, revokeAccessToken] : [revokeAccessToken, revokeRefreshToken];
    for (const lookup of lookups) if (await lookup(ctx, caller, token, trail, requestId)) return;
  } catch (error) {
    // A refusal before the client is known is left to the HTTP layer's bounded tally.
    if (error instanceof OAuthError && trail.tenant !== undefined) {
      await ctx.audit.append({
        tenant: trail.tenant,
        type: 'token.revocation',
        decision: 'refused',
        jti: trail.jti ?? null,
        root_grant: trail.root_grant ?? null,
        client: trail.client ?? null,
        reason: refusalReason(error),
        request_id: requestId,
      });
      throw error.markAudited();
    }
    throw error;
  }
}

/** The operator's kill switch: revoke everything an agent holds or acts in, or everything a user granted. */
export async function killSwitch(
  ctx: ServiceContext,
  operator: Caller,
  body: unknown,
  requestId: string | null,
): Promise<{ revoked: number }> {
  const parsed = z
    .union([
      z.strictObject({ agent: z.string().min(1).max(128) }),
      z.strictObject({ user: z.string().min(1).max(256) }),
    ])
    .safeParse(body);
  if (!parsed.success) throw invalidRequest('body must be {"agent": "<agent id>"} or {"user": "<user id>"}');
  assertStorableText(parsed.data, '');
  const target: RevocationTarget =
    'agent' in parsed.data ? { kind: 'agent', agent: parsed.data.agent } : { kind: 'user', user: parsed.data.user };
  return { revoked: (await applyRevocation(ctx, operator, target, requestId)).length };
}

/**
 * `POST /oauth2/introspect`: the resource server authenticates by its `Authorization` header
 * (and by nothing in the form besides a matching `client_id`), then reads the form. Every
 * refusal is audited.
 */
export async function introspection(
  ctx: ServiceContext,
  authorization: string | undefined,
  form: () => Promise<FormParams>,
  requestId: string | null,
  observe?: (caller: Caller) => void,
): Promise<Record<string, unknown>> {
  let caller: Caller | undefined;
  try {
    caller = await authenticateResourceServer(ctx, ctx.registry(), authorization);
    observe?.(caller);
    const params = await form();
    checkBodyCredentials(params, caller);
    return await introspect(ctx, caller, params);
  } catch (error) {
    // A refusal before the caller is known is left to the HTTP layer's bounded tally.
    if (error instanceof OAuthError && caller !== undefined) {
      await ctx.audit.append({
        tenant: caller.tenant,
        type: 'token.introspection',
        decision: 'refused',
        client: caller.id,
        reason: refusalReason(error),
        request_id: requestId,
      });
      throw error.markAudited();
    }
    throw error;
  }
}

/** RFC 7662 for a resource server of the token's tenant: the claims with the full nested `act`, or `{active: false}`. */
async function introspect(ctx: ServiceContext, caller: Caller, params: FormParams): Promise<Record<string, unknown>> {
  const token = await liveToken(ctx, tokenOf(params).token, caller.tenant);
  if (token === undefined) return { active: false };
  const p = token.payload;
  // A token whose user, actor or client is suspended, or whose actor has expired, is not honoured.
  let chain: string[] = [];
  try {
    chain = parseActClaim(p.act, 'token', ctx.limits.maxChainLength).chain;
  } catch {
    // An act claim Baton would not read names no actor to check: the other parties still are.
  }
  if (tokenStandingProblem(ctx.registry(), token, chain, ctx.clock.now()) !== undefined) return { active: false };
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
