import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importJWK, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { randomId } from '../core/secrets.js';

/** Where the demo's published private keys live (see policies/demo-keys/README.md). */
export const demoKeyDir = join(import.meta.dirname, '..', '..', 'policies', 'demo-keys');

/** Demo identity providers by tenant. */
export const demoIssuers: Readonly<Record<string, string>> = {
  acme: 'https://id.acme.example',
  globex: 'https://id.globex.example',
};

const cache = new Map<string, { key: CryptoKey; kid: string }>();

/** Imports a demo private key by its file name stem (an agent id or an issuer host). */
export async function demoKey(name: string): Promise<{ key: CryptoKey; kid: string }> {
  let found = cache.get(name);
  if (found === undefined) {
    const jwk = JSON.parse(readFileSync(join(demoKeyDir, `${name}.private.jwk.json`), 'utf8')) as JWK;
    found = { key: (await importJWK(jwk, 'EdDSA')) as CryptoKey, kid: jwk.kid as string };
    cache.set(name, found);
  }
  return found;
}

/** The demo client secrets, in clear (the registry holds only their hashes). */
export function demoSecret(clientId: string): string {
  const secrets = JSON.parse(readFileSync(join(demoKeyDir, 'client-secrets.json'), 'utf8')) as Record<string, string>;
  const secret = secrets[clientId];
  if (secret === undefined) throw new Error(`no demo secret for ${clientId}`);
  return secret;
}

export interface UserTokenOptions {
  readonly tenant?: string;
  readonly audience: string;
  readonly scope?: string;
  readonly mayAct?: string;
  readonly lifetimeSeconds?: number;
  /** Extra or overriding claims. */
  readonly claims?: JWTPayload;
}

/** Signs a token for a demo user as the tenant's demo identity provider would. */
export async function mintUserToken(user: string, options: UserTokenOptions): Promise<string> {
  const issuer = demoIssuers[options.tenant ?? 'acme'];
  if (issuer === undefined) throw new Error(`no demo identity provider for tenant ${options.tenant}`);
  const { key, kid } = await demoKey(new URL(issuer).host);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    scope: options.scope ?? 'openid payments:read payments:transfer calendar:read',
    ...(options.mayAct === undefined ? {} : { may_act: { sub: options.mayAct } }),
    ...options.claims,
  })
    .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'JWT' })
    .setIssuer(issuer)
    .setSubject(user)
    .setAudience(options.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.lifetimeSeconds ?? 600))
    .setJti(randomId())
    .sign(key);
}

/** Signs a single-use RFC 7523 assertion for a demo agent (`iss` = `sub` = agent). */
export async function mintAgentAssertion(agent: string, audience: string, claims: JWTPayload = {}): Promise<string> {
  const { key, kid } = await demoKey(agent);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'EdDSA', kid })
    .setIssuer(agent)
    .setSubject(agent)
    .setAudience(audience)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .setJti(randomId())
    .sign(key);
}
