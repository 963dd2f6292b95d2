import { z } from 'zod';
import { delegate, parseActClaim } from '../tokens/act-chain.js';
import { verifyAssertion } from '../clients/assertion.js';
import { verifyWorkloadToken } from '../clients/workload-identity.js';
import { attenuateAudience, attenuateScope, audienceScopes, resolveTargets, scopeClaim } from '../tokens/attenuate.js';
import {
  attenuateAuthorizationDetails,
  authorizationDetailsClaim,
  checkHeldDetails,
  parseAuthorizationDetails,
  type AuthorizationDetail,
} from '../tokens/authorization-details.js';
import { OAuthError, echo, invalidRequest } from '../errors.js';
import { verifyBatonToken } from '../tokens/baton-token.js';
import { peekJwt, verifyJwt } from '../tokens/jwt.js';
import type { ActClaim } from '../ports.js';
import { delegateAction, delegationRequest, noDelegateAction } from '../decisions/policy.js';
import { inSpanSync } from '../telemetry.js';
import type { Agent, Caller, Registry } from '../registry/registry.js';
import { assertInGoodStanding } from '../registry/standing.js';
import { actorChain, issue, type TokenResponse } from '../tokens/mint.js';
import type { AuditTrail } from '../audit/chain.js';
import type { ServiceContext } from '../context.js';
import type { Grant } from './grant.js';
import { audienceParameter, resourceParameter, scopeParameter, tokenTypes } from './parameters.js';

const grantType = 'urn:ietf:params:oauth:grant-type:token-exchange';

const schema = z.object({
  grant_type: z.literal(grantType),
  subject_token: z.string({ error: 'is required' }).min(1, 'is required'),
  subject_token_type: z.string({ error: 'is required' }).min(1, 'is required'),
  actor_token: z.string().min(1, 'must not be empty').optional(),
  actor_token_type: z.string().min(1, 'must not be empty').optional(),
  audience: audienceParameter,
  resource: resourceParameter,
  scope: scopeParameter.optional(),
  authorization_details: z.string().optional(),
  requested_token_type: z.string().optional(),
});
export type TokenExchangeRequest = z.infer<typeof schema>;

/**
 * RFC 8693 token exchange: verify the subject, prove the actor, check tenant, `may_act` and
 * chain depth, attenuate scope, audience, details and lifetime, ask the policy, then mint.
 */
export const tokenExchange: Grant<typeof schema> = {
  grantType,
  schema,
  auditType: 'token.exchange',
  publicClients: false,
  handle: exchangeToken,
};

const subjectTokenTypes: ReadonlySet<string> = new Set([tokenTypes.accessToken, tokenTypes.jwt, tokenTypes.idToken]);
const actorTokenTypes: ReadonlySet<string> = new Set([tokenTypes.accessToken, tokenTypes.jwt]);
const issuedTokenTypes: ReadonlySet<string> = new Set([tokenTypes.accessToken, tokenTypes.jwt]);

/** A verified subject token: who the user is and everything the new token must stay within. */
interface SubjectToken {
  readonly tenant: string;
  readonly user: string;
  /** Lineage when Baton issued the token; undefined for an upstream identity provider's token. */
  readonly lineage:
    { readonly jti: string; readonly rootGrant: string; readonly audience: readonly string[] } | undefined;
  readonly scope: ReadonlySet<string>;
  readonly expiresAt: number;
  readonly act: { readonly act: ActClaim | undefined; readonly chain: readonly string[] };
  readonly mayAct: unknown;
  readonly authorizationDetails: readonly AuthorizationDetail[];
}

/** Verifies a token Baton issued and finds its lineage; a token Baton has no record of is refused. */
async function verifyRecordedToken(ctx: ServiceContext, token: string, param: string) {
  const verified = await verifyBatonToken(ctx, token, param);
  const lineage = await ctx.store.findToken(verified.tenant, verified.jti);
  if (lineage === undefined) throw invalidRequest(`${param} is not known to Baton`);
  return { ...verified, lineage };
}

