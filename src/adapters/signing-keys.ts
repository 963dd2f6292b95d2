import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { algorithmOf, resolverOf } from '../core/tokens/jwks.js';
import type { SigningKeys } from '../core/ports.js';

export type SigningAlgorithm = 'EdDSA' | 'ES256';
export interface PrivateJwks {
  readonly keys: readonly JWK[];
}

const privateMembers = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi']);

function publicPart(jwk: JWK): JWK {
  return Object.fromEntries(
    Object.entries(jwk).filter(([k]) => !privateMembers.has(k) && k !== 'key_ops' && k !== 'ext'),
  ) as JWK;
}

/** Turns a private JWK into the function that signs JWS inputs with it. */
export type SignerFactory = (
  jwk: JWK,
  alg: SigningAlgorithm,
) => Promise<(signingInput: Uint8Array) => Promise<Uint8Array>>;

/** Signs with Web Crypto (any runtime); ECDSA signatures come in the r||s form JWS uses. */
const webCryptoSigner: SignerFactory = async (jwk, alg) => {
  const key = (await importJWK(jwk, alg)) as CryptoKey;
  const params = alg === 'EdDSA' ? { name: 'Ed25519' } : { name: 'ECDSA', hash: 'SHA-256' };
  return async (signingInput) => new Uint8Array(await crypto.subtle.sign(params, key, signingInput));
};

/**
 * Imports Baton's signing keys once: the first key signs, all are published and verify,
 * so the next key is known to verifiers before it is rotated in.
 */
export async function importSigningKeys(
  jwks: PrivateJwks,
  signer: SignerFactory = webCryptoSigner,
): Promise<SigningKeys> {
  const [first] = jwks.keys;
  if (first === undefined) throw new Error('signing key set is empty');
  const imported = await Promise.all(
    jwks.keys.map(async (jwk, index) => {
      if (typeof jwk.kid !== 'string' || jwk.kid === '') throw new Error(`signing key ${index} has no kid`);
      if (typeof jwk.d !== 'string') throw new Error(`signing key ${jwk.kid} is not a private key`);
      const alg = algorithmOf({ kty: jwk.kty ?? '', crv: jwk.crv, alg: jwk.alg });
      if (alg !== 'EdDSA' && alg !== 'ES256')
        throw new Error(`signing key ${jwk.kid} uses ${alg}; EdDSA and ES256 are supported`);
      const pub = { ...publicPart(jwk), alg, use: 'sig' };
      const sign = await signer(jwk, alg);
      const publicKey = (await importJWK(pub, alg)) as CryptoKey;
      return { kid: jwk.kid, alg, sign, publicKey, pub };
    }),
  );
  const current = imported[0] as (typeof imported)[number];
  return {
    current: { kid: current.kid, alg: current.alg, sign: current.sign },
    publicJwks: { keys: imported.map((k) => k.pub) },
    resolve: resolverOf(imported.map((k) => ({ kid: k.kid, alg: k.alg, key: k.publicKey }))),
  };
}

/**
 * Refuses audit keys that share a key with the token signing keys: a checkpoint must be signed by
 * a key that signs nothing else, so that whoever can mint tokens cannot vouch for a log.
 */
export async function assertDistinctKeys(signing: SigningKeys, audit: SigningKeys): Promise<void> {
  const thumbprints = async (keys: SigningKeys) =>
    Promise.all(
      keys.publicJwks.keys.map(async (jwk) => ({
        kid: jwk.kid as string,
        thumbprint: await calculateJwkThumbprint(jwk as JWK),
      })),
    );
  const tokens = await thumbprints(signing);
  for (const key of await thumbprints(audit)) {
    const shared = tokens.find((t) => t.thumbprint === key.thumbprint || t.kid === key.kid);
    if (shared !== undefined)
      throw new Error(
        `audit key ${key.kid} is also a token signing key (${shared.kid}): checkpoints must be signed with a key of their own`,
      );
  }
}

/** Generates a current and a next private key, each with its RFC 7638 thumbprint as `kid`. */
export async function generateSigningKeys(alg: SigningAlgorithm): Promise<PrivateJwks> {
  const one = async (): Promise<JWK> => {
    const { privateKey } = await generateKeyPair(alg, {
      extractable: true,
      ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
    });
    const jwk = await exportJWK(privateKey);
    return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' };
  };
  return { keys: [await one(), await one()] };
}
