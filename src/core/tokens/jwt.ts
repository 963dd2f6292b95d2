import {
  base64url,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type CryptoKey,
  type JWTPayload,
  type JWTHeaderParameters,
} from 'jose';
import { sha256Base64url } from '../secrets.js';
import { checkClaims } from './claims.js';
import { OAuthError, type OAuthErrorCode } from '../errors.js';
import type { Clock, KeyResolver, SigningKeys } from '../ports.js';
import type { Sha256 } from '../sha256.js';

export interface VerifyOptions {
  /** The request parameter the token came in, named in error descriptions. */
  readonly param: string;
  /** The error code a bad token yields at this parameter. */
  readonly errorCode: OAuthErrorCode;
  readonly resolve: KeyResolver;
  readonly algorithms: readonly string[];
  readonly issuer: string;
  readonly audience?: string | readonly string[];
  readonly typ?: string;
  readonly requiredClaims: readonly string[];
  readonly clock: Clock;
  readonly clockToleranceSeconds: number;
  /** Longest accepted lifetime (`exp` from now), for short-lived assertions. */
  readonly maxLifetimeSeconds?: number;
  /**
   * Remembers the token once it passes, so the same token presented again skips the signature
   * check. `scope` names the key set and options the token was checked against: one scope must
   * always come with the same options.
   */
  readonly remember?: { readonly tokens: VerifiedTokens; readonly scope: object };
}

export interface VerifiedJwt {
  readonly payload: JWTPayload;
  readonly header: JWTHeaderParameters;
}

function describe(error: unknown): { description: string; detail: string } {
  if (error instanceof errors.JWTExpired) return { description: 'is expired', detail: error.message };
  if (error instanceof errors.JWTClaimValidationFailed) {
    const claim = error.claim;
    if (error.reason === 'missing') return { description: `lacks the "${claim}" claim`, detail: error.message };
    // A time claim that is not a number, rather than one out of range.
    if (error.reason === 'invalid') return { description: `has an invalid "${claim}" claim`, detail: error.message };
    if (claim === 'nbf') return { description: 'is not yet valid', detail: error.message };
    if (claim === 'iat') return { description: 'was issued in the future', detail: error.message };
    if (claim === 'aud') return { description: 'is not intended for this audience', detail: error.message };
    if (claim === 'iss') return { description: 'has an unexpected issuer', detail: error.message };
    if (claim === 'typ') return { description: 'has an unexpected token type (typ)', detail: error.message };
    return { description: `has an invalid "${claim}" claim`, detail: error.message };
  }
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return { description: 'has an invalid signature', detail: error.message };
  if (error instanceof errors.JOSEAlgNotAllowed)
    return { description: 'uses a signing algorithm that is not allowed', detail: error.message };
  if (error instanceof errors.JWKSNoMatchingKey)
    return { description: 'is signed with an unknown key', detail: error.message };
  if (error instanceof errors.JOSEError)
    return { description: 'is malformed or unsupported', detail: `${error.code}: ${error.message}` };
  return { description: 'cannot be verified', detail: error instanceof Error ? error.message : String(error) };
}

/** Reads a JWT's header and claims without trusting them, to pick the key set that verifies it. */
export function peekJwt(
  token: string,
  param: string,
  errorCode: OAuthErrorCode,
): { header: JWTHeaderParameters; payload: JWTPayload } {
  try {
    return { header: decodeProtectedHeader(token) as JWTHeaderParameters, payload: decodeJwt(token) };
  } catch (error) {
    throw new OAuthError(errorCode, `${param} is not a well-formed JWT`, {
      detail: error instanceof Error ? error.message : String(error),
    });
  }
}

interface RememberedJwt extends VerifiedJwt {
  /** The key the signature was checked with; the token is only taken as verified while its header still resolves to it. */
  readonly key: CryptoKey;
}

