import { CompactSign, SignJWT, type JWTPayload } from 'jose';
import { demoIssuers, demoKey } from '../../src/cli/demo-kit.js';
import { randomId } from '../../src/core/secrets.js';

/** Seconds since the epoch, as JWT time claims count. */
export const epochSeconds = (): number => Math.floor(Date.now() / 1000);

/** Claims with `undefined` members removed (so a case can drop a claim). */
function present(claims: Record<string, unknown>): JWTPayload {
  return Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined)) as JWTPayload;
}

/**
 * A token from a tenant's demo identity provider (a trusted issuer), validly signed, with any
 * claims: the defaults make an ordinary user token for Baton, `claims` override or drop them.
 */
export async function upstreamToken(
  audience: string,
  claims: Record<string, unknown> = {},
  tenant: 'acme' | 'globex' = 'acme',
): Promise<string> {
  const issuer = demoIssuers[tenant] as string;
  const { key, kid } = await demoKey(new URL(issuer).host);
  const payload = present({
    iss: issuer,
    sub: 'alice',
    aud: audience,
    iat: epochSeconds(),
    exp: epochSeconds() + 600,
    jti: randomId(),
    scope: 'openid payments:read payments:transfer ledger:read',
    ...claims,
  });
  return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'JWT' }).sign(key);
}

/** A demo agent's RFC 7523 assertion (`iss` = `sub` = agent), validly signed, with any claims. */
export async function agentAssertion(
  agent: string,
  audience: string,
  claims: Record<string, unknown> = {},
): Promise<string> {
  const { key, kid } = await demoKey(agent);
  const payload = present({
    iss: agent,
    sub: agent,
    aud: audience,
    iat: epochSeconds(),
    exp: epochSeconds() + 60,
    jti: randomId(),
    ...claims,
  });
  return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', kid }).sign(key);
}

/**
 * A token from acme's demo identity provider whose payload is exactly `json` (text JSON.stringify
 * cannot write, such as the number 1e400).
 */
export async function upstreamTokenFromText(json: string): Promise<string> {
  const { key, kid } = await demoKey('id.acme.example');
  return new CompactSign(new TextEncoder().encode(json))
    .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'JWT' })
    .sign(key);
}
