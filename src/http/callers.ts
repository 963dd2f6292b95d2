import type { MiddlewareHandler } from 'hono';
import { authenticateResourceServer, authenticateWithScope } from '../core/clients/callers.js';
import { known, type Env } from './request.js';

/** Middleware admitting only a caller holding `scope` (see operatorScopes); the caller is then `c.get('caller')`. */
export function requireScope(scope: string): MiddlewareHandler<Env> {
  return async (c, next) => {
    const service = c.get('service');
    const { caller } = await authenticateWithScope(service, service.registry(), c.req.header('authorization'), scope);
    c.set('caller', known(c, caller));
    await next();
  };
}

/** Middleware admitting only a registered resource server (decisions); the caller is then `c.get('caller')`. */
export function requireResourceServer(): MiddlewareHandler<Env> {
  return async (c, next) => {
    const service = c.get('service');
    c.set(
      'caller',
      known(c, await authenticateResourceServer(service, service.registry(), c.req.header('authorization'))),
    );
    await next();
  };
}
