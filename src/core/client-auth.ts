import { verifyAssertion, type AssertionContext } from './assertion.js';
import { OAuthError, echo, invalidRequest } from './errors.js';
import { peekJwt } from './jwt.js';
import type { Sha256 } from './ports.js';
import type { Caller, Registry } from './registry.js';
import type { ClientAuthParams } from './token-request.js';

export const jwtBearerAssertionType = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

const authFailed = (detail: string): OAuthError => new OAuthError('invalid_client', 'client authentication failed', { detail });

/** Compares two digests in time independent of where they differ. */
function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** Decodes an HTTP Basic `Authorization` header into client id and secret. */
export function parseBasic(header: string): { id: string; secret: string } {
  const encoded = header.slice('basic '.length).trim();
  let decoded: string;
  try {
    decoded = atob(encoded);
  } catch {
    throw new OAuthError('invalid_client', 'malformed Basic authorization header');
  }
  const colon = decoded.indexOf(':');
  if (colon < 1) throw new OAuthError('invalid_client', 'malformed Basic authorization header');
  try {
    // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    const unform = (s: string): string => decodeURIComponent(s.replaceAll('+', ' '));
    return { id: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) };
  } catch {
    throw new OAuthError('invalid_client', 'malformed Basic authorization header');
  }
}

/** Checks a client secret against its registered SHA-256; `method` names the registered method it must match, if any. */
export function checkSecret(sha256: Sha256, caller: Caller | undefined, id: string, secret: string, method?: 'client_secret_basic' | 'client_secret_post'): Caller {
  const digest = sha256(secret);
  if (caller === undefined) throw authFailed(`unknown client ${echo(id)}`);
  if ((method !== undefined && caller.authMethod !== method) || caller.secretSha256 === undefined) throw authFailed(`client ${caller.id} is registered for ${caller.authMethod}, not ${method ?? 'a secret'}`);
  if (!sameDigest(digest, caller.secretSha256)) throw authFailed(`wrong secret for client ${caller.id}`);
  return caller;
}

/** Authenticates the caller at the token endpoint by exactly one method (RFC 6749 §2.3, RFC 7523 §2.2). */
export async function authenticateClient(
  ctx: AssertionContext,
  registry: Registry,
  authorization: string | undefined,
  params: ClientAuthParams,
): Promise<Caller> {
  const basic = authorization !== undefined && /^basic /i.test(authorization);
  const methods = [basic, params.client_secret !== undefined, params.client_assertion !== undefined].filter(Boolean).length;
  if (methods > 1) throw invalidRequest('more than one client authentication method was used');
  if (methods === 0) {
    // A public client (PKCE only) identifies itself by client_id alone.
    const publicClient = params.client_id === undefined ? undefined : registry.callers.get(params.client_id);
    if (publicClient?.authMethod === 'none') return publicClient;
    throw new OAuthError('invalid_client', 'client authentication is required');
  }

  if (basic) {
    const { id, secret } = parseBasic(authorization);
    if (params.client_id !== undefined && params.client_id !== id) throw invalidRequest('client_id does not match the authenticated client');
    return checkSecret(ctx.sha256, registry.callers.get(id), id, secret, 'client_secret_basic');
  }
  if (params.client_secret !== undefined) {
    if (params.client_id === undefined) throw invalidRequest('client_id is required with client_secret');
    return checkSecret(ctx.sha256, registry.callers.get(params.client_id), params.client_id, params.client_secret, 'client_secret_post');
  }

  const assertion = params.client_assertion as string;
  if (params.client_assertion_type !== jwtBearerAssertionType) throw new OAuthError('invalid_client', `client_assertion_type must be ${jwtBearerAssertionType}`);
  const claimed = peekJwt(assertion, 'client_assertion', 'invalid_client').payload.sub;
  if (typeof claimed !== 'string') throw new OAuthError('invalid_client', 'client_assertion lacks the "sub" claim');
  if (params.client_id !== undefined && params.client_id !== claimed) throw invalidRequest('client_id does not match the client_assertion');
  const caller = registry.callers.get(claimed);
  if (caller === undefined) throw authFailed(`unknown client ${echo(claimed)}`);
  if (caller.authMethod !== 'private_key_jwt' || caller.resolve === undefined) throw authFailed(`client ${claimed} is registered for ${caller.authMethod}, not private_key_jwt`);
  await verifyAssertion(ctx, assertion, { id: caller.id, tenant: caller.tenant, resolve: caller.resolve }, 'client_assertion', 'invalid_client');
  return caller;
}
