import type { AssertionContext } from './assertion.js';
import type { AuditEvent, AuditLog, AuditType } from './audit.js';
import type { Revocations } from './revocation.js';
import { inSpan, type Metrics } from './telemetry.js';
import type { AuthorizationDetail, DetailTypes } from './authorization-details.js';
import { authenticateClient } from './client-auth.js';
import type { RateLimiter } from './rate-limit.js';
import { OAuthError, refusalReason } from './errors.js';
import { randomId, signAccessToken, type VerifiedTokens } from './jwt.js';
import type { ActClaim, Logger, PolicyEngine, SigningKeys } from './ports.js';
import type { Caller, Registry } from './registry.js';
import { grantTypes } from './registry-schema.js';
import { parseTokenRequest, type FormParams } from './token-request.js';
import { clientCredentials } from './grants/client-credentials.js';
import { tokenExchange } from './grants/token-exchange.js';
import { authorizationCode, refreshToken } from './grants/code-grants.js';
import type { CodeFlowContext } from './code-flow.js';

/** Limits a deployment may tune; defaults come from the configuration. */
export interface Limits {
  readonly maxChainLength: number;
  readonly maxTokenLifetimeSeconds: number;
  readonly clockToleranceSeconds: number;
  readonly maxAssertionLifetimeSeconds: number;
  readonly maxAuthorizationDetails: number;
  readonly maxTokenBytes: number;
}

/** Everything the token endpoint needs, built once at start-up. */
export interface TokenServiceContext extends AssertionContext {
  readonly registry: () => Registry;
  readonly keys: SigningKeys;
  readonly policy: () => PolicyEngine;
  /** The `authorization_details` types this deployment accepts. */
  readonly detailTypes: DetailTypes;
  readonly audit: AuditLog;
  readonly revocations: Revocations;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly limits: Limits;
  readonly rateLimit: RateLimiter;
  readonly verifiedTokens: VerifiedTokens;
}

/** The successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1). */
export interface TokenResponse {
  readonly access_token: string;
  readonly issued_token_type?: string;
  readonly token_type: 'Bearer';
  readonly expires_in: number;
  readonly scope?: string;
  readonly authorization_details?: readonly AuthorizationDetail[];
}

/** The claims of a token about to be minted, and its lineage. */
export interface Issuance {
  readonly tenant: string;
  readonly subject: string;
  readonly caller: Caller;
  readonly audience: readonly string[];
  readonly scope: readonly string[];
  readonly authorizationDetails: readonly AuthorizationDetail[];
  readonly act: ActClaim | undefined;
  readonly expiresAt: number;
  readonly parentJti: string | null;
  readonly rootGrant: string | null;
  readonly issuedTokenType?: string;
  readonly auditType: AuditType;
  readonly requestId: string | null;
  readonly policyIds?: readonly string[];
}

/** What a request has established so far, for the entry that records its refusal. */
export type AuditTrail = { -readonly [K in keyof AuditEvent]?: AuditEvent[K] };

/** Signs a token, commits its audit entry and lineage (before it leaves), and builds the response. */
export async function issue(ctx: TokenServiceContext, grant: Issuance): Promise<TokenResponse> {
  const now = Math.floor(ctx.clock.now() / 1000);
  const jti = randomId();
  const claims = {
    iss: ctx.issuer,
    sub: grant.subject,
    aud: grant.audience.length === 1 ? (grant.audience[0] as string) : [...grant.audience],
    exp: grant.expiresAt,
    iat: now,
    jti,
    client_id: grant.caller.id,
    tenant: grant.tenant,
    ...(grant.scope.length > 0 ? { scope: grant.scope.join(' ') } : {}),
    ...(grant.authorizationDetails.length > 0 ? { authorization_details: grant.authorizationDetails } : {}),
    ...(grant.act === undefined ? {} : { act: grant.act }),
  };
  const rootGrant = grant.rootGrant ?? jti;
  const [token] = await Promise.all([
    inSpan('baton.sign', { 'baton.tenant': grant.tenant, 'baton.kid': ctx.keys.current.kid }, () => signAccessToken(ctx.keys, claims)),
    ctx.audit.append(
      {
        tenant: grant.tenant,
        type: grant.auditType,
        decision: 'granted',
        jti,
        parent_jti: grant.parentJti,
        root_grant: rootGrant,
        user: grant.subject,
        actor_chain: actorChain(grant.act),
        client: grant.caller.id,
        audience: grant.audience,
        scope: grant.scope,
        authorization_details: grant.authorizationDetails,
        policy_ids: grant.policyIds ?? [],
        request_id: grant.requestId,
      },
      {
        tenant: grant.tenant,
        jti,
        parentJti: grant.parentJti,
        rootGrant,
        subject: grant.subject,
        actor: grant.act?.sub ?? null,
        clientId: grant.caller.id,
        expiresAt: new Date(grant.expiresAt * 1000),
      },
    ),
  ]);
  return {
    access_token: token,
    ...(grant.issuedTokenType === undefined ? {} : { issued_token_type: grant.issuedTokenType }),
    token_type: 'Bearer',
    expires_in: grant.expiresAt - now,
    ...(grant.scope.length > 0 ? { scope: grant.scope.join(' ') } : {}),
    ...(grant.authorizationDetails.length > 0 ? { authorization_details: grant.authorizationDetails } : {}),
  };
}

