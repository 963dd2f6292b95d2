import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { BatonError } from './errors.js';
import type { Fetch } from './http.js';

/** The Fetch API's signature, so a test or a runtime can pass its own (the same as the agent side's `Fetch`). */
export type FetchLike = Fetch;

/** One RFC 9396 authorization detail: its `type` and whatever fields that type defines. */
export interface AuthorizationDetail {
  readonly type: string;
  readonly [field: string]: unknown;
}

/** What a verified Baton access token says, typed. */
export interface BatonClaims {
  /** The user (or the client, for a client-credentials token) the token acts for. */
  readonly sub: string;
  readonly tenant: string;
  /** The client that asked Baton for the token. */
  readonly clientId: string;
  readonly scope: readonly string[];
  readonly audience: readonly string[];
  /** The delegation chain: the user first, then every actor oldest first (`[user, orchestrator, sub-agent]`). */
  readonly actChain: readonly string[];
  readonly authorizationDetails: readonly AuthorizationDetail[];
  readonly jti: string;
  /** Seconds since the epoch (the `exp` claim). */
  readonly expiresAt: number;
  /** Every claim as signed, for what this type does not name. */
  readonly payload: JWTPayload;
}

/** How to reach Baton's keys and how lenient to be with clocks. */
export interface VerifierOptions {
  /** Baton's issuer URL, exactly as its tokens' `iss` and its RFC 8414 metadata say. */
  readonly issuer: string;
  /** Where Baton publishes its keys; read from the issuer's RFC 8414 metadata when not given. */
  readonly jwksUri?: string;
  readonly fetch?: FetchLike;
  /** Slack allowed on `exp` and `nbf`, for clocks that disagree a little (default 5). */
  readonly clockToleranceSeconds?: number;
  /** Milliseconds since the epoch; the system clock when not given. */
  readonly clock?: { now(): number };
  /** How many verified tokens to remember (by SHA-256), so the same token costs no signature check again; 0 for none (default 10,000). */
  readonly rememberTokens?: number;
}

/** Verifies Baton access tokens offline against Baton's published keys. */
export interface BatonVerifier {
  readonly issuer: string;
  /** The token's claims when it is a valid Baton token for `audience`; else a BatonError (`invalid_token`, or `network_error` when Baton's keys cannot be read). */
  verify(token: string, options: { readonly audience: string }): Promise<BatonClaims>;
}

/** The algorithms a Baton token may be signed with: asymmetric only, never `none` or an HMAC. */
export const batonTokenAlgorithms = ['EdDSA', 'ES256', 'RS256', 'PS256'] as const;

/** How deep an `act` claim may nest before the token is refused unread (Baton's own limit). */
const maxActNesting = 32;

const invalidToken = (description: string, cause?: unknown): BatonError =>
  new BatonError('invalid_token', description, cause === undefined ? {} : { cause });

const isName = (value: unknown): value is string => typeof value === 'string' && value !== '';
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The RFC 8414 §3 metadata URL of an issuer: the well-known segment goes before the issuer's path. */
function metadataUrl(issuer: string): URL {
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  return new URL(`/.well-known/oauth-authorization-server${path}`, url.origin);
}

/** Reads `jwks_uri` from the issuer's metadata, refusing metadata that names another issuer (RFC 8414 §3.3). */
async function discoverJwksUri(issuer: string, fetchImpl: FetchLike): Promise<string> {
  const url = metadataUrl(issuer);
  let response: Response;
  try {
    response = await fetchImpl(url, { headers: { accept: 'application/json' }, redirect: 'manual' });
  } catch (cause) {
    throw new BatonError('network_error', `could not reach ${url.href}`, { cause });
  }
  if (response.status !== 200) throw new BatonError('invalid_response', `${url.href} answered HTTP ${response.status}`);
  let metadata: unknown;
  try {
    metadata = await response.json();
  } catch (cause) {
    throw new BatonError('invalid_response', `${url.href} did not answer JSON`, { cause });
  }
  if (!isObject(metadata) || metadata.issuer !== issuer)
    throw new BatonError('invalid_response', `${url.href} is not the metadata of ${issuer}`);
  if (!isName(metadata.jwks_uri)) throw new BatonError('invalid_response', `${url.href} names no jwks_uri`);
  return metadata.jwks_uri;
}