/** Whether `iat` lies in the future beyond the tolerance (jose leaves `iat` unchecked). */
function issuedInFuture(payload: JWTPayload, now: number, toleranceSeconds: number): boolean {
  return typeof payload.iat === 'number' && payload.iat > now / 1000 + toleranceSeconds;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

/**
 * Tokens that passed `verifyJwt`, by the SHA-256 of the token (never the token itself), so a
 * resource server asking about the same token again costs no signature check. A signature,
 * once valid, stays valid for the same bytes and the same key; what can change is checked on
 * every use: the time claims (`exp`, `nbf`, `iat`, as jose and `verifyJwt` check them) and that
 * the header still resolves to the very key that verified it (a key removed from a key set, or
 * a new registry, means a full check again). Revocation is the caller's, on every use. Bounded:
 * the oldest entry goes first.
 */
export class VerifiedTokens {
  readonly #entries = new Map<string, RememberedJwt>();
  readonly #scopes = new WeakMap<object, number>();
  #scopeCount = 0;

  constructor(
    private readonly sha256: Sha256,
    readonly capacity = 10_000,
  ) {}

  /** The entry name of `token` verified in `scope`. */
  keyOf(scope: object, token: string): string {
    let id = this.#scopes.get(scope);
    if (id === undefined) {
      id = ++this.#scopeCount;
      this.#scopes.set(scope, id);
    }
    return `${id}.${sha256Base64url(this.sha256, token)}`;
  }

  /** The verified token under `key`, if its time claims still hold at `now` and its key still resolves. */
  async recall(
    key: string,
    now: number,
    options: Pick<VerifyOptions, 'resolve' | 'clockToleranceSeconds'>,
  ): Promise<VerifiedJwt | undefined> {
    const known = this.#entries.get(key);
    if (known === undefined) return undefined;
    const { exp, nbf } = known.payload;
    const tolerance = options.clockToleranceSeconds;
    const seconds = Math.floor(now / 1000);
    const inTime =
      !(typeof exp === 'number' && exp <= seconds - tolerance) &&
      !(typeof nbf === 'number' && nbf > seconds + tolerance) &&
      !issuedInFuture(known.payload, now, tolerance);
    if (
      inTime &&
      (await options.resolve(known.header).then(
        (k) => k === known.key,
        () => false,
      ))
    )
      return { payload: known.payload, header: known.header };
    this.#entries.delete(key);
    return undefined;
  }

  /** Keeps a token that has just passed every check. */
  remember(key: string, verified: RememberedJwt): void {
    if (this.#entries.size >= this.capacity) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(key, {
      payload: deepFreeze(verified.payload),
      header: deepFreeze(verified.header),
      key: verified.key,
    });
  }

  /** How many tokens are remembered. */
  get size(): number {
    return this.#entries.size;
  }
}

/**
 * Verifies signature and claims against an algorithm allow-list, and the type of every claim Baton
 * reads (see checkClaims); every failure is an OAuthError naming the parameter.
 */
export async function verifyJwt(token: string, options: VerifyOptions): Promise<VerifiedJwt> {
  const now = options.clock.now();
  const memo =
    options.remember === undefined
      ? undefined
      : { tokens: options.remember.tokens, key: options.remember.tokens.keyOf(options.remember.scope, token) };
  if (memo !== undefined) {
    const known = await memo.tokens.recall(memo.key, now, options);
    if (known !== undefined) return known;
  }
  let usedKey: CryptoKey | undefined;
  const resolve: KeyResolver =
    memo === undefined ? options.resolve : async (header) => (usedKey = await options.resolve(header));
  try {
    const { payload, protectedHeader } = await jwtVerify(token, resolve, {
      algorithms: [...options.algorithms],
      issuer: options.issuer,
      ...(options.audience === undefined
        ? {}
        : { audience: typeof options.audience === 'string' ? options.audience : [...options.audience] }),
      ...(options.typ === undefined ? {} : { typ: options.typ }),
      requiredClaims: [...options.requiredClaims],
      currentDate: new Date(now),
      clockTolerance: options.clockToleranceSeconds,
    });
    if (issuedInFuture(payload, now, options.clockToleranceSeconds)) {
      throw new OAuthError(options.errorCode, `${options.param} was issued in the future`);
    }
    if (
      options.maxLifetimeSeconds !== undefined &&
      typeof payload.exp === 'number' &&
      payload.exp - now / 1000 > options.maxLifetimeSeconds + options.clockToleranceSeconds
    ) {
      throw new OAuthError(
        options.errorCode,
        `${options.param} expires too far in the future (at most ${options.maxLifetimeSeconds} s)`,
      );
    }
    checkClaims(payload, options.param, options.errorCode);
    if (memo !== undefined && usedKey !== undefined)
      memo.tokens.remember(memo.key, { payload, header: protectedHeader, key: usedKey });
    return { payload, header: protectedHeader };
  } catch (error) {
    if (error instanceof OAuthError) throw error;
    const { description, detail } = describe(error);
    throw new OAuthError(options.errorCode, `${options.param} ${description}`, { detail });
  }
}

const utf8 = new TextEncoder();

/** Signs claims as a compact JWS (RFC 7515 §7.1) with Baton's current key, `typ` in the header. */
export async function signJwt(keys: SigningKeys, typ: string, claims: JWTPayload): Promise<string> {
  const { alg, kid } = keys.current;
  const signingInput = `${base64url.encode(JSON.stringify({ alg, kid, typ }))}.${base64url.encode(JSON.stringify(claims))}`;
  return `${signingInput}.${base64url.encode(await keys.current.sign(utf8.encode(signingInput)))}`;
}

/** Signs claims as an RFC 9068 access token with Baton's current key. */
export function signAccessToken(keys: SigningKeys, claims: JWTPayload): Promise<string> {
  return signJwt(keys, 'at+jwt', claims);
}
