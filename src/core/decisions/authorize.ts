import { z } from 'zod';
import { parseActClaim } from '../tokens/act-chain.js';
import { scopeClaim } from '../tokens/attenuate.js';
import { inSpanSync } from '../telemetry.js';
import type { AuditTrail } from '../audit/chain.js';
import {
  authorizationDetailsClaim,
  matchDecision,
  readGovernedContext,
  type DetailTypes,
  type GovernedContext,
} from '../tokens/authorization-details.js';
import { revokedDescription, verifyBatonToken, type BatonTokenVerifier } from '../tokens/baton-token.js';
import { OAuthError } from '../errors.js';
import { agentEntity, entityRef, userEntity } from './policy.js';
import { storable } from '../input/storable-text.js';
import type { PolicyEngine, PolicyEntity, Metrics, AuditLog } from '../ports.js';
import type { Caller, Registry } from '../registry/registry.js';
import { tokenStandingProblem } from '../registry/standing.js';
import { randomId } from '../secrets.js';

const properties = z.record(z.string(), z.unknown());

/** What an action id is: the caller's own (1–128 visible ASCII characters), or one Baton makes (base64url). */
export const actionIdSyntax = /^[\x21-\x7E]{1,128}$/;
export const actionIdRule = 'must be 1–128 visible ASCII characters';

/** The body of `POST /authorize`; no member may hold text the log or Cedar cannot (see storable-text.ts). */
const authorizeRequestSchema = storable(
  z.object({
    token: z.string({ error: 'is required' }).min(1, 'is required'),
    action: z.string({ error: 'is required' }).min(1, 'is required').max(200),
    resource: z.object(
      {
        type: z.string({ error: 'is required' }).min(1, 'is required').max(200),
        id: z.string({ error: 'is required' }).min(1, 'is required').max(1024),
        properties: properties.optional(),
      },
      { error: 'is required' },
    ),
    context: properties.optional(),
    action_id: z.string().regex(actionIdSyntax, actionIdRule).optional(),
  }),
);
export type AuthorizeRequest = z.infer<typeof authorizeRequestSchema>;

export interface DecisionContext extends BatonTokenVerifier {
  readonly audit: AuditLog;
  readonly registry: () => Registry;
  readonly policy: () => PolicyEngine;
  readonly detailTypes: DetailTypes;
  readonly metrics: Metrics;
  readonly limits: BatonTokenVerifier['limits'] & { readonly maxChainLength: number };
}

/** The answer to a resource server, and what the log keeps about it. */
export interface DecisionOutcome {
  readonly decision: 'allow' | 'deny';
  readonly action_id: string;
  /** Ids of the deciding policies, or Baton's own reason when it denied before asking them. */
  readonly reasons: readonly string[];
  /** Why, for logs only. */
  readonly detail: string | undefined;
}

/** Parses the JSON body of `POST /authorize`, naming the first bad member. */
export function parseAuthorizeRequest(body: unknown): AuthorizeRequest {
  const parsed = authorizeRequestSchema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new OAuthError('invalid_request', `${issue?.path.join('.') || 'body'} ${issue?.message ?? 'is invalid'}`);
}

/**
 * May the bearer of `request.token` do `request.action` on `request.resource` now? Checks the
 * token (signature, expiry, audience of the calling resource server, tenant), that the server
 * offers the action, then asks the policies with principal = the current actor (or the user).
 */
export async function decide(
  ctx: DecisionContext,
  caller: Caller,
  request: AuthorizeRequest,
  requestId: string | null,
): Promise<DecisionOutcome> {
  const actionId = request.action_id ?? randomId();
  const trail: AuditTrail = {};
  let outcome: DecisionOutcome;
  try {
    outcome = await evaluateDecision(ctx, caller, request, actionId, trail);
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    await ctx.audit.append({
      ...trail,
      tenant: caller.tenant,
      type: 'decision',
      decision: 'refused',
      action_id: actionId,
      client: caller.id,
      reason: `${error.code}: ${error.description}`,
      request_id: requestId,
    });
    throw error.markAudited();
  }
  const [first] = outcome.reasons;
  ctx.metrics.decision('authorize', outcome.decision, first?.startsWith('baton:') === true ? first : 'policy');
  // The decision is in the log before the answer leaves.
  await ctx.audit.append({
    ...trail,
    tenant: caller.tenant,
    type: 'decision',
    decision: outcome.decision,
    action_id: actionId,
    client: caller.id,
    policy_ids: outcome.reasons,
    reason:
      outcome.detail === undefined
        ? `${request.action} on ${request.resource.type}::${request.resource.id}`
        : `${request.action} on ${request.resource.type}::${request.resource.id}: ${outcome.detail}`,
    request_id: requestId,
  });
  return outcome;
}

