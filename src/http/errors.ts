import type { Context } from 'hono';
import { OAuthError, StorageUnavailableError } from '../core/errors.js';
import type { AppDeps } from './app-deps.js';
import { callerChallenge, clientChallenge, oauthErrorResponse } from './oauth-errors.js';
import { tally } from './refusals.js';
import type { Env } from './request.js';
import { unavailablePage } from './routes/browser.js';

/**
 * Turns anything thrown at a route into its answer, in the style the route's family names (see
 * `errorsAs`); the one place that does. A sign-in page whose store does not answer gets a page
 * saying so; everything else is RFC 6749 JSON, with the caller challenge on 401 at the APIs and the
 * client challenge elsewhere. A refusal without an audit entry of its own (refused before the
 * endpoint's logic) is first audited through the tally.
 */
export async function errorResponse(c: Context<Env>, error: unknown, deps: AppDeps): Promise<Response> {
  const style = c.get('errors');
  if (style === 'page' && error instanceof StorageUnavailableError) return unavailablePage(c, error, deps);
  const challenge = style === 'api' ? callerChallenge : clientChallenge;
  if (error instanceof OAuthError && !error.audited && error.status < 500) {
    try {
      await tally(c, deps, {
        status: error.status,
        code: error.code,
        description: error.description,
        detail: error.detail,
      });
    } catch (failure) {
      return oauthErrorResponse(c, failure, deps.logger, challenge);
    }
  }
  return oauthErrorResponse(c, error, deps.logger, challenge);
}