async function verifySubjectToken(
  ctx: ServiceContext,
  registry: Registry,
  request: TokenExchangeRequest,
): Promise<SubjectToken> {
  if (!subjectTokenTypes.has(request.subject_token_type))
    throw invalidRequest(`subject_token_type "${echo(request.subject_token_type)}" is not supported`);
  const { iss } = peekJwt(request.subject_token, 'subject_token', 'invalid_request').payload;
  const maxDepth = ctx.limits.maxChainLength;

  if (iss === ctx.issuer) {
    if (request.subject_token_type === tokenTypes.idToken)
      throw invalidRequest('subject_token_type does not match the subject_token');
    const { payload, tenant, sub, lineage, audience } = await verifyRecordedToken(
      ctx,
      request.subject_token,
      'subject_token',
    );
    return {
      tenant,
      user: sub,
      lineage: { jti: lineage.jti, rootGrant: lineage.rootGrant, audience },
      scope: new Set(scopeClaim(payload)),
      expiresAt: payload.exp as number,
      act: parseActClaim(payload.act, 'subject_token', maxDepth),
      mayAct: payload.may_act,
      authorizationDetails: authorizationDetailsClaim(payload.authorization_details, 'subject_token'),
    };
  }

  const trusted = typeof iss === 'string' ? registry.issuers.get(iss) : undefined;
  if (trusted === undefined) throw invalidRequest('subject_token is from an issuer that is not trusted');
  const { payload } = await verifyJwt(request.subject_token, {
    param: 'subject_token',
    errorCode: 'invalid_request',
    resolve: trusted.resolve,
    algorithms: trusted.algorithms,
    issuer: trusted.issuer,
    audience: trusted.audiences,
    requiredClaims: ['sub', 'exp'],
    clock: ctx.clock,
    clockToleranceSeconds: ctx.limits.clockToleranceSeconds,
    remember: { tokens: ctx.verifiedTokens, scope: trusted },
  });
  // Baton's own tokens carry only entries it checked; an upstream token's are checked here, once.
  const authorizationDetails = authorizationDetailsClaim(payload.authorization_details, 'subject_token');
  checkHeldDetails(ctx.detailTypes, authorizationDetails, 'subject_token');
  return {
    tenant: trusted.tenant,
    user: payload.sub as string,
    lineage: undefined,
    scope: new Set(scopeClaim(payload)),
    expiresAt: payload.exp as number,
    act: parseActClaim(payload.act, 'subject_token', maxDepth),
    mayAct: payload.may_act,
    authorizationDetails,
  };
}

/** The actor: proven by an actor token (agent assertion, workload identity token or Baton agent token), or the client itself if it is an agent. */
export async function proveActor(
  ctx: ServiceContext,
  registry: Registry,
  caller: Caller,
  request: Pick<TokenExchangeRequest, 'actor_token' | 'actor_token_type'>,
): Promise<Agent> {
  const token = request.actor_token;
  if (token === undefined) {
    if (request.actor_token_type !== undefined) throw invalidRequest('actor_token_type is given without actor_token');
    const self = caller.kind === 'agent' ? registry.agents.get(caller.id) : undefined;
    if (self === undefined) throw invalidRequest('actor_token is required when the client is not a registered agent');
    return self;
  }
  if (request.actor_token_type === undefined) throw invalidRequest('actor_token_type is required with actor_token');
  if (!actorTokenTypes.has(request.actor_token_type))
    throw invalidRequest(`actor_token_type "${echo(request.actor_token_type)}" is not supported`);

  const { iss } = peekJwt(token, 'actor_token', 'invalid_request').payload;
  if (iss === ctx.issuer) {
    const { payload, tenant, sub, clientId, audience } = await verifyRecordedToken(ctx, token, 'actor_token');
    const agent = registry.agents.get(sub);
    // Only an agent's own client-credentials token proves the agent; a delegated token does not.
    if (agent === undefined || agent.tenant !== tenant || clientId !== sub || payload.act !== undefined) {
      throw invalidRequest('actor_token is not an agent token');
    }
    if (!audience.includes(ctx.issuer)) throw invalidRequest('actor_token is not intended for Baton');
    return agent;
  }
  const workload = typeof iss === 'string' ? registry.workloadIssuers.get(iss) : undefined;
  if (workload !== undefined)
    return verifyWorkloadToken(ctx, registry, workload, token, 'actor_token', 'invalid_request');
  const agent = typeof iss === 'string' ? registry.agents.get(iss) : undefined;
  if (agent === undefined) throw invalidRequest('actor_token is issued neither by Baton nor by a registered agent');
  await verifyAssertion(ctx, token, agent, 'actor_token', 'invalid_request');
  return agent;
}

function checkMayAct(mayAct: unknown, actor: Agent, issuer: string): void {
  if (mayAct === undefined) return;
  // Its shape was checked with the subject token's other claims (checkClaims).
  const { sub, iss } = mayAct as { sub: string; iss?: string };
  if (sub !== actor.id || (iss !== undefined && iss !== issuer))
    throw invalidRequest("actor is not permitted by the subject_token's may_act claim");
}

