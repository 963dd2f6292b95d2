import { z } from 'zod';
import { verifyBatonToken, type BatonToken } from '../tokens/baton-token.js';
import { authenticateResourceServer, checkBodyCredentials } from '../clients/callers.js';
import { authenticateClient } from '../clients/client-auth.js';
import type { AuditEvent, TrailEntry } from '../audit/chain.js';
import { OAuthError, invalidRequest, refusalReason } from '../errors.js';
import type { Caller } from '../registry/registry.js';
import type { RevocationTarget, ActClaim, AuditQueries } from '../ports.js';
import { actionIdRule, actionIdSyntax } from '../decisions/authorize.js';
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
  byAction?: { readonly actionId: string; readonly jti: string },
): AuditEvent {
  const count = `${revoked.length} token${revoked.length === 1 ? '' : 's'}`;
  const what =
    byAction === undefined || target.kind !== 'grant'
      ? revocationWhat(target)
      : `root grant ${target.grant} of action ${byAction.actionId} (the token it used, ${byAction.jti}, and every token issued under that grant)`;
  return {
    tenant,
    type: 'token.revocation',
    decision: 'applied',
    ...(byAction === undefined ? {} : { action_id: byAction.actionId }),
    jti: target.kind === 'token' ? target.jti : (byAction?.jti ?? null),
    root_grant: target.kind === 'grant' ? target.grant : null,
    client,
    ...(target.kind === 'agent' ? { actor_chain: [target.agent] } : {}),
    ...(target.kind === 'user' ? { user: target.user } : {}),
    reason: followUp
      ? `follow-up of the revocation of ${what}: ${count} more, derived from revoked tokens while it ran`
      : `revoked ${what}: ${count}`,
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

/** The body of an operator's revocation by agent or user. */
const killSwitchRequest = z.union([
  z.strictObject({ agent: z.string().min(1).max(128) }),
  z.strictObject({ user: z.string().min(1).max(256) }),
]);
const killSwitchShape = 'body must be {"agent": "<agent id>"}, {"user": "<user id>"} or {"action_id": "<action id>"}';

/** Whether the body asks for a revocation by action: an object whose one member is `action_id`. */
function asksForAction(body: unknown): body is { action_id: unknown } {
  return (
    typeof body === 'object' &&
    body !== null &&
    !Array.isArray(body) &&
    Object.keys(body).length === 1 &&
    Object.hasOwn(body, 'action_id')
  );
}

/**
 * `POST /admin/revoke`, the operator's revocation in its tenant: everything an agent holds or acts
 * in, everything a user granted, or everything derived from the root grant of an action found in
 * the log (see `revokeByAction`).
 */
export async function killSwitch(
  ctx: ServiceContext,
  trails: Pick<AuditQueries, 'actionTrail'>,
  operator: Caller,
  body: unknown,
  requestId: string | null,
): Promise<{ revoked: number } | ActionRevocation> {
  if (asksForAction(body)) return revokeByAction(ctx, trails, operator, body.action_id, requestId);
  const parsed = killSwitchRequest.safeParse(body);
  if (!parsed.success) throw invalidRequest(killSwitchShape);
  assertStorableText(parsed.data, '');
  const target: RevocationTarget =
    'agent' in parsed.data ? { kind: 'agent', agent: parsed.data.agent } : { kind: 'user', user: parsed.data.user };
  return { revoked: (await applyRevocation(ctx, operator, target, requestId)).length };
}

/** What a revocation by action answers: the tokens newly revoked, and the root grants they were revoked under. */
export interface ActionRevocation {
  readonly revoked: number;
  readonly action_id: string;
  readonly root_grants: readonly string[];
}

/** The tokens an action's decisions were made on, in log order: only a decision names the token it read. */
function tokensOfAction(entries: readonly TrailEntry[], actionId: string): string[] {
  const jtis: string[] = [];
  for (const { entry } of entries) {
    const e = entry as Partial<Record<'type' | 'action_id' | 'jti', unknown>>;
    if (e.type === 'decision' && e.action_id === actionId && typeof e.jti === 'string' && !jtis.includes(e.jti))
      jtis.push(e.jti);
  }
  return jtis;
}

/**
 * Revokes, in the operator's tenant, the root grant of every token an action's decisions were
 * made on: the root token, every token derived from it at any depth (the action's own, its
 * parents, siblings), and for a code-flow root, the grant itself (its code and refresh-token
 * family, and tokens issued under it later). An action of another tenant is answered as an
 * unknown one (404); an action that names no token (its decisions were refused before a live
 * token was read) is 409. Each root revoked is one `token.revocation` entry linked to the action;
 * each refusal is audited in the operator's tenant.
 */
async function revokeByAction(
  ctx: ServiceContext,
  trails: Pick<AuditQueries, 'actionTrail'>,
  operator: Caller,
  value: unknown,
  requestId: string | null,
): Promise<ActionRevocation> {
  const tenant = operator.tenant;
  // Linked to the action only once it is known to be one of this tenant's.
  let linked: string | null = null;
  try {
    // Every action id ever recorded has this syntax, so nothing else is looked up.
    if (typeof value !== 'string' || !actionIdSyntax.test(value)) throw invalidRequest(`action_id ${actionIdRule}`);
    const actionId = value;
    const { entries } = await trails.actionTrail(tenant, actionId);
    if (!entries.some((e) => (e.entry as { action_id?: unknown }).action_id === actionId))
      throw new OAuthError('not_found', 'no such action in your tenant');
    linked = actionId;
    const roots = new Map<string, string>();
    for (const jti of tokensOfAction(entries, actionId)) {
      const lineage = await ctx.store.findToken(tenant, jti);
      if (lineage !== undefined && !roots.has(lineage.rootGrant)) roots.set(lineage.rootGrant, jti);
    }
    if (roots.size === 0)
      throw new OAuthError(
        'conflict',
        'the action names no token: each of its decisions was refused before a valid token was read',
      );
    let revoked = 0;
    for (const [grant, jti] of roots) {
      const target: RevocationTarget = { kind: 'grant', grant };
      const jtis = await ctx.revocations.revoke(tenant, target);
      ctx.metrics.revocation(jtis.length);
      await ctx.audit.append(revocationEntry(tenant, operator.id, target, jtis, requestId, false, { actionId, jti }));
      revoked += jtis.length;
    }
    return { revoked, action_id: actionId, root_grants: [...roots.keys()] };
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    await ctx.audit.append({
      tenant,
      type: 'token.revocation',
      decision: 'refused',
      action_id: linked,
      client: operator.id,
      reason: `revocation by action: ${refusalReason(error)}`,
      request_id: requestId,
    });
    throw error.markAudited();
  }
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
