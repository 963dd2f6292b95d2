import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { OAuthError, invalidRequest } from '../core/errors.js';
import { authorizationServerMetadata } from '../core/metadata.js';
import type { Logger } from '../core/ports.js';
import { repeatableParameters } from '../core/token-request.js';
import { handleTokenRequest, type TokenServiceContext } from '../core/token-service.js';
import { parseForm } from './form.js';
import { noStore, oauthErrorResponse } from './oauth-errors.js';

export interface AppDeps {
  readonly tokens: TokenServiceContext;
  readonly logger: Logger;
  readonly maxBodyBytes: number;
  /** Resolves when the database answers; rejects otherwise. */
  readonly checkReady: () => Promise<void>;
}

type Env = { Variables: { refusal: { error: string; detail: string | undefined } } };

/** Builds the Baton HTTP application from its dependencies; no globals, no runtime APIs. */
export function createApp(deps: AppDeps): Hono<Env> {
  const { tokens, logger } = deps;
  const app = new Hono<Env>();
  const metadata = authorizationServerMetadata(tokens.issuer, [tokens.keys.current.alg]);

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const refusal = c.get('refusal');
    logger.info('request', {
      method: c.req.method,
      route: c.req.routePath,
      status: c.res.status,
      duration_ms: Math.round((performance.now() - started) * 100) / 100,
      ...(refusal === undefined ? {} : { error: refusal.error, detail: refusal.detail }),
    });
  });

  app.get('/.well-known/oauth-authorization-server', (c) => c.json(metadata, 200, { 'Cache-Control': 'public, max-age=300' }));
  app.get('/.well-known/jwks.json', (c) => c.json(tokens.keys.publicJwks, 200, { 'Cache-Control': 'public, max-age=300' }));

  app.post(
    '/oauth2/token',
    bodyLimit({
      maxSize: deps.maxBodyBytes,
      onError: (c) => oauthErrorResponse(c, new OAuthError('invalid_request', `request body is larger than ${deps.maxBodyBytes} bytes`, { status: 413 }), logger),
    }),
    async (c) => {
      try {
        const type = c.req.header('content-type') ?? '';
        if (!/^application\/x-www-form-urlencoded(;|$)/i.test(type.trim())) {
          throw invalidRequest('content type must be application/x-www-form-urlencoded');
        }
        const params = parseForm(await c.req.text(), repeatableParameters);
        const response = await handleTokenRequest(tokens, { params, authorization: c.req.header('authorization') });
        return c.json(response, 200, noStore);
      } catch (error) {
        return oauthErrorResponse(c, error, logger);
      }
    },
  );
  app.all('/oauth2/token', (c) => c.json({ error: 'invalid_request', error_description: 'use POST' }, 405, { ...noStore, Allow: 'POST' }));

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    try {
      await deps.checkReady();
      return c.json({ status: 'ready' });
    } catch {
      return c.json({ status: 'unavailable' }, 503);
    }
  });

  app.notFound((c) => c.json({ error: 'not_found', error_description: `no route for ${c.req.method} ${c.req.path.slice(0, 200)}` }, 404));
  app.onError((error, c) => oauthErrorResponse(c, error, logger));
  return app;
}
