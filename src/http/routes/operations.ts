import { Hono } from 'hono';
import { operatorScopes } from '../../core/clients/callers.js';
import type { AppDeps } from '../app-deps.js';
import { requireScope } from '../callers.js';
import { errorsAs, type Env } from '../request.js';

/** What runs the service: liveness, readiness and the metrics (`baton:metrics`). */
export function operationRoutes({ checkReady, metricsText }: AppDeps): Hono<Env> {
  const routes = new Hono<Env>();

  routes.get('/metrics', errorsAs('api'), requireScope(operatorScopes.metrics), async (c) => {
    const { contentType, body } = await metricsText();
    return c.body(body, 200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  });
  routes.get('/healthz', (c) => c.json({ status: 'ok' }));
  routes.get('/readyz', async (c) => {
    // Not ready is an answer, not an error.
    try {
      await checkReady();
      return c.json({ status: 'ready' });
    } catch {
      return c.json({ status: 'unavailable' }, 503);
    }
  });
  return routes;
}
