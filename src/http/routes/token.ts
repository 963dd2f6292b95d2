import { Hono } from 'hono';
import { OAuthError } from '../../core/errors.js';
import { handleTokenRequest } from '../../core/grants/token-endpoint.js';
import { repeatableParameters } from '../../core/grants/token-request.js';
import { introspection, revokeToken } from '../../core/revocation/revoke.js';
import type { AppDeps } from '../app-deps.js';
import { noStore } from '../oauth-errors.js';
import { errorsAs, formOf, known, requestIdOf, type Env } from '../request.js';

/**
 * The token endpoint, revocation (RFC 7009) and introspection (RFC 7662). Their callers
 * authenticate in the form or the `Authorization` header as the core checks it, so no
 * caller-authentication middleware; introspection answers errors as the APIs do.
 */
export function tokenRoutes(deps: AppDeps): Hono<Env> {
  const routes = new Hono<Env>();
  const oauth = errorsAs('oauth');

  routes.post('/oauth2/token', oauth, async (c) => {
    const params = await formOf(c, deps, repeatableParameters);
    const response = await handleTokenRequest(c.get('service'), {
      params,
      authorization: c.req.header('authorization'),
      requestId: requestIdOf(c),
      observe: (who) => c.set('who', who),
    });
    return c.json(response, 200, noStore);
  });
  routes.post('/oauth2/revoke', oauth, async (c) => {
    await revokeToken(
      c.get('service'),
      await formOf(c, deps),
      c.req.header('authorization'),
      requestIdOf(c),
      (caller) => known(c, caller),
    );
    return c.body(null, 200, noStore);
  });
  routes.post('/oauth2/introspect', errorsAs('api'), async (c) =>
    c.json(
      await introspection(
        c.get('service'),
        c.req.header('authorization'),
        () => formOf(c, deps),
        requestIdOf(c),
        (caller) => known(c, caller),
      ),
      200,
      noStore,
    ),
  );
  // Every other method at the token endpoint (registered after POST, which answers first).
  routes.all('/oauth2/token', oauth, (c) => {
    c.header('Allow', 'POST');
    throw new OAuthError('invalid_request', 'use POST', { status: 405 });
  });
  return routes;
}
