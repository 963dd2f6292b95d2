import type { Context } from 'hono';
import { BearerTokenError, OAuthError, StorageUnavailableError } from '../core/errors.js';
import type { Logger } from '../core/ports.js';

/** Headers every OAuth response carries (RFC 6749 §5.1). */
export const noStore = { 'Cache-Control': 'no-store', Pragma: 'no-cache' } as const;

/** The challenge sent with 401 at the token endpoint (client authentication). */
export const clientChallenge = 'Basic realm="baton", error="invalid_client"';
/** The challenge sent with 401 at the APIs resource servers, auditors and operators call. */
export const callerChallenge = 'Basic realm="baton", Bearer realm="baton"';

/** The RFC 6750 §3 challenge of a refused bearer token: its error only when a token was sent. */
function bearerChallenge(error: BearerTokenError): string {
  const { tokenSent, scope } = error.challenge;
  return `Bearer realm="baton"${tokenSent ? `, error="${error.code}"` : ''}, scope="${scope}"`;
}

/** Turns anything thrown at an endpoint into an RFC 6749 §5.2 style JSON response (errors.ts decides when, and with which challenge). */
export function oauthErrorResponse(c: Context, error: unknown, logger: Logger, challenge: string): Response {
  let oauth: OAuthError;
  if (error instanceof OAuthError) {
    oauth = error;
  } else if (error instanceof StorageUnavailableError) {
    logger.error('storage unavailable', { route: c.req.path, detail: error.message });
    oauth = new OAuthError('temporarily_unavailable', 'the service is temporarily unavailable; retry later');
  } else {
    logger.error('unexpected error', {
      route: c.req.path,
      detail: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    });
    oauth = new OAuthError('server_error', 'the server could not process the request');
  }
  const headers: Record<string, string> = { ...noStore };
  if (oauth instanceof BearerTokenError) headers['WWW-Authenticate'] = bearerChallenge(oauth);
  else if (oauth.status === 401) headers['WWW-Authenticate'] = challenge;
  if (oauth.status === 503 || oauth.status === 429) headers['Retry-After'] = String(oauth.retryAfterSeconds ?? 1);
  c.set('refusal', { error: oauth.code, detail: oauth.detail });
  return c.json(oauth.toJSON(), oauth.status as 400, headers);
}
