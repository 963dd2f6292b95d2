import { BatonError, OAuthResponseError } from './errors.js';
import { basicAuthorization, isObject, parseRetryAfter } from './http.js';
import type { FetchLike } from './verify.js';

/** How a resource server proves itself to Baton: its client secret, or a token of its own. */
export type ResourceServerCredentials =
  { readonly clientId: string; readonly clientSecret: string } | { readonly bearer: () => Promise<string> };

/** Where Baton is and who asks it. */
export interface AuthorizerOptions {
  /** Where Baton answers; the issuer when not given. */
  readonly baseUrl?: string;
  readonly issuer?: string;
  readonly credentials: ResourceServerCredentials;
  readonly fetch?: FetchLike;
}

/** The resource an action is on, as the policies see it. */
export interface AuthorizeResource {
  readonly type: string;
  readonly id: string;
  readonly properties?: Record<string, unknown>;
}

/** One question to Baton: may the bearer of `token` do `action` on `resource` now? */
export interface AuthorizeRequest {
  readonly token: string;
  readonly action: string;
  readonly resource: AuthorizeResource;
  /** What the policies may read about this call (an amount, a currency, a tool's arguments). */
  readonly context?: Record<string, unknown>;
  /** The caller's id for this action (1–128 visible ASCII characters), so the audit trail can be joined to its own logs; Baton makes one when absent. */
  readonly actionId?: string;
  readonly signal?: AbortSignal;
}

/** Baton's answer: allowed or not, the action id it audited the decision under, and the deciding policies. */
export interface AuthorizeDecision {
  readonly allowed: boolean;
  readonly actionId: string;
  readonly reasons: readonly string[];
}

/** Asks Baton's `POST /authorize` on behalf of one resource server. */
export interface Authorizer {
  /** Baton's decision; an OAuthResponseError when Baton refuses the question itself, a BatonError (`network_error`, `invalid_response`) when no answer can be read. */
  authorize(request: AuthorizeRequest): Promise<AuthorizeDecision>;
}

/**
 * POSTs `body` as JSON to `url` and returns the JSON object of a 200 answer. An OAuth error body
 * becomes an OAuthResponseError; anything else unreadable an `invalid_response`; a failed
 * request a `network_error`. An aborted call rejects with the signal's reason, as fetch does.
 */
async function postJsonTo(
  fetchImpl: FetchLike,
  url: string,
  body: unknown,
  authorization: string,
  signal: AbortSignal | undefined,
): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    response = await fetchImpl(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization },
      body: JSON.stringify(body),
      ...(signal === undefined ? {} : { signal }),
    });
  } catch (cause) {
    if (signal?.aborted === true) throw signal.reason;
    throw new BatonError('network_error', `could not reach ${url}`, { cause });
  }
  let json: unknown;
  try {
    json = await response.json();
  } catch (cause) {
    if (signal?.aborted === true) throw signal.reason;
    throw new BatonError('invalid_response', `${url} answered HTTP ${response.status} without JSON`, { cause });
  }
  if (response.status === 200 && isObject(json)) return json;
  if (isObject(json) && typeof json.error === 'string' && json.error !== '')
    throw new OAuthResponseError(
      json.error,
      typeof json.error_description === 'string' ? json.error_description : undefined,
      response.status,
      parseRetryAfter(response.headers.get('retry-after')),
    );
  throw new BatonError('invalid_response', `${url} answered HTTP ${response.status} without an OAuth error`);
}

/** An authorizer for one resource server: it asks Baton with that server's credentials. */
export function authorizer(options: AuthorizerOptions): Authorizer {
  const base = options.baseUrl ?? options.issuer;
  if (base === undefined) throw new BatonError('invalid_configuration', 'an authorizer needs a baseUrl or an issuer');
  const url = `${base.replace(/\/$/, '')}/authorize`;
  const fetchImpl: FetchLike = options.fetch ?? ((input, init) => fetch(input, init));
  const { credentials } = options;
  const fixed =
    'clientId' in credentials ? basicAuthorization(credentials.clientId, credentials.clientSecret) : undefined;
  return {
    async authorize({ token, action, resource, context, actionId, signal }) {
      const authorization = fixed ?? `Bearer ${await (credentials as { bearer: () => Promise<string> }).bearer()}`;
      const answer = await postJsonTo(
        fetchImpl,
        url,
        {
          token,
          action,
          resource,
          ...(context === undefined ? {} : { context }),
          ...(actionId === undefined ? {} : { action_id: actionId }),
        },
        authorization,
        signal,
      );
      const { decision, action_id: decided, reasons } = answer;
      if (
        (decision !== 'allow' && decision !== 'deny') ||
        typeof decided !== 'string' ||
        !Array.isArray(reasons) ||
        !reasons.every((r) => typeof r === 'string')
      )
        throw new BatonError('invalid_response', `${url} answered a decision of the wrong shape`);
      return { allowed: decision === 'allow', actionId: decided, reasons };
    },
  };
}
