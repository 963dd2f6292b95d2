import { OAuthError, type OAuthErrorCode } from '../errors.js';
import { verifyJwt, type VerifiedJwt } from '../tokens/jwt.js';
import type { Clock, KeyResolver, Store } from '../ports.js';
import type { Sha256 } from '../sha256.js';
import { asymmetricAlgorithms } from '../registry/schema.js';

export interface AssertionContext {
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly store: Store;
  readonly clock: Clock;
  readonly sha256: Sha256;
  readonly limits: { readonly clockToleranceSeconds: number; readonly maxAssertionLifetimeSeconds: number };
}

/**
 * Verifies an RFC 7523 assertion (`iss` = `sub` = the principal, `aud` = Baton, short `exp`,
 * `jti`) and consumes its `jti` so it is accepted once, across restarts and instances.
 */
export async function verifyAssertion(
  ctx: AssertionContext,
  token: string,
  principal: { readonly id: string; readonly tenant: string; readonly resolve: KeyResolver },
  param: string,
  errorCode: OAuthErrorCode,
): Promise<VerifiedJwt> {
  const verified = await verifyJwt(token, {
    param,
    errorCode,
    resolve: principal.resolve,
    algorithms: asymmetricAlgorithms,
    issuer: principal.id,
    audience: [ctx.issuer, ctx.tokenEndpoint],
    requiredClaims: ['sub', 'exp', 'jti'],
    clock: ctx.clock,
    clockToleranceSeconds: ctx.limits.clockToleranceSeconds,
    maxLifetimeSeconds: ctx.limits.maxAssertionLifetimeSeconds,
  });
  const { sub, jti, exp } = verified.payload;
  if (sub !== principal.id) throw new OAuthError(errorCode, `${param} subject must equal its issuer`);
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256)
    throw new OAuthError(errorCode, `${param} has an invalid "jti" claim`);
  const fresh = await ctx.store.consumeAssertion({
    tenant: principal.tenant,
    issuer: principal.id,
    jti,
    expiresAt: new Date(((exp as number) + ctx.limits.clockToleranceSeconds) * 1000),
  });
  if (!fresh) throw new OAuthError(errorCode, `${param} has already been used`);
  return verified;
}
