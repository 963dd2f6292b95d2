import type { AssertionContext } from './assertion.js';
import type { AuthorizationDetail, DetailTypes } from './authorization-details.js';
import { authenticateClient } from './client-auth.js';
import { OAuthError } from './errors.js';
import { randomId, signAccessToken } from './jwt.js';
import type { ActClaim, Logger, PolicyEngine, SigningKeys } from './ports.js';
import type { Caller, Registry } from './registry.js';
import { grantTypes } from './registry-schema.js';
import { parseTokenRequest, type FormParams } from './token-request.js';
import { clientCredentials } from './grants/client-credentials.js';
import { tokenExchange } from './grants/token-exchange.js';

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
  readonly logger: Logger;
  readonly limits: Limits;
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
}

/** Signs a token, records its lineage (committed before it leaves), and builds the response. */
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
  const [token] = await Promise.all([
    signAccessToken(ctx.keys, claims),
    ctx.store.recordToken({
      tenant: grant.tenant,
      jti,
      parentJti: grant.parentJti,
      rootGrant: grant.rootGrant ?? jti,
      subject: grant.subject,
      actor: grant.act?.sub ?? null,
      clientId: grant.caller.id,
      expiresAt: new Date(grant.expiresAt * 1000),
    }),
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

export interface TokenEndpointInput {
  readonly params: FormParams;
  readonly authorization: string | undefined;
}

/** The token endpoint pipeline: validate parameters, authenticate the client, check the grant, run it. */
export async function handleTokenRequest(ctx: TokenServiceContext, input: TokenEndpointInput): Promise<TokenResponse> {
  const { request, client } = parseTokenRequest(input.params);
  for (const name of ['subject_token', 'actor_token', 'client_assertion'] as const) {
    const value = (input.params as Record<string, unknown>)[name];
    if (typeof value === 'string' && value.length > ctx.limits.maxTokenBytes) {
      throw new OAuthError('invalid_request', `${name} is larger than ${ctx.limits.maxTokenBytes} bytes`);
    }
  }
  const registry = ctx.registry();
  const caller = await authenticateClient(ctx, registry, input.authorization, client);
  if (!caller.grantTypes.has(request.grant_type)) {
    throw new OAuthError('unauthorized_client', `client is not allowed the ${request.grant_type} grant`);
  }
  switch (request.grant_type) {
    case grantTypes.tokenExchange:
      return tokenExchange(ctx, registry, caller, request);
    case grantTypes.clientCredentials:
      return clientCredentials(ctx, registry, caller, request);
  }
}