/** The actors of an `act` claim, current first, after checking each level is an object with a subject. */
function actorsOf(act: unknown): string[] {
  const actors: string[] = [];
  for (let node = act; node !== undefined; node = (node as { act?: unknown }).act) {
    if (actors.length >= maxActNesting) throw invalidToken(`the token's act claim nests deeper than ${maxActNesting}`);
    if (!isObject(node) || !isName(node.sub) || (node.iss !== undefined && typeof node.iss !== 'string'))
      throw invalidToken('the token has an invalid "act" claim: each level must be an object with a string sub');
    actors.push(node.sub);
  }
  return actors;
}

/** Type-checks the claims the SDK hands out, so a validly signed token with a wrong-typed claim is still refused. */
function claimsOf(payload: JWTPayload): BatonClaims {
  const refuse = (claim: string, why: string) => invalidToken(`the token has an invalid "${claim}" claim: ${why}`);
  for (const name of ['sub', 'jti', 'tenant', 'client_id'] as const)
    if (!isName(payload[name])) throw refuse(name, 'must be a non-empty string');
  // jose checks these are numbers, but JSON's 1e400 is Infinity: a token that would never expire.
  for (const name of ['exp', 'nbf', 'iat'] as const)
    if (payload[name] !== undefined && !Number.isFinite(payload[name])) throw refuse(name, 'must be a finite number');
  const { aud, scope, authorization_details: details } = payload as Record<string, unknown>;
  const audience = typeof aud === 'string' ? [aud] : aud;
  if (!Array.isArray(audience) || audience.length === 0 || !audience.every(isName))
    throw refuse('aud', 'must be a non-empty string or a list of them');
  if (scope !== undefined && typeof scope !== 'string') throw refuse('scope', 'must be a string');
  if (details !== undefined && !(Array.isArray(details) && details.every((d) => isObject(d) && isName(d.type))))
    throw refuse('authorization_details', 'must be a list of objects, each with a string type');
  const actors = actorsOf(payload.act);
  return {
    sub: payload.sub as string,
    tenant: payload.tenant as string,
    clientId: payload.client_id as string,
    scope: scope === undefined ? [] : scope.split(' ').filter((s) => s !== ''),
    audience,
    actChain: [payload.sub as string, ...actors.reverse()],
    authorizationDetails: (details ?? []) as AuthorizationDetail[],
    jti: payload.jti as string,
    expiresAt: payload.exp as number,
    payload,
  };
}

/** Turns what jose threw into the SDK's error, with a description a resource server may show. */
function describeFailure(error: unknown, issuer: string, audience: string): BatonError {
  if (error instanceof BatonError) return error;
  if (error instanceof errors.JWTExpired) return invalidToken('the token has expired', error);
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return invalidToken(`the token is not for audience ${audience}`, error);
    if (error.claim === 'iss') return invalidToken(`the token was not issued by ${issuer}`, error);
    if (error.claim === 'nbf') return invalidToken('the token is not valid yet', error);
    if (error.claim === 'typ') return invalidToken('the token is not an access token (its typ must be at+jwt)', error);
    if (error.reason === 'missing') return invalidToken(`the token has no "${error.claim}" claim`, error);
    return invalidToken(`the token has an invalid "${error.claim}" claim`, error);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return invalidToken('the token signature does not verify', error);
  if (error instanceof errors.JOSEAlgNotAllowed)
    return invalidToken(
      `the token is signed with an algorithm not accepted (${batonTokenAlgorithms.join(', ')})`,
      error,
    );
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys)
    return invalidToken(`the token is not signed by a key ${issuer} publishes`, error);
  return invalidToken('the token is not a well-formed signed JWT', error);
}

/** Whether the token says it was issued after `seconds`. */
const issuedAfter = (payload: JWTPayload, seconds: number): boolean =>
  typeof payload.iat === 'number' && payload.iat > seconds;

