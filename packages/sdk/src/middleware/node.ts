import {
  checkOptions,
  checkRequest,
  isRefusal,
  type BatonRequestState,
  type RequireBatonOptions,
} from './require-baton.js';

/** The part of Node's `IncomingMessage` (or Express's request) the middleware uses; it adds `baton`. */
export interface NodeRequestLike {
  readonly headers: { readonly authorization?: string | readonly string[] | undefined };
  baton?: BatonRequestState;
}

/** The part of Node's `ServerResponse` (or Express's response) the middleware uses. */
export interface NodeResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body: string): unknown;
}

/**
 * Node/Express-style middleware `(req, res, next)`: verifies the Bearer token (and asks
 * `/authorize` when configured), sets `req.baton` and calls `next()`; or answers the refusal
 * itself (400/401/403 with an RFC 6750 challenge, 503 when Baton cannot be consulted). An error
 * thrown by the caller's own callbacks goes to `next(error)`, as Express expects.
 */
export function requireBaton<Req extends NodeRequestLike = NodeRequestLike>(
  options: RequireBatonOptions<Req>,
): (req: Req, res: NodeResponseLike, next: (error?: unknown) => void) => Promise<void> {
  checkOptions(options);
  return async (req, res, next) => {
    let outcome;
    try {
      const header = req.headers.authorization;
      // Two Authorization headers are not one credential: treated as a malformed one.
      outcome = await checkRequest(
        options,
        req,
        typeof header === 'string' || header === undefined ? header : 'Bearer ?',
      );
    } catch (error) {
      next(error);
      return;
    }
    if (isRefusal(outcome)) {
      res.statusCode = outcome.status;
      res.setHeader('content-type', 'application/json');
      res.setHeader('cache-control', 'no-store');
      for (const [name, value] of Object.entries(outcome.headers)) res.setHeader(name, value);
      res.end(JSON.stringify(outcome.body));
      return;
    }
    req.baton = outcome;
    next();
  };
}
