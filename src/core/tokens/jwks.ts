import { createRemoteJWKSet, customFetch, errors, importJWK, type CryptoKey, type JWK } from 'jose';
import type { Jwks } from '../registry/schema.js';
import type { KeyResolver } from '../ports.js';

interface ImportedKey {
  readonly kid: string | undefined;
  readonly alg: string;
  readonly key: CryptoKey;
}

/** The JWS algorithm a public JWK is for: its `alg`, or the one its key type implies. */
export function algorithmOf(jwk: { kty: string; crv?: string | undefined; alg?: string | undefined }): string {
  if (jwk.alg !== undefined) return jwk.alg === 'Ed25519' ? 'EdDSA' : jwk.alg;
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'EC' && jwk.crv === 'P-384') return 'ES384';
  if (jwk.kty === 'RSA') return 'RS256';
  throw new Error(`unsupported key type ${jwk.kty}${jwk.crv === undefined ? '' : ` (${jwk.crv})`}`);
}

function normaliseAlg(alg: string | undefined): string | undefined {
  return alg === 'Ed25519' ? 'EdDSA' : alg;
}

/** A resolver over keys imported once; a header must name a key by `kid` unless the set holds one key. */
export function resolverOf(keys: readonly ImportedKey[]): KeyResolver {
  const byKid = new Map(keys.filter((k) => k.kid !== undefined).map((k) => [k.kid, k]));
  const only = keys.length === 1 ? keys[0] : undefined;
  return async (header) => {
    const found = header.kid === undefined ? only : byKid.get(header.kid);
    if (found === undefined || found.alg !== normaliseAlg(header.alg)) {
      throw new errors.JWKSNoMatchingKey();
    }
    return found.key;
  };
}

/** A JWK that cannot be imported, with its index in the set. */
export class JwkImportError extends Error {
  constructor(
    readonly index: number,
    reason: string,
  ) {
    super(reason);
    this.name = 'JwkImportError';
  }
}

/** Imports a public JWKS at start-up so no request ever imports a key. */
export async function importPublicJwks(jwks: Jwks): Promise<KeyResolver> {
  const keys = await Promise.all(
    jwks.keys.map(async (jwk, index) => {
      try {
        const alg = algorithmOf(jwk);
        const key = await importJWK(jwk as JWK, alg);
        if (key instanceof Uint8Array) throw new Error('not an asymmetric key');
        return { kid: jwk.kid, alg, key };
      } catch (cause) {
        throw new JwkImportError(index, cause instanceof Error ? cause.message : String(cause));
      }
    }),
  );
  return resolverOf(keys);
}

/** A resolver over a remote JWKS, fetched and cached by jose (cooldown and max age apply). */
export function remoteJwks(uri: string, fetchImpl?: typeof fetch): KeyResolver {
  const set = createRemoteJWKSet(new URL(uri), fetchImpl === undefined ? {} : { [customFetch]: fetchImpl });
  return async (header) => (await set(header)) as CryptoKey;
}
