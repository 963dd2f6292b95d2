import type { AuthorizeResource, Authorizer } from '../authorize.js';
import { BatonError, OAuthResponseError } from '../errors.js';
import type { BatonClaims, BatonVerifier } from '../verify.js';

/** What a protected route needs from a request, whatever the framework; `Req` is the framework's request (or context). */
export interface RequireBatonOptions<Req> {
  readonly verifier: BatonVerifier;
  /** This resource server's audience: tokens for any other are refused. */
  readonly audience: string;
  /** Scopes the token must all hold, else 403 `insufficient_scope`. */
  readonly scopes?: readonly string[];
  /** With `action` and `resource`: ask Baton's `/authorize` for every request, and refuse a deny with 403. */
  readonly authorizer?: Authorizer;
  readonly action?: string | ((req: Req) => string);
  readonly resource?: (req: Req) => AuthorizeResource | Promise<AuthorizeResource>;
  /** What the policies may read about this request (an amount, a currency…). */
  readonly context?: (req: Req) => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** The action id to audit the decision under (a request id, say); Baton makes one when absent. */
  readonly actionId?: (req: Req) => string | undefined;
  /** The `realm` of the challenge; the audience when not given. */
  readonly realm?: string;
  /** This resource's RFC 9728 metadata URL, named in every challenge so a client can find Baton. */
  readonly resourceMetadataUrl?: string;
}

/** What a protected handler finds on its request: the token, its verified claims and Baton's decision. */
export interface BatonRequestState {
  readonly token: string;
  readonly claims: BatonClaims;
  /** The action id Baton audited its decision under, when the route asked `/authorize`. */
  readonly actionId: string | undefined;
  /** The policies that allowed the action, when the route asked `/authorize`. */
  readonly reasons: readonly string[];
}

/** A refusal to send as is: status, headers and JSON body. */
export interface Refusal {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Readonly<Record<string, unknown>>;
}

/** RFC 6750 §2.1's b64token, the only shape a Bearer credential may have. */
const bearerSyntax = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** RFC 6750 §3 allows only visible ASCII but `"` and `\` in attribute values; anything else becomes `?`. */
const quoted = (value: string): string => `"${value.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '?')}"`;

/** Checks the options once, when the middleware is made, rather than on the first request. */
export function checkOptions<Req>(options: RequireBatonOptions<Req>): void {
  const asks = options.action !== undefined || options.resource !== undefined || options.authorizer !== undefined;
  if (asks && (options.action === undefined || options.resource === undefined || options.authorizer === undefined))
    throw new BatonError('invalid_configuration', 'asking /authorize needs an authorizer, an action and a resource');
}

/**
 * Decides one request: its Bearer token verified for the audience, the scopes it must hold, and
 * Baton's decision when the route asks one. Returns the state for the handler, or the refusal to
 * send (RFC 6750 §3 challenges with RFC 9728's `resource_metadata`).
 */
export async function checkRequest<Req>(
  options: RequireBatonOptions<Req>,
  req: Req,
  authorization: string | undefined,
): Promise<BatonRequestState | Refusal> {
  const challenge = (status: number, error?: string, description?: string, extra: Record<string, string> = {}) => {
    const params: Record<string, string> = {
      realm: options.realm ?? options.audience,
      ...(error === undefined ? {} : { error }),
      ...(description === undefined ? {} : { error_description: description }),
      ...extra,
      ...(options.resourceMetadataUrl === undefined ? {} : { resource_metadata: options.resourceMetadataUrl }),
    };
    const header = `Bearer ${Object.entries(params)
      .map(([k, v]) => `${k}=${quoted(v)}`)
      .join(', ')}`;
    return {
      status,
      headers: { 'www-authenticate': header },
      body: {
        ...(error === undefined ? {} : { error }),
        error_description: description ?? 'a Bearer token is required',
      },
    };
  };
  // RFC 6750 §3.1: a request with no Bearer credential gets a challenge without an error code.
  if (authorization === undefined || !/^bearer(\s|$)/i.test(authorization)) return challenge(401);
  const match = bearerSyntax.exec(authorization);
  if (match === null)
    return challenge(400, 'invalid_request', 'the Authorization header is not a well-formed Bearer credential');
  const token = match[1] as string;
  let claims: BatonClaims;
  try {
    claims = await options.verifier.verify(token, { audience: options.audience });
  } catch (error) {
    if (error instanceof BatonError && error.code === 'invalid_token')
      return challenge(401, 'invalid_token', error.message);
    return unavailable(error);
  }
  const missing = (options.scopes ?? []).filter((s) => !claims.scope.includes(s));
  if (missing.length > 0)
    return challenge(403, 'insufficient_scope', `the token lacks the scope ${missing.join(' ')}`, {
      scope: (options.scopes ?? []).join(' '),
    });
  const { authorizer, action, resource } = options;
  if (authorizer === undefined || action === undefined || resource === undefined)
    return { token, claims, actionId: undefined, reasons: [] };
  const actionName = typeof action === 'string' ? action : action(req);
  const actionId = options.actionId?.(req);
  let decision;
  try {
    decision = await authorizer.authorize({
      token,
      action: actionName,
      resource: await resource(req),
      ...(options.context === undefined ? {} : { context: await options.context(req) }),
      ...(actionId === undefined ? {} : { actionId }),
    });
  } catch (error) {
    return unavailable(error);
  }
  if (!decision.allowed)
    return {
      status: 403,
      headers: {},
      body: { error: 'access_denied', error_description: `Baton denied ${actionName}`, action_id: decision.actionId },
    };
  return { token, claims, actionId: decision.actionId, reasons: decision.reasons };
}

/** When Baton's keys or decision cannot be had: fail closed with 503, or rethrow what is not Baton's to answer. */
function unavailable(error: unknown): Refusal {
  if (!(error instanceof BatonError)) throw error;
  const retry = error instanceof OAuthResponseError ? error.retryAfterSeconds : undefined;
  return {
    status: 503,
    headers: retry === undefined ? {} : { 'retry-after': String(retry) },
    body: { error: 'temporarily_unavailable', error_description: 'Baton could not be consulted' },
  };
}

/** Whether `checkRequest` refused. */
export const isRefusal = (outcome: BatonRequestState | Refusal): outcome is Refusal => 'status' in outcome;
