import type { Context, MiddlewareHandler } from 'hono';
import { invalidRequest } from '../core/errors.js';
import type { FormParams } from '../core/grants/token-request.js';
import type { ServiceContext } from '../core/context.js';
import type { Caller } from '../core/registry/registry.js';
import type { AppDeps } from './app-deps.js';
import { fetchBodyReader } from './body.js';
import { parseForm } from './form.js';
import { readJsonBody } from './json-body.js';

/**
 * How a route's errors are answered (see errors.ts): `oauth` as the token endpoint does (RFC 6749
 * JSON, client challenge), `api` as the APIs callers authenticate to do (the same JSON, caller
 * challenge), `page` as the sign-in pages do (a page when storage does not answer).
 */
export type ErrorStyle = 'oauth' | 'api' | 'page';

/** Who a request turned out to come from, for its log line and the refusal tally. */
export interface Who {
  readonly tenant?: string;
  readonly client?: string;
  readonly actor?: string;
}

/** What a request carries on its context. `caller` is set by the caller-authentication middleware (callers.ts). */
export type Env = {
  Variables: {
    refusal: { error: string; detail: string | undefined } | undefined;
    who: Who | undefined;
    caller: Caller;
    errors: ErrorStyle | undefined;
    language: string;
    /** The service as this request sees it: its audit entries and log lines carry the request's trace. */
    service: ServiceContext;
  };
};

/** Middleware naming how the errors of the routes it precedes are answered. */
export function errorsAs(style: ErrorStyle): MiddlewareHandler<Env> {
  return async (c, next) => {
    c.set('errors', style);
    await next();
  };
}

/** The caller's X-Request-ID when it is a plausible identifier (1–128 visible ASCII); never anything longer. */
export function requestIdOf(c: Context): string | null {
  const value = c.req.header('x-request-id');
  return value !== undefined && /^[\x21-\x7E]{1,128}$/.test(value) ? value : null;
}

/** Notes who a request turned out to come from (for its log line and for the refusal tally). */
export function known(c: Context<Env>, caller: Caller): Caller {
  c.set('who', { tenant: caller.tenant, client: caller.id });
  return caller;
}

/** The request body as text, refused with 413 beyond the configured size. */
function bodyText(c: Context<Env>, deps: Pick<AppDeps, 'readBody' | 'maxBodyBytes'>): Promise<string> {
  return (deps.readBody ?? fetchBodyReader)(c, deps.maxBodyBytes);
}

/** Parses a form body, refusing other content types and repeated parameters (but the `repeatable` ones). */
export async function formOf(
  c: Context<Env>,
  deps: Pick<AppDeps, 'readBody' | 'maxBodyBytes'>,
  repeatable: ReadonlySet<string> = new Set(),
): Promise<FormParams> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/x-www-form-urlencoded(;|$)/i.test(type.trim()))
    throw invalidRequest('content type must be application/x-www-form-urlencoded');
  return parseForm(await bodyText(c, deps), repeatable);
}

/** Reads a JSON object body: read first (so a body over the limit is 413 whatever its type), then checked (see readJsonBody). */
export async function jsonOf(c: Context<Env>, deps: Pick<AppDeps, 'readBody' | 'maxBodyBytes'>): Promise<unknown> {
  return readJsonBody(c, await bodyText(c, deps));
}

/** A JSON object body as jsonOf reads it, with its text (for a check of how a value was written). */
export async function jsonTextOf(
  c: Context<Env>,
  deps: Pick<AppDeps, 'readBody' | 'maxBodyBytes'>,
): Promise<{ body: unknown; text: string }> {
  const text = await bodyText(c, deps);
  return { body: readJsonBody(c, text), text };
}
