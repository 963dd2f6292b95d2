import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { evaluateBatch, evaluate, evaluationSchema, evaluationsSchema, parseAuthzen } from '../core/authzen.js';
import { authenticateResourceServer, authenticateWithScope } from '../core/callers.js';
import { decide, parseAuthorizeRequest } from '../core/decisions.js';
import { OAuthError, invalidRequest } from '../core/errors.js';
import { authorizationServerMetadata } from '../core/metadata.js';
import type { Logger } from '../core/ports.js';
import { repeatableParameters } from '../core/token-request.js';
import { handleTokenRequest, type TokenServiceContext } from '../core/token-service.js';
import { parseForm } from './form.js';
import { readJsonBody } from './json-body.js';
import { callerChallenge, noStore, oauthErrorResponse } from './oauth-errors.js';

export interface AppDeps {
  readonly tokens: TokenServiceContext;
  readonly logger: Logger;
  readonly maxBodyBytes: number;
  /** Resolves when the database answers; rejects otherwise. */
  readonly checkReady: () => Promise<void>;
  /** Re-read and swap in the policy set or the registry; reject (keeping the old one) when invalid. */
  readonly reload: { readonly policies: () => Promise<readonly string[]>; readonly registry: () => Promise<void> };
}

type Env = { Variables: { refusal: { error: string; detail: string | undefined } } };

/** Builds the Baton HTTP application from its dependencies; no globals, no runtime APIs. */
export function createApp(deps: AppDeps): Hono<Env> {
  const { tokens, logger } = deps;
  const app = new Hono<Env>();
  const metadata = authorizationServerMetadata(tokens.issuer, [tokens.keys.current.alg], [...tokens.detailTypes.keys()]);
  const base = tokens.issuer;
  const authzenMetadata = {
    policy_decision_point: base,
    access_evaluation_endpoint: `${base}/access/v1/evaluation`,
    access_evaluations_endpoint: `${base}/access/v1/evaluations`,
  };
  const limit = bodyLimit({
    maxSize: deps.maxBodyBytes,
    onError: (c) => oauthErrorResponse(c, new OAuthError('invalid_request', `request body is larger than ${deps.maxBodyBytes} bytes`, { status: 413 }), logger),
  });
  /** Runs a JSON API handler; errors become JSON with the caller challenge on 401. */
  const api = (handler: (c: Context<Env>) => Promise<Response>) => async (c: Context<Env>) => {
    try {
      return await handler(c);
    } catch (error) {
      return oauthErrorResponse(c, error, logger, callerChallenge);
    }
  };

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const requestId = c.req.header('x-request-id');
    if (requestId !== undefined) c.header('X-Request-ID', requestId);
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
  app.get('/.well-known/authzen-configuration', (c) => c.json(authzenMetadata, 200, { 'Cache-Control': 'public, max-age=300' }));

  app.post('/oauth2/token', limit, async (c) => {
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
  });
  app.all('/oauth2/token', (c) => c.json({ error: 'invalid_request', error_description: 'use POST' }, 405, { ...noStore, Allow: 'POST' }));

  app.post(
    '/authorize',
    limit,
    api(async (c) => {
      const caller = await authenticateResourceServer(tokens, tokens.registry(), c.req.header('authorization'));
      const outcome = await decide(tokens, caller, parseAuthorizeRequest(await readJsonBody(c)));
      if (outcome.detail !== undefined) c.set('refusal', { error: outcome.decision, detail: outcome.detail });
      return c.json({ decision: outcome.decision, action_id: outcome.action_id, reasons: outcome.reasons }, 200, noStore);
    }),
  );

  app.post(
    '/access/v1/evaluation',
    limit,
    api(async (c) => {
      const caller = await authenticateResourceServer(tokens, tokens.registry(), c.req.header('authorization'));
      return c.json(evaluate(tokens.policy(), caller, parseAuthzen(evaluationSchema, await readJsonBody(c))), 200, noStore);
    }),
  );
  app.post(
    '/access/v1/evaluations',
    limit,
    api(async (c) => {
      const caller = await authenticateResourceServer(tokens, tokens.registry(), c.req.header('authorization'));
      return c.json(evaluateBatch(tokens.policy(), caller, parseAuthzen(evaluationsSchema, await readJsonBody(c))), 200, noStore);
    }),
  );

  app.post(
    '/admin/policies/reload',
    api(async (c) => {
      await authenticateWithScope(tokens, tokens.registry(), c.req.header('authorization'), 'baton:admin');
      try {
        return c.json({ status: 'reloaded', policies: await deps.reload.policies() }, 200, noStore);
      } catch (error) {
        throw invalidRequest(`the new policy set was refused; the running set stays: ${error instanceof Error ? error.message : String(error)}`);
      }
    }),
  );
  app.post(
    '/admin/registry/reload',
    api(async (c) => {
      await authenticateWithScope(tokens, tokens.registry(), c.req.header('authorization'), 'baton:admin');
      try {
        await deps.reload.registry();
        return c.json({ status: 'reloaded' }, 200, noStore);
      } catch (error) {
        throw invalidRequest(`the new registry was refused; the running one stays: ${error instanceof Error ? error.message : String(error)}`);
      }
    }),
  );

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
