import { Hono } from 'hono';
import { parseSinkConfig, sinkIdSyntax, sinkView } from '../../core/audit/sinks.js';
import { operatorScopes } from '../../core/clients/callers.js';
import { echo, invalidRequest, OAuthError } from '../../core/errors.js';
import { refusalAudited } from '../../core/registry/audited.js';
import type { AppDeps } from '../app-deps.js';
import { requireScope } from '../callers.js';
import { noStore } from '../oauth-errors.js';
import { errorsAs, jsonOf, requestIdOf, type Env } from '../request.js';

/**
 * The operator's audit sinks (`baton:admin`, in the operator's tenant): where the tenant's entries
 * are pushed as OCSF events. Each change is audited as a registry change (never the credential).
 */
export function auditSinkRoutes(deps: AppDeps): Hono<Env> {
  const { auditSinks: store } = deps;
  const routes = new Hono<Env>();
  if (store === undefined) return routes;
  const api = errorsAs('api');
  const operator = requireScope(operatorScopes.admin);
  const idOf = (raw: string | undefined): string => {
    const id = raw ?? '';
    if (!sinkIdSyntax.test(id)) throw invalidRequest('sink id must be 1–64 letters, digits, ".", "_" or "-"');
    return id;
  };

  routes.get('/admin/audit-sinks', api, operator, async (c) =>
    c.json({ items: (await store.list(c.get('caller').tenant)).map(sinkView) }, 200, noStore),
  );
  routes.put('/admin/audit-sinks/:id', api, operator, async (c) => {
    const caller = c.get('caller');
    const requestId = requestIdOf(c);
    const raw = c.req.param('id');
    return refusalAudited(
      c.get('service').audit,
      { caller, type: 'registry.change', requestId, what: `audit sink "${echo(raw, 64)}"` },
      async () => {
        const id = idOf(raw);
        const config = parseSinkConfig(await jsonOf(c, deps));
        const created = await store.put(caller.tenant, id, config, caller.id);
        await c.get('service').audit.append({
          tenant: caller.tenant,
          type: 'registry.change',
          decision: 'applied',
          client: caller.id,
          reason: `${created ? 'created' : 'replaced'} audit sink "${id}" (${config.kind} ${config.url})`,
          request_id: requestId,
        });
        const sink = (await store.list(caller.tenant)).find((s) => s.id === id);
        return c.json(sink === undefined ? { id } : sinkView(sink), created ? 201 : 200, noStore);
      },
    );
  });
  routes.delete('/admin/audit-sinks/:id', api, operator, async (c) => {
    const caller = c.get('caller');
    const requestId = requestIdOf(c);
    const raw = c.req.param('id');
    return refusalAudited(
      c.get('service').audit,
      { caller, type: 'registry.change', requestId, what: `audit sink "${echo(raw, 64)}"` },
      async () => {
        const id = idOf(raw);
        if (!(await store.remove(caller.tenant, id)))
          throw new OAuthError('not_found', `no audit sink "${id}" in your tenant`);
        await c.get('service').audit.append({
          tenant: caller.tenant,
          type: 'registry.change',
          decision: 'applied',
          client: caller.id,
          reason: `removed audit sink "${id}"`,
          request_id: requestId,
        });
        return c.body(null, 204, noStore);
      },
    );
  });
  return routes;
}
