import type { JWTPayload } from 'jose';
import { OAuthError, type OAuthErrorCode } from '../errors.js';
import { verifyJwt, type VerifiedTokens } from './jwt.js';
import type { Clock, SigningKeys, Revocations } from '../ports.js';

/** Algorithms Baton signs with, the only ones accepted on its own tokens. */
export const batonAlgorithms = ['EdDSA', 'ES256'] as const;

export interface BatonTokenVerifier {
  readonly issuer: string;
  readonly keys: SigningKeys;
  readonly clock: Clock;
  readonly limits: { readonly clockToleranceSeconds: number };
  readonly revocations: Revocations;
  /** Tokens whose signature was already checked (see VerifiedTokens); kept across requests. */
  readonly verifiedTokens: VerifiedTokens;
}

/** A verified Baton access token and the claims Baton always sets. */
export interface BatonToken {
  readonly payload: JWTPayload;
  readonly tenant: string;
  readonly sub: string;
  readonly jti: string;
  readonly clientId: string;
  readonly audience: readonly string[];
}

/** The `aud` claim as a list. */
function audienceClaim(aud: unknown): string[] {
  if (typeof aud === 'string') return [aud];
  return Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
}

/** The description of a refusal because the token, or one it derives from, was revoked. */
export const revokedDescription = (param: string): string => `${param} has been revoked`;

/**
 * Verifies a token Baton issued: its keys, `typ: at+jwt`, expiry, the claims Baton sets, and
 * that neither it nor any token it derives from is revoked (one in-memory lookup).
 */
export async function verifyBatonToken(
  ctx: BatonTokenVerifier,
  token: string,
  param: string,
  errorCode: OAuthErrorCode = 'invalid_request',
): Promise<BatonToken> {
  const { payload } = await verifyJwt(token, {
    param,
    errorCode,
    resolve: ctx.keys.resolve,
    algorithms: batonAlgorithms,
    issuer: ctx.issuer,
    typ: 'at+jwt',
    requiredClaims: ['sub', 'exp', 'iat', 'jti', 'tenant', 'client_id'],
    clock: ctx.clock,
    clockToleranceSeconds: ctx.limits.clockToleranceSeconds,
    remember: { tokens: ctx.verifiedTokens, scope: ctx.keys },
  });
  // Required above, and non-empty strings as verifyJwt checked.
  const {
    tenant,
    jti,
    sub,
    client_id: clientId,
  } = payload as { tenant: string; jti: string; sub: string; client_id: string };
  if (await ctx.revocations.isRevoked(tenant, jti)) throw new OAuthError(errorCode, revokedDescription(param));
  return { payload, tenant, sub, jti, clientId, audience: audienceClaim(payload.aud) };
}
