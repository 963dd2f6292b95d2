import { Hono } from 'hono';
import { registerClient } from '../../core/clients/registration.js';
import { OAuthError } from '../../core/errors.js';
import type { AppDeps } from '../app-deps.js';
import { noStore } from '../oauth-errors.js';
import { errorsAs, jsonOf, known, requestIdOf, type Env } from '../request.js';

/**
 * RFC 7591 dynamic client registration (`POST /oauth2/register`), where the registry is kept in
 * the database (`deps.registryStore`): a registered client is stored there like any other.
 */
export function registrationRoutes(deps: AppDeps): Hono<Env> {
  const routes = new Hono<Env>();
  const store = deps.registryStore;
  if (store === undefined) return routes;
  const oauth = errorsAs('oauth');

  routes.post('/oauth2/register', oauth, async (c) =>
    c.json(
      await registerClient(c.get('service'), store, {
        authorization: c.req.header('authorization'),
        remoteAddress: deps.remoteAddress?.(c),
        requestId: requestIdOf(c),
        body: () => jsonOf(c, deps),
        observe: (caller) => known(c, caller),
      }),
      201,
      noStore,
    ),
  );
  routes.all('/oauth2/register', oauth, (c) => {
    c.header('Allow', 'POST');
    throw new OAuthError('invalid_request', 'use POST', { status: 405 });
  });
  return routes;
}
