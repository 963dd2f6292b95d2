import { Hono } from 'hono';
import { authenticateCaller } from '../../core/clients/callers.js';
import { registerSubAgent } from '../../core/registry/sub-agents.js';
import type { AppDeps } from '../app-deps.js';
import { noStore } from '../oauth-errors.js';
import { errorsAs, jsonOf, known, requestIdOf, type Env } from '../request.js';

/**
 * `POST /agents`: an orchestrator agent registers an ephemeral sub-agent, authenticated by its own
 * client-credentials token for Baton (`Authorization: Bearer`). Only where the registry is kept in
 * the database (`deps.registryStore`).
 */
export function agentRoutes(deps: AppDeps): Hono<Env> {
  const routes = new Hono<Env>();
  const store = deps.registryStore;
  if (store === undefined) return routes;
  routes.post('/agents', errorsAs('api'), async (c) => {
    const service = c.get('service');
    const { caller } = await authenticateCaller(service, service.registry(), c.req.header('authorization'));
    known(c, caller);
    const agent = await registerSubAgent(service, store, caller, await jsonOf(c, deps), requestIdOf(c));
    return c.json(agent, 201, noStore);
  });
  return routes;
}
