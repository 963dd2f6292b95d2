import { Hono } from 'hono';
import {
  evaluate,
  evaluateBatch,
  evaluationSchema,
  evaluationsSchema,
  parseAuthzen,
} from '../../core/decisions/authzen.js';
import {
  actionSearchSchema,
  resourceSearchSchema,
  searchActions,
  searchResources,
  searchSubjects,
  subjectSearchSchema,
} from '../../core/decisions/authzen-search.js';
import { decide, parseAuthorizeRequest } from '../../core/decisions/authorize.js';
import type { AppDeps } from '../app-deps.js';
import { requireResourceServer } from '../callers.js';
import { noStore } from '../oauth-errors.js';
import { errorsAs, jsonOf, requestIdOf, type Env } from '../request.js';

/** Decisions for registered resource servers: `POST /authorize` and the AuthZEN evaluation and search endpoints. */
export function decisionRoutes(deps: AppDeps): Hono<Env> {
  const { service } = deps;
  const routes = new Hono<Env>();
  const api = errorsAs('api');
  const resourceServer = requireResourceServer(service);

  routes.post('/authorize', api, resourceServer, async (c) => {
    const outcome = await decide(
      service,
      c.get('caller'),
      parseAuthorizeRequest(await jsonOf(c, deps)),
      requestIdOf(c),
    );
    if (outcome.detail !== undefined) c.set('refusal', { error: outcome.decision, detail: outcome.detail });
    return c.json({ decision: outcome.decision, action_id: outcome.action_id, reasons: outcome.reasons }, 200, noStore);
  });
  routes.post('/access/v1/evaluation', api, resourceServer, async (c) =>
    c.json(
      await evaluate(service, c.get('caller'), parseAuthzen(evaluationSchema, await jsonOf(c, deps)), requestIdOf(c)),
      200,
      noStore,
    ),
  );
  routes.post('/access/v1/evaluations', api, resourceServer, async (c) =>
    c.json(
      await evaluateBatch(
        service,
        c.get('caller'),
        parseAuthzen(evaluationsSchema, await jsonOf(c, deps)),
        requestIdOf(c),
      ),
      200,
      noStore,
    ),
  );
  routes.post('/access/v1/search/subject', api, resourceServer, async (c) =>
    c.json(
      await searchSubjects(
        service,
        c.get('caller'),
        parseAuthzen(subjectSearchSchema, await jsonOf(c, deps)),
        requestIdOf(c),
      ),
      200,
      noStore,
    ),
  );
  routes.post('/access/v1/search/resource', api, resourceServer, async (c) =>
    c.json(
      await searchResources(
        service,
        c.get('caller'),
        parseAuthzen(resourceSearchSchema, await jsonOf(c, deps)),
        requestIdOf(c),
      ),
      200,
      noStore,
    ),
  );
  routes.post('/access/v1/search/action', api, resourceServer, async (c) =>
    c.json(
      await searchActions(
        service,
        c.get('caller'),
        parseAuthzen(actionSearchSchema, await jsonOf(c, deps)),
        requestIdOf(c),
      ),
      200,
      noStore,
    ),
  );
  return routes;
}