/** Actor ids of an `act` claim, current actor first. */
export function actorChain(act: ActClaim | undefined): string[] {
  const chain: string[] = [];
  for (let node = act; node !== undefined; node = node.act) chain.push(node.sub);
  return chain;
}

export interface TokenEndpointInput {
  readonly params: FormParams;
  readonly authorization: string | undefined;
  readonly requestId: string | null;
  /** Told who the request turned out to concern (for the request log), granted or refused. */
  readonly observe?: (who: { tenant?: string; client?: string; actor?: string }) => void;
}

// A Map, not an object: the key is the caller's grant_type, which may be "constructor" or "__proto__".
const auditTypes: ReadonlyMap<string, AuditType> = new Map([
  [grantTypes.tokenExchange, 'token.exchange'],
  [grantTypes.clientCredentials, 'token.client_credentials'],
  [grantTypes.authorizationCode, 'token.authorization_code'],
  [grantTypes.refreshToken, 'token.refresh'],
]);

/**
 * The token endpoint: every request is answered only after its audit entry is committed,
 * whether it is granted (with the token's lineage) or refused (with what was established); a
 * refusal before the client is authenticated is left unaudited here, for the caller to count.
 */
export async function handleTokenRequest(ctx: CodeFlowContext, input: TokenEndpointInput): Promise<TokenResponse> {
  const trail: AuditTrail = {};
  const grant = typeof input.params.grant_type === 'string' ? input.params.grant_type : 'none';
  const grantLabel = auditTypes.has(grant) ? grant : 'unsupported';
  try {
    const response = await inSpan('baton.token', { 'baton.grant_type': grantLabel }, async (span) => {
      const result = await runTokenRequest(ctx, input, trail);
      span.setAttributes({ 'baton.tenant': trail.tenant ?? '', 'baton.client': trail.client ?? '', 'baton.actor': trail.actor_chain?.[0] ?? '', 'baton.outcome': 'granted' });
      return result;
    });
    ctx.metrics.grant(grantLabel, 'granted', 'ok');
    return response;
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    ctx.metrics.grant(grantLabel, 'refused', error.code);
    // Before the client is authenticated anyone can send anything: such a refusal is left to the
    // HTTP layer's tally, which bounds what a flood writes (see RefusalTally).
    if (trail.client === undefined) throw error;
    await ctx.audit.append({
      ...trail,
      tenant: trail.tenant ?? 'unknown',
      type: auditTypes.get(grant) ?? 'token.request',
      decision: 'refused',
      reason: refusalReason(error),
      request_id: input.requestId,
    });
    throw error.markAudited();
  } finally {
    input.observe?.({ ...(trail.tenant === undefined ? {} : { tenant: trail.tenant }), ...(typeof trail.client === 'string' ? { client: trail.client } : {}), ...(trail.actor_chain?.[0] === undefined ? {} : { actor: trail.actor_chain[0] }) });
  }
}

async function runTokenRequest(ctx: CodeFlowContext, input: TokenEndpointInput, trail: AuditTrail): Promise<TokenResponse> {
  const { request, client } = parseTokenRequest(input.params);
  for (const name of ['subject_token', 'actor_token', 'client_assertion', 'code', 'refresh_token'] as const) {
    const value = (input.params as Record<string, unknown>)[name];
    if (typeof value === 'string' && value.length > ctx.limits.maxTokenBytes) {
      throw new OAuthError('invalid_request', `${name} is larger than ${ctx.limits.maxTokenBytes} bytes`);
    }
  }
  const registry = ctx.registry();
  const caller = await authenticateClient(ctx, registry, input.authorization, client);
  trail.tenant = caller.tenant;
  trail.client = caller.id;
  ctx.rateLimit.check(caller.id);
  if (!caller.grantTypes.has(request.grant_type)) {
    throw new OAuthError('unauthorized_client', `client is not allowed the ${request.grant_type} grant`);
  }
  switch (request.grant_type) {
    case grantTypes.tokenExchange:
      return tokenExchange(ctx, registry, caller, request, trail, input.requestId);
    case grantTypes.clientCredentials:
      return clientCredentials(ctx, registry, caller, request, input.requestId);
    case grantTypes.authorizationCode:
      return authorizationCode(ctx, registry, caller, request, trail, input.requestId);
    case grantTypes.refreshToken:
      return refreshToken(ctx, caller, request, trail, input.requestId);
  }
}

