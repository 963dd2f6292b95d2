import { importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import { BatonError } from './errors.js';
import { systemClock, type Clock } from './http.js';

/** An agent as Baton knows it: its id, and single-use RFC 7523 assertions that prove it. */
export interface AgentIdentity {
  /** The agent's id in Baton's registry (`iss` = `sub` of its assertions). */
  readonly id: string;
  /** Baton's issuer: the `aud` of the assertions. */
  readonly issuer: string;
  /** A fresh assertion: new `jti`, `iat` now, `exp` a short lifetime ahead. Use each one once. */
  assertion(): Promise<string>;
}

/** What `agentIdentity` needs. */
export interface AgentIdentityOptions {
  readonly id: string;
  /** The agent's private JWK (its `kid` and `alg` go into the assertion's header). */
  readonly privateJwk: JWK;
  /** Baton's issuer URL. */
  readonly issuer: string;
  readonly clock?: Clock;
  /** Seconds an assertion lives (default 60; Baton accepts at most 300). */
  readonly lifetimeSeconds?: number;
}

// Curves and key types whose algorithm is fixed; an RSA key must say which of its algorithms it signs with.
const algorithmByCurve: Readonly<Record<string, string>> = {
  Ed25519: 'EdDSA',
  'P-256': 'ES256',
  'P-384': 'ES384',
  'P-521': 'ES512',
};

/** Whether a value is an agent identity (as opposed to a token given as the actor). */
export function isAgentIdentity(value: unknown): value is AgentIdentity {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as AgentIdentity).assertion === 'function' &&
    typeof (value as AgentIdentity).id === 'string'
  );
}

/** An agent identity that signs its assertions with its private JWK (Web Crypto, through jose). */
export function agentIdentity(options: AgentIdentityOptions): AgentIdentity {
  const { id, privateJwk, issuer, clock = systemClock, lifetimeSeconds = 60 } = options;
  if (typeof id !== 'string' || id === '')
    throw new BatonError('invalid_key', 'an agent identity needs a non-empty id');
  if (typeof issuer !== 'string' || issuer === '')
    throw new BatonError('invalid_key', "an agent identity needs Baton's issuer");
  if (!Number.isInteger(lifetimeSeconds) || lifetimeSeconds < 1 || lifetimeSeconds > 300)
    throw new BatonError('invalid_key', 'lifetimeSeconds must be a whole number from 1 to 300');
  if (typeof privateJwk !== 'object' || privateJwk === null || typeof privateJwk.d !== 'string')
    throw new BatonError('invalid_key', `the JWK of agent ${id} is not a private key`);
  const alg = privateJwk.alg ?? (privateJwk.crv === undefined ? undefined : algorithmByCurve[privateJwk.crv]);
  if (alg === undefined)
    throw new BatonError('invalid_key', `the JWK of agent ${id} names no "alg" and its key type does not imply one`);
  let key: Promise<CryptoKey> | undefined;
  const signingKey = () =>
    (key ??= (importJWK(privateJwk, alg) as Promise<CryptoKey>).catch((cause: unknown) => {
      key = undefined;
      throw new BatonError('invalid_key', `the JWK of agent ${id} could not be imported for ${alg}`, { cause });
    }));
  return {
    id,
    issuer,
    async assertion() {
      const now = Math.floor(clock.now() / 1000);
      return new SignJWT({})
        .setProtectedHeader({ alg, ...(privateJwk.kid === undefined ? {} : { kid: privateJwk.kid }) })
        .setIssuer(id)
        .setSubject(id)
        .setAudience(issuer)
        .setIssuedAt(now)
        .setExpirationTime(now + lifetimeSeconds)
        .setJti(crypto.randomUUID())
        .sign(await signingKey());
    },
  };
}
