import { verifyAssertion, type AssertionContext } from './assertion.js';
import { verifyWorkloadToken } from './workload-identity.js';
import { OAuthError, echo } from '../errors.js';
import { peekJwt } from '../tokens/jwt.js';
import { hexToBytes, type Sha256 } from '../sha256.js';
import { textProblem } from '../input/storable-text.js';
import type { Caller, Registry } from '../registry/registry.js';
import type { ClientAuthParams } from '../grants/token-request.js';

export const jwtBearerAssertionType = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

const authFailed = (detail: string): OAuthError =>
  new OAuthError('invalid_client', 'client authentication failed', { detail });

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
  let credentials: { id: string; secret: string };
  try {
    // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    const unform = (s: string): string => decodeURIComponent(s.replaceAll('+', ' '));
    credentials = { id: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) };
  } catch {
    throw new OAuthError('invalid_client', 'malformed Basic authorization header');
  }
  // A client id with a NUL (%00) names no client, and is never carried into the log or a query.
  if (textProblem(credentials.id) !== undefined || textProblem(credentials.secret) !== undefined)
    throw new OAuthError('invalid_client', 'malformed Basic authorization header');
  return credentials;
}

/** Checks a client secret against its registered SHA-256; `method` names the registered method it must match, if any. */
export function checkSecret(
  sha256: Sha256,
  caller: Caller | undefined,
  id: string,
  secret: string,
  method?: 'client_secret_basic' | 'client_secret_post',
): Caller {
  const digest = hexToBytes(sha256(secret));
  if (caller === undefined) throw authFailed(`unknown client ${echo(id)}`);
  if ((method !== undefined && caller.authMethod !== method) || caller.secretSha256 === undefined)
    throw authFailed(`client ${caller.id} is registered for ${caller.authMethod}, not ${method ?? 'a secret'}`);
  if (!sameDigest(digest, caller.secretSha256)) throw authFailed(`wrong secret for client ${caller.id}`);
  return caller;
}

/**
 * Authenticates the caller at the token and revocation endpoints by exactly one method (RFC 6749
 * §2.3, RFC 7523 §2.2). Two methods at once, an `Authorization` scheme other than Basic, or a
 * `client_id` naming another client than the credentials prove are `invalid_client` (401), like
 * any other failed authentication: the request does not say who the client is. An agent may
 * instead present a workload identity token as its `client_assertion`.
 */
export async function authenticateClient(
  ctx: AssertionContext,
  registry: Registry,
  authorization: string | undefined,
  params: ClientAuthParams,
  documentClient?: (clientId: string) => Promise<Caller | undefined>,
): Promise<Caller> {
  // A client identified by a metadata document URL (token endpoint only: see token-endpoint.ts).
  const lookup = async (id: string): Promise<Caller | undefined> =>
    registry.callers.get(id) ?? (await documentClient?.(id));
  const header = authorization === undefined || authorization.trim() === '' ? undefined : authorization;
  if (header !== undefined && !/^basic /i.test(header))
    throw new OAuthError('invalid_client', 'the Authorization header must use the Basic scheme at this endpoint');
  const assertionUsed = params.client_assertion !== undefined || params.client_assertion_type !== undefined;
  const methods = [header !== undefined, params.client_secret !== undefined, assertionUsed].filter(Boolean).length;
  if (methods > 1) throw new OAuthError('invalid_client', 'more than one client authentication method was used');
  if (methods === 0) {
    // A public client (PKCE only) identifies itself by client_id alone.
    const publicClient = params.client_id === undefined ? undefined : await lookup(params.client_id);
    if (publicClient?.authMethod === 'none') return publicClient;
    throw new OAuthError('invalid_client', 'client authentication is required');
  }

  if (header !== undefined) {
    const { id, secret } = parseBasic(header);
    if (params.client_id !== undefined && params.client_id !== id)
      throw new OAuthError('invalid_client', 'client_id does not match the authenticated client');
    return checkSecret(ctx.sha256, registry.callers.get(id), id, secret, 'client_secret_basic');
  }
  if (params.client_secret !== undefined) {
    if (params.client_id === undefined)
      throw new OAuthError('invalid_client', 'client_id is required with client_secret');
    return checkSecret(
      ctx.sha256,
      registry.callers.get(params.client_id),
      params.client_id,
      params.client_secret,
      'client_secret_post',
    );
  }

  if (params.client_assertion_type !== jwtBearerAssertionType)
    throw new OAuthError('invalid_client', `client_assertion_type must be ${jwtBearerAssertionType}`);
  const assertion = params.client_assertion;
  if (assertion === undefined)
    throw new OAuthError('invalid_client', 'client_assertion is required with client_assertion_type');
  const { iss, sub: claimed } = peekJwt(assertion, 'client_assertion', 'invalid_client').payload;
  const workload = typeof iss === 'string' ? registry.workloadIssuers.get(iss) : undefined;
  if (workload !== undefined) {
    const agent = await verifyWorkloadToken(ctx, registry, workload, assertion, 'client_assertion', 'invalid_client');
    if (params.client_id !== undefined && params.client_id !== agent.id)
      throw new OAuthError('invalid_client', 'client_id does not match the client_assertion');
    const caller = registry.callers.get(agent.id);
    if (caller === undefined) throw authFailed(`unknown client ${echo(agent.id)}`);
    return caller;
  }
  if (typeof claimed !== 'string') throw new OAuthError('invalid_client', 'client_assertion lacks the "sub" claim');
  // Checked before the unverified name goes anywhere (the refusal's log and audit detail included).
  const problem = textProblem(claimed);
  if (problem !== undefined)
    throw new OAuthError('invalid_client', `client_assertion has an invalid "sub" claim: it contains ${problem}`);
  if (params.client_id !== undefined && params.client_id !== claimed)
    throw new OAuthError('invalid_client', 'client_id does not match the client_assertion');
  const caller = await lookup(claimed);
  if (caller === undefined) throw authFailed(`unknown client ${echo(claimed)}`);
  if (caller.authMethod !== 'private_key_jwt')
    throw authFailed(`client ${claimed} is registered for ${caller.authMethod}, not private_key_jwt`);
  // An agent declared without keys is proven by its workload identity only.
  if (caller.resolve === undefined) throw authFailed(`client ${claimed} has no keys of its own`);
  await verifyAssertion(
    ctx,
    assertion,
    { id: caller.id, tenant: caller.tenant, resolve: caller.resolve },
    'client_assertion',
    'invalid_client',
  );
  return caller;
}
