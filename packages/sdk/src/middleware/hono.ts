import {
  checkOptions,
  checkRequest,
  isRefusal,
  type BatonRequestState,
  type RequireBatonOptions,
} from './require-baton.js';

/** The part of Hono's `Context` the middleware uses, so the SDK needs no Hono at run time. */
export interface HonoContextLike {
  readonly req: { header(name: string): string | undefined };
  set(key: 'baton', value: BatonRequestState): void;
}

/**
 * Hono middleware: verifies the Bearer token (and asks `/authorize` when configured), then sets
 * `c.get('baton')` for the handler; refuses with 400/401/403 and an RFC 6750 challenge, or 503
 * when Baton cannot be consulted. Declare `Variables: { baton: BatonRequestState }` in the app's Env.
 */
export function requireBaton<C extends HonoContextLike = HonoContextLike>(
  options: RequireBatonOptions<C>,
): (c: C, next: () => Promise<void>) => Promise<Response | undefined> {
  checkOptions(options);
  return async (c, next) => {
    const outcome = await checkRequest(options, c, c.req.header('authorization'));
    if (isRefusal(outcome))
      return new Response(JSON.stringify(outcome.body), {
        status: outcome.status,
        headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...outcome.headers },
      });
    c.set('baton', outcome);
    await next();
    return undefined;
  };
}
