import { BatonError, OAuthResponseError } from './errors.js';
import { assertWellFormed } from './http.js';
import type { Actor, BatonClient, ClientCredentials, IssuedToken } from './exchange.js';

/** What `authorizationUrl` builds a request from. */
export interface AuthorizationUrlParams {
  /** Baton's authorization endpoint (its metadata's `authorization_endpoint`, `<issuer>/oauth2/authorize`). */
  readonly authorizationEndpoint: string;
  readonly clientId: string;
  readonly redirectUri: string;
  readonly scope?: string | readonly string[];
  readonly authorizationDetails?: readonly object[];
  /** The agent the user is asked to let act for them (`requested_actor`). */
  readonly requestedActor?: string;
  readonly resource?: string | readonly string[];
  /** Default: 128 random bits. */
  readonly state?: string;
}

/** The URL to send the browser to, and what to keep (server-side, in the user's session) for the callback. */
export interface AuthorizationRequest {
  readonly url: string;
  readonly state: string;
  /** The PKCE verifier (RFC 7636): needed once, to redeem the code. */
  readonly codeVerifier: string;
}

/** An authorization-code request with PKCE S256 and, for an agent, `requested_actor`. */
export async function authorizationUrl(params: AuthorizationUrlParams): Promise<AuthorizationRequest> {
  const codeVerifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = params.state ?? base64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = base64url(
    new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(codeVerifier))),
  );
  const entries: [string, string][] = [
    ['response_type', 'code'],
    ['client_id', params.clientId],
    ['redirect_uri', params.redirectUri],
  ];
  if (params.scope !== undefined)
    entries.push(['scope', typeof params.scope === 'string' ? params.scope : params.scope.join(' ')]);
  if (params.authorizationDetails !== undefined)
    entries.push(['authorization_details', JSON.stringify(params.authorizationDetails)]);
  if (params.requestedActor !== undefined) entries.push(['requested_actor', params.requestedActor]);
  for (const resource of typeof params.resource === 'string' ? [params.resource] : (params.resource ?? []))
    entries.push(['resource', resource]);
  entries.push(['state', state], ['code_challenge', challenge], ['code_challenge_method', 'S256']);
  // Checked before URL encoding, which would turn a lone surrogate into U+FFFD without a word.
  for (const [name, value] of entries) assertWellFormed(name, value);
  const url = new URL(params.authorizationEndpoint);
  for (const [name, value] of entries)
    if (name === 'resource') url.searchParams.append(name, value);
    else url.searchParams.set(name, value);
  return { url: url.toString(), state, codeVerifier };
}

/**
 * Checks the redirect back from Baton (RFC 9207 `iss`, then `state`) before believing anything it
 * says, and returns the code. An error Baton sent back is thrown as `OAuthResponseError` with
 * status 302 (it came by redirect, not as an HTTP answer).
 */
export function validateCallback(callbackUrl: string | URL, expected: { state: string; issuer: string }): string {
  let query: URLSearchParams;
  try {
    query = new URL(callbackUrl).searchParams;
  } catch (cause) {
    throw new BatonError('invalid_response', 'the callback URL is not a URL', { cause });
  }
  const one = (name: string): string | undefined => {
    const values = query.getAll(name);
    if (values.length > 1) throw new BatonError('invalid_response', `the callback repeats ${name}`);
    return values[0];
  };
  // Checked first: an answer from another issuer (a mix-up) or for another request (CSRF) says nothing.
  if (one('iss') !== expected.issuer)
    throw new BatonError('invalid_issuer', `the callback's iss is not ${expected.issuer}`);
  if (one('state') !== expected.state) throw new BatonError('invalid_state', "the callback's state does not match");
  const error = one('error');
  if (error !== undefined) throw new OAuthResponseError(error, one('error_description'), 302, undefined);
  const code = one('code');
  if (code === undefined || code === '') throw new BatonError('invalid_response', 'the callback carries no code');
  return code;
}

/** What `redeemCode` sends. */
export interface RedeemCodeParams {
  readonly code: string;
  readonly codeVerifier: string;
  readonly redirectUri: string;
  /** Default: the client's credentials (a public client gives `{ id }` alone). */
  readonly client?: ClientCredentials;
  /** The agent the code was issued for, proven by a fresh assertion or a token it holds. */
  readonly actor?: Actor;
  readonly signal?: AbortSignal;
}

/** Redeems an authorization code at Baton's token endpoint, with the PKCE verifier and the actor's proof. */
export function redeemCode(client: BatonClient, params: RedeemCodeParams): Promise<IssuedToken> {
  return client.requestToken(
    {
      grant_type: 'authorization_code',
      code: params.code,
      redirect_uri: params.redirectUri,
      code_verifier: params.codeVerifier,
    },
    params.client,
    params.signal,
    params.actor,
  );
}

function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