async function evaluateDecision(
  ctx: DecisionContext,
  caller: Caller,
  request: AuthorizeRequest,
  actionId: string,
  trail: AuditTrail,
): Promise<DecisionOutcome> {
  const deny = (reason: string, detail: string): DecisionOutcome => ({
    decision: 'deny',
    action_id: actionId,
    reasons: [reason],
    detail,
  });
  const registry = ctx.registry();
  const server = registry.resourceServers.get(caller.id);
  if (server === undefined) throw new OAuthError('access_denied', 'the caller is not a registered resource server');
  // A governed action's context must fit its authorization_details type before any rule or policy runs.
  const governed: GovernedContext[] = readGovernedContext(ctx.detailTypes, request.action, request.context ?? {});

  let token;
  try {
    token = await verifyBatonToken(ctx, request.token, 'token');
  } catch (error) {
    const description = error instanceof OAuthError ? error.description : String(error);
    return deny(description === revokedDescription('token') ? 'baton:revoked' : 'baton:invalid-token', description);
  }
  trail.jti = token.jti;
  trail.user = token.sub;
  trail.audience = token.audience;
  if (!token.audience.includes(server.audience))
    return deny('baton:audience', `token audience ${token.audience.join(' ')} does not include ${server.audience}`);
  if (token.tenant !== server.tenant)
    return deny('baton:tenant', 'token and resource server belong to different tenants');
  if (server.actions.length > 0 && !server.actions.includes(request.action))
    return deny('baton:unknown-action', `${server.id} does not offer ${request.action}`);

  let chain: string[];
  let match;
  try {
    chain = parseActClaim(token.payload.act, 'token', ctx.limits.maxChainLength).chain;
    match = matchDecision(governed, authorizationDetailsClaim(token.payload.authorization_details, 'token'));
  } catch (error) {
    return deny('baton:invalid-token', error instanceof OAuthError ? error.description : String(error));
  }
  // Every decision from here on names who acted, the refusals included.
  trail.actor_chain = chain;
  trail.scope = scopeClaim(token.payload);
  // The token's authorization_details must cover the action, whatever the policies say.
  if (match.applies && match.entry === undefined)
    return deny('baton:authorization-details', match.reason ?? 'not covered');
  // A token outlives a suspension only until it is revoked; meanwhile no decision allows it.
  const refused = tokenStandingProblem(registry, token, chain, ctx.clock.now());
  if (refused !== undefined) return deny(`baton:${refused.status}`, refused.description);
  if (match.applies && match.entry !== undefined) trail.authorization_details = [match.entry];
  const user = userEntity(token.tenant, token.sub);
  const [actor] = chain;
  const principal: PolicyEntity = actor === undefined ? user : agentEntity(registry, actor);
  const policy = ctx.policy();
  trail.policy_digest = policy.digest;
  const decision = inSpanSync(
    'baton.policy.evaluate',
    { 'baton.action': request.action, 'baton.tenant': token.tenant, 'baton.actor': actor ?? '' },
    () =>
      policy.evaluate({
        principal,
        action: request.action,
        resource: {
          type: request.resource.type,
          id: request.resource.id,
          attributes: request.resource.properties ?? {},
        },
        // Baton's facts come last so a caller's context cannot override them.
        context: {
          ...request.context,
          tenant: token.tenant,
          client: token.clientId,
          user: entityRef('User', token.sub),
          chain,
          depth: chain.length,
          scope: scopeClaim(token.payload),
          ...(match.applies ? { grant: match.entry } : {}),
        },
        entities: actor === undefined ? [] : [user],
      }),
  );
  return {
    decision: decision.allowed ? 'allow' : 'deny',
    action_id: actionId,
    reasons: decision.reasons,
    detail: decision.errors.length > 0 ? decision.errors.join('; ') : undefined,
  };
}