/** A token that passed every check, and the key its signature was checked with. */
interface Remembered {
  readonly claims: BatonClaims;
  readonly header: { readonly alg: string; readonly kid?: string; readonly typ?: string };
  readonly key: unknown;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

/** The SHA-256 of a token, base64url: what a remembered token is filed under (never the token itself). */
async function digestOf(token: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token)));
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** A verifier for one Baton: its keys are fetched once, cached, and fetched again when a token names a new key. */
export function batonVerifier(options: VerifierOptions): BatonVerifier {
  const { issuer, clockToleranceSeconds = 5, clock, rememberTokens = 10_000 } = options;
  // A signature, once valid, stays valid for the same bytes and key: a remembered token is checked
  // again only for what can change (time, audience, that its key is still published), as Baton does.
  const remembered = new Map<string, Remembered>();
  const fetchImpl: FetchLike = options.fetch ?? ((input, init) => fetch(input, init));
  let keySet: Promise<JWTVerifyGetKey> | undefined;
  const keys = (): Promise<JWTVerifyGetKey> => {
    if (keySet === undefined) {
      const pending = (async () => {
        const jwksUri = options.jwksUri ?? (await discoverJwksUri(issuer, fetchImpl));
        return createRemoteJWKSet(new URL(jwksUri), { [customFetch]: fetchImpl });
      })();
      // A failed discovery is tried again on the next token, not remembered.
      pending.catch(() => {
        if (keySet === pending) keySet = undefined;
      });
      keySet = pending;
    }
    return keySet;
  };
  // Failures to read the keys are Baton's or the network's, not the token's: they keep their own code.
  const getKey: JWTVerifyGetKey = async (header, token) => {
    const remote = await keys();
    try {
      return await remote(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
      if (
        error instanceof errors.JWKSTimeout ||
        error instanceof errors.JWKSInvalid ||
        !(error instanceof errors.JOSEError) ||
        error.code === 'ERR_JOSE_GENERIC'
      )
        throw new BatonError('network_error', `could not read ${issuer}'s signing keys`, { cause: error });
      throw error;
    }
  };
  return {
    issuer,
    async verify(token, { audience }) {
      const now = clock === undefined ? Date.now() : clock.now();
      const digest = rememberTokens > 0 ? await digestOf(token) : undefined;
      const known = digest === undefined ? undefined : remembered.get(digest);
      if (known !== undefined) {
        const { expiresAt, payload } = known.claims;
        const seconds = Math.floor(now / 1000);
        const stillPublished = await keys()
          // A key set looks a key up by its header alone; the token itself is not needed.
          .then((remote) => remote(known.header, undefined as never))
          .then(
            (key) => key === known.key,
            () => false,
          );
        if (
          expiresAt > seconds - clockToleranceSeconds &&
          !(typeof payload.nbf === 'number' && payload.nbf > seconds + clockToleranceSeconds) &&
          !issuedAfter(payload, seconds + clockToleranceSeconds) &&
          stillPublished
        ) {
          if (known.claims.audience.includes(audience)) return known.claims;
          throw invalidToken(`the token is not for audience ${audience}`);
        }
        remembered.delete(digest as string);
      }
      let usedKey: unknown;
      try {
        const { payload, protectedHeader } = await jwtVerify(
          token,
          async (header, jws) => (usedKey = await getKey(header, jws)),
          {
            issuer,
            audience,
            typ: 'at+jwt',
            algorithms: [...batonTokenAlgorithms],
            requiredClaims: ['exp', 'sub', 'jti', 'tenant', 'client_id'],
            clockTolerance: clockToleranceSeconds,
            currentDate: new Date(now),
          },
        );
        const claims = claimsOf(payload);
        // jose leaves `iat` unchecked; Baton refuses a token issued in its future, and so does the SDK.
        if (issuedAfter(payload, Math.floor(now / 1000) + clockToleranceSeconds))
          throw invalidToken('the token was issued in the future');
        if (digest !== undefined) {
          if (remembered.size >= rememberTokens) remembered.delete(remembered.keys().next().value as string);
          remembered.set(digest, { claims: deepFreeze(claims), header: protectedHeader, key: usedKey });
        }
        return claims;
      } catch (error) {
        throw describeFailure(error, issuer, audience);
      }
    },
  };
}

const verifiers = new Map<string, BatonVerifier>();

/** One-shot verification: keeps one verifier (and its cached keys) per issuer for the life of the process. */
export function verifyBatonToken(
  token: string,
  options: { readonly issuer: string; readonly audience: string },
): Promise<BatonClaims> {
  let verifier = verifiers.get(options.issuer);
  if (verifier === undefined) {
    verifier = batonVerifier({ issuer: options.issuer });
    verifiers.set(options.issuer, verifier);
  }
  return verifier.verify(token, { audience: options.audience });
}
