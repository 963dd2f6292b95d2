import { Hono, type Context } from 'hono';
import { operatorScopes } from '../../core/clients/callers.js';
import { adminKinds, registryAdmin, type AdminKind, type Written } from '../../core/registry/admin.js';
import type { AppDeps } from '../app-deps.js';
import { requireScope } from '../callers.js';
import { noStore } from '../oauth-errors.js';
import { errorsAs, jsonOf, requestIdOf, type Env } from '../request.js';

/** A written entity as answered: its members, and the new secret beside them when one was made. */
const answer = (written: Written) => ({
  ...written.entity,
  ...(written.client_secret === undefined ? {} : { client_secret: written.client_secret }),
});

/**
 * The registry's admin API (`baton:admin`, in the operator's own tenant): create, read, list,
 * replace and delete agents, clients, resource servers, trusted and workload issuers; a client's
 * or resource server's secret rotation; an agent's key rotation. Only where the registry is kept in
 * the database (`deps.registryStore`).
 */
export function registryRoutes(deps: AppDeps): Hono<Env> {
  const routes = new Hono<Env>();
  const store = deps.registryStore;
  if (store === undefined) return routes;
  // Made per request: its audit entries carry the request's trace.
  const admin = (c: Context<Env>) => registryAdmin(c.get('service'), store);
  const api = errorsAs('api');
  const operator = requireScope(operatorScopes.admin);
  const id = (c: Context<Env>) => c.req.param('id') ?? '';

  for (const kind of Object.keys(adminKinds) as AdminKind[]) {
    const base = `/admin/${kind}`;
    routes.post(base, api, operator, async (c) =>
      c.json(answer(await admin(c).create(c.get('caller'), kind, await jsonOf(c, deps), requestIdOf(c))), 201, noStore),
    );
    routes.get(base, api, operator, async (c) =>
      c.json(await admin(c).list(c.get('caller'), kind, c.req.query(), requestIdOf(c)), 200, noStore),
    );
    routes.get(`${base}/:id`, api, operator, async (c) =>
      c.json(await admin(c).read(c.get('caller'), kind, id(c), requestIdOf(c)), 200, noStore),
    );
    routes.put(`${base}/:id`, api, operator, async (c) =>
      c.json(
        answer(await admin(c).update(c.get('caller'), kind, id(c), await jsonOf(c, deps), requestIdOf(c))),
        200,
        noStore,
      ),
    );
    routes.delete(`${base}/:id`, api, operator, async (c) => {
      await admin(c).remove(c.get('caller'), kind, id(c), requestIdOf(c));
      return c.body(null, 204, noStore);
    });
    if (adminKinds[kind].secret)
      routes.post(`${base}/:id/secret`, api, operator, async (c) =>
        c.json(answer(await admin(c).rotateSecret(c.get('caller'), kind, id(c), requestIdOf(c))), 200, noStore),
      );
  }
  routes.post('/admin/agents/:id/keys', api, operator, async (c) =>
    c.json(
      answer(await admin(c).rotateKeys(c.get('caller'), id(c), await jsonOf(c, deps), requestIdOf(c))),
      200,
      noStore,
    ),
  );
  return routes;
}
