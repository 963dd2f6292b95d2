import { Hono } from 'hono';
import type { z } from 'zod';
import type { ServiceContext } from '../../core/context.js';
import type { Caller } from '../../core/registry/registry.js';
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
  const routes = new Hono<Env>();
  const api = errorsAs('api');
  const resourceServer = requireResourceServer();

  routes.post('/authorize', api, resourceServer, async (c) => {
    const outcome = await decide(
      c.get('service'),
      c.get('caller'),
      parseAuthorizeRequest(await jsonOf(c, deps)),
      requestIdOf(c),
    );
    if (outcome.detail !== undefined) c.set('refusal', { error: outcome.decision, detail: outcome.detail });
    return c.json({ decision: outcome.decision, action_id: outcome.action_id, reasons: outcome.reasons }, 200, noStore);
  });
  /** An AuthZEN endpoint: its request parsed by `schema`, answered by `answer` for the authenticated resource server. */
  const authzen = <T>(
    path: string,
    schema: z.ZodType<T>,
    answer: (ctx: ServiceContext, caller: Caller, request: T, requestId: string | null) => Promise<object>,
  ): void => {
    routes.post(path, api, resourceServer, async (c) =>
      c.json(
        await answer(c.get('service'), c.get('caller'), parseAuthzen(schema, await jsonOf(c, deps)), requestIdOf(c)),
        200,
        noStore,
      ),
    );
  };
  authzen('/access/v1/evaluation', evaluationSchema, evaluate);
  authzen('/access/v1/evaluations', evaluationsSchema, evaluateBatch);
  authzen('/access/v1/search/subject', subjectSearchSchema, searchSubjects);
  authzen('/access/v1/search/resource', resourceSearchSchema, searchResources);
  authzen('/access/v1/search/action', actionSearchSchema, searchActions);
  return routes;
}