async function exchangeToken(
  ctx: ServiceContext,
  registry: Registry,
  caller: Caller,
  request: TokenExchangeRequest,
  trail: AuditTrail,
  requestId: string | null,
): Promise<TokenResponse> {
  const issuedTokenType = request.requested_token_type ?? tokenTypes.accessToken;
  if (!issuedTokenTypes.has(issuedTokenType))
    throw invalidRequest(`requested_token_type "${echo(issuedTokenType)}" is not supported`);
  const requestedDetails = parseAuthorizationDetails(
    request.authorization_details,
    ctx.detailTypes,
    ctx.limits.maxAuthorizationDetails,
  );

  // The two tokens are checked side by side (each may wait for a signature check and a lookup);
  // a bad subject token is reported before a bad actor token, as if checked in that order.
  const [subjectCheck, actorCheck] = await Promise.allSettled([
    verifySubjectToken(ctx, registry, request),
    proveActor(ctx, registry, caller, request),
  ]);
  if (subjectCheck.status === 'rejected') throw subjectCheck.reason;
  const subject = subjectCheck.value;
  trail.user = subject.user;
  trail.tenant = subject.tenant;
  trail.parent_jti = subject.lineage?.jti ?? null;
  trail.root_grant = subject.lineage?.rootGrant ?? null;
  trail.actor_chain = actorChain(subject.act.act);
  if (actorCheck.status === 'rejected') throw actorCheck.reason;
  const actor = actorCheck.value;
  trail.actor_chain = [actor.id, ...subject.act.chain];

  if (actor.tenant !== subject.tenant) throw invalidRequest('actor and subject belong to different tenants');
  if (caller.tenant !== subject.tenant) throw invalidRequest('client and subject belong to different tenants');
  // RFC 8693 §2.2.2: a subject or actor token that cannot be used is invalid_request.
  assertInGoodStanding(
    registry,
    subject.tenant,
    [
      { kind: 'user', id: subject.user },
      { kind: 'agent', id: actor.id },
      ...subject.act.chain.map((id) => ({ kind: 'agent' as const, id })),
    ],
    ctx.clock.now(),
    'invalid_request',
  );
  if (!caller.agents.has(actor.id)) throw invalidRequest(`client may not present agent "${actor.id}" as actor`);
  checkMayAct(subject.mayAct, actor, ctx.issuer);

  const max = ctx.limits.maxChainLength;
  if (subject.act.chain.slice(1).includes(actor.id))
    throw invalidRequest('actor already appears earlier in the delegation chain');
  const chain = delegate(actor.id, subject.act);
  if (chain.chain.length > max)
    throw invalidRequest(`the delegation chain may hold at most ${max} actor${max === 1 ? '' : 's'}`);

  const targets = resolveTargets(registry, subject.tenant, request.audience, request.resource);
  let audience: string[];
  if (subject.lineage !== undefined) {
    audience =
      targets.length > 0 ? attenuateAudience(targets, subject.lineage.audience) : [...subject.lineage.audience];
  } else {
    if (targets.length === 0) throw new OAuthError('invalid_target', 'audience or resource is required');
    audience = targets;
  }
  const scope = attenuateScope(request.scope, [
    ["the subject token's scope", subject.scope],
    [`what agent "${actor.id}" may hold`, actor.scope],
    ['what the audience offers', audienceScopes(registry, audience)],
  ]);
  trail.actor_chain = chain.chain;
  trail.audience = audience;
  trail.scope = scope;
  const authorizationDetails = attenuateAuthorizationDetails(
    ctx.detailTypes,
    requestedDetails,
    subject.authorizationDetails,
    'the subject token',
  );
  trail.authorization_details = authorizationDetails;
  const issuedAt = Math.floor(ctx.clock.now() / 1000);
  const expiresAt = Math.min(issuedAt + ctx.limits.maxTokenLifetimeSeconds, subject.expiresAt);

  const policy = ctx.policy();
  trail.policy_digest = policy.digest;
  if (!policy.declares(delegateAction))
    throw new OAuthError('invalid_request', `delegation is not permitted by policy: ${noDelegateAction}`);
  const decision = inSpanSync(
    'baton.policy.evaluate',
    { 'baton.action': delegateAction, 'baton.tenant': subject.tenant, 'baton.actor': actor.id },
    (span) => {
      const answer = policy.evaluate(
        delegationRequest(registry, {
          tenant: subject.tenant,
          actor: actor.id,
          user: subject.user,
          clientId: caller.id,
          audience,
          scope,
          authorizationDetails,
          chain: chain.chain,
        }),
      );
      span.setAttribute('baton.decision', answer.allowed ? 'allow' : 'deny');
      return answer;
    },
  );
  trail.policy_ids = decision.reasons;
  if (!decision.allowed) {
    const deciding = [...decision.reasons, ...decision.errors].join('; ') || 'no policy permits it';
    throw new OAuthError('invalid_request', 'delegation is not permitted by policy', {
      detail: `policies: ${deciding}`,
    });
  }

  return issue(ctx, {
    tenant: subject.tenant,
    subject: subject.user,
    caller,
    audience,
    scope,
    authorizationDetails,
    act: chain.act,
    issuedAt,
    expiresAt,
    parentJti: subject.lineage?.jti ?? null,
    rootGrant: subject.lineage?.rootGrant ?? null,
    issuedTokenType,
    auditType: tokenExchange.auditType,
    requestId,
    policyIds: decision.reasons,
    policyDigest: policy.digest,
  });
}
