import { verifyBatonToken, type BatonTokenVerifier } from '../tokens/baton-token.js';
import { checkSecret, parseBasic } from './client-auth.js';
import { OAuthError } from '../errors.js';
import { scopeClaim } from '../tokens/attenuate.js';
import type { Sha256 } from '../sha256.js';
import type { Caller, Registry } from '../registry/registry.js';
import { assertInGoodStanding, callerPrincipal } from '../registry/standing.js';
import type { FormParams } from '../grants/token-request.js';
import type { RateLimiter } from '../ports.js';

/** The scopes of Baton's own APIs: operators' calls, the auditor API, the metrics, and initial access tokens of client registration. */
export const operatorScopes = {
  admin: 'baton:admin',
  audit: 'baton:audit',
  metrics: 'baton:metrics',
  register: 'baton:register',
} as const;

/** What authenticating a caller needs: Baton's token verification, the secret hash, the rate limit. */
export interface CallerVerifier extends BatonTokenVerifier {
  readonly sha256: Sha256;
  readonly rateLimit: RateLimiter;
}

/** Who called an API other than the token endpoint, as proven by its credentials. */
export interface AuthenticatedCaller {
  readonly caller: Caller;
  readonly scope: ReadonlySet<string>;
}

/**
 * Authenticates a caller by `Authorization: Basic` (a registered client secret) or
 * `Authorization: Bearer` (a Baton token the caller obtained for itself with client credentials).
 * Any failure is `invalid_client` (401), a suspended or expired caller's too; a caller over its
 * rate limit gets 429.
 */
export async function authenticateCaller(
  ctx: CallerVerifier,
  registry: Registry,
  authorization: string | undefined,
): Promise<AuthenticatedCaller> {
  if (authorization === undefined || authorization.trim() === '')
    throw new OAuthError('invalid_client', 'authentication is required');
  if (/^basic /i.test(authorization)) {
    const { id, secret } = parseBasic(authorization);
    const caller = checkSecret(ctx.sha256, registry.callers.get(id), id, secret);
    ctx.rateLimit.check(caller.id);
    assertInGoodStanding(registry, caller.tenant, [callerPrincipal(caller)], ctx.clock.now(), 'invalid_client');
    return { caller, scope: caller.scope ?? new Set() };
  }
  if (/^bearer /i.test(authorization)) {
    const token = await verifyBatonToken(
      ctx,
      authorization.slice('bearer '.length).trim(),
      'bearer token',
      'invalid_client',
    );
    const caller = registry.callers.get(token.sub);
    // Only a caller's own token for Baton authenticates it; a delegated token does not.
    if (
      caller === undefined ||
      caller.tenant !== token.tenant ||
      token.clientId !== token.sub ||
      token.payload.act !== undefined ||
      !token.audience.includes(ctx.issuer)
    ) {
      throw new OAuthError('invalid_client', 'bearer token does not authenticate a registered caller');
    }
    ctx.rateLimit.check(caller.id);
    assertInGoodStanding(registry, caller.tenant, [callerPrincipal(caller)], ctx.clock.now(), 'invalid_client');
    return { caller, scope: new Set(scopeClaim(token.payload)) };
  }
  throw new OAuthError('invalid_client', 'use Basic or Bearer authentication');
}

/**
 * At a form endpoint whose caller authenticates by the `Authorization` header: client credentials
 * in the body as well are a second method, and a `client_id` naming another client than the
 * header proves a mismatch; both are `invalid_client` (401), as at the token endpoint.
 */
export function checkBodyCredentials(params: FormParams, caller: Caller): void {
  if (
    params.client_secret !== undefined ||
    params.client_assertion !== undefined ||
    params.client_assertion_type !== undefined
  ) {
    throw new OAuthError('invalid_client', 'more than one client authentication method was used');
  }
  if (params.client_id !== undefined && params.client_id !== caller.id)
    throw new OAuthError('invalid_client', 'client_id does not match the authenticated client');
}

/** Authenticates a registered resource server (for decisions). */
export async function authenticateResourceServer(
  ctx: CallerVerifier,
  registry: Registry,
  authorization: string | undefined,
): Promise<Caller> {
  const { caller } = await authenticateCaller(ctx, registry, authorization);
  if (caller.kind !== 'resource_server')
    throw new OAuthError('access_denied', 'the caller is not a registered resource server');
  return caller;
}

/** Authenticates a caller holding `scope` (operators: `baton:admin`; auditors: `baton:audit`). */
export async function authenticateWithScope(
  ctx: CallerVerifier,
  registry: Registry,
  authorization: string | undefined,
  scope: string,
): Promise<AuthenticatedCaller> {
  const authenticated = await authenticateCaller(ctx, registry, authorization);
  if (!authenticated.scope.has(scope)) throw new OAuthError('access_denied', `the caller lacks the ${scope} scope`);
  return authenticated;
}
