import { Hono, type Context } from 'hono';
import { operatorScopes } from '../../core/clients/callers.js';
import { parseRollbackRequest, parseUploadRequest, versionJson } from '../../core/decisions/policy-set.js';
import { invalidRequest, OAuthError } from '../../core/errors.js';
import { suspensionsAdmin } from '../../core/registry/suspensions.js';
import { killSwitch } from '../../core/revocation/revoke.js';
import type { AppDeps } from '../app-deps.js';
import { requireScope } from '../callers.js';
import { noStore } from '../oauth-errors.js';
import { errorsAs, jsonOf, jsonTextOf, requestIdOf, type Env } from '../request.js';

/**
 * Operators' calls (`baton:admin`): suspensions (where the registry is kept in the database), the
 * revocation of everything an agent or user holds or an action's root grant reaches, the policy set's reload, versions and rollback,
 * and the registry reload.
 */
export function adminRoutes(deps: AppDeps): Hono<Env> {
  const routes = new Hono<Env>();
  const api = errorsAs('api');
  const operator = requireScope(operatorScopes.admin);

  routes.post('/admin/revoke', api, operator, async (c) =>
    c.json(
      await killSwitch(c.get('service'), deps.auditQueries, c.get('caller'), await jsonOf(c, deps), requestIdOf(c)),
      200,
      noStore,
    ),
  );
  routes.post('/admin/policies/reload', api, operator, async (c) => {
    try {
      return c.json(await deps.policies.reload(c.get('caller').id), 200, noStore);
    } catch (error) {
      // The reload audits its own refusal (policy.reload, refused).
      throw invalidRequest(
        `the new policy set was refused; the running set stays: ${error instanceof Error ? error.message : String(error)}`,
      ).markAudited();
    }
  });
  routes.post('/admin/policies', api, operator, async (c) => {
    const files = parseUploadRequest(await jsonOf(c, deps));
    try {
      return c.json(await deps.policies.upload(files, c.get('caller').id), 200, noStore);
    } catch (error) {
      // The upload audits its own refusal (policy.reload, refused).
      throw invalidRequest(
        `the new policy set was refused; the running set stays: ${error instanceof Error ? error.message : String(error)}`,
      ).markAudited();
    }
  });
  routes.get('/admin/policies/versions', api, operator, async (c) =>
    c.json({ versions: (await deps.policies.list()).map(versionJson) }, 200, noStore),
  );
  routes.post('/admin/policies/rollback', api, operator, async (c) => {
    const { body, text } = await jsonTextOf(c, deps);
    const version = parseRollbackRequest(body, text);
    try {
      return c.json(await deps.policies.rollback(version, c.get('caller').id), 200, noStore);
    } catch (error) {
      // The rollback audits its own refusal (policy.rollback, refused).
      if (error instanceof OAuthError) throw error;
      throw invalidRequest(
        `the policy version was refused; the running set stays: ${error instanceof Error ? error.message : String(error)}`,
      ).markAudited();
    }
  });
  routes.post('/admin/registry/reload', api, operator, async (c) => {
    try {
      await deps.reload.registry(c.get('caller').id);
      return c.json({ status: 'reloaded' }, 200, noStore);
    } catch (error) {
      // The reload audits its own refusal (registry.reload, refused).
      throw invalidRequest(
        `the new registry was refused; the running one stays: ${error instanceof Error ? error.message : String(error)}`,
      ).markAudited();
    }
  });
  const store = deps.registryStore;
  if (store !== undefined) {
    // Made per request: its audit entries carry the request's trace.
    const suspensions = (c: Context<Env>) => suspensionsAdmin(c.get('service'), store);
    routes.post('/admin/suspensions', api, operator, async (c) => {
      const { suspension, created, revoked } = await suspensions(c).suspend(
        c.get('caller'),
        await jsonOf(c, deps),
        requestIdOf(c),
      );
      return c.json({ ...suspension, revoked }, created ? 201 : 200, noStore);
    });
    routes.get('/admin/suspensions', api, operator, (c) =>
      c.json({ items: suspensions(c).list(c.get('caller')) }, 200, noStore),
    );
    routes.delete('/admin/suspensions/:kind/:id', api, operator, async (c) => {
      await suspensions(c).resume(c.get('caller'), c.req.param('kind'), c.req.param('id'), requestIdOf(c));
      return c.body(null, 204, noStore);
    });
  }
  return routes;
}
