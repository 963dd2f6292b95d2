/** RFC 6749 §5.2, RFC 8693 §2.2.2, RFC 9396 §5, RFC 7591 §3.2.2 and RFC 6750 §3.1 error codes that Baton answers with; `not_found` and `conflict` at the admin API. */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'invalid_authorization_details'
  | 'access_denied'
  | 'invalid_redirect_uri'
  | 'invalid_client_metadata'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'not_found'
  | 'conflict'
  | 'server_error'
  | 'temporarily_unavailable';

const statusOf: Record<OAuthErrorCode, number> = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  invalid_scope: 400,
  invalid_target: 400,
  invalid_authorization_details: 400,
  access_denied: 403,
  invalid_redirect_uri: 400,
  invalid_client_metadata: 400,
  invalid_token: 401,
  insufficient_scope: 403,
  not_found: 404,
  conflict: 409,
  server_error: 500,
  temporarily_unavailable: 503,
};

/**
 * The one error type the core throws. `description` is safe to show the caller;
 * `detail` is for logs only (it may name internals, never a token or secret).
 */
export class OAuthError extends Error {
  readonly code: OAuthErrorCode;
  readonly description: string;
  readonly detail: string | undefined;
  readonly status: number;
  /** For a 429 or 503: when the caller may try again. */
  readonly retryAfterSeconds: number | undefined;
  #audited = false;

  constructor(
    code: OAuthErrorCode,
    description: string,
    options: { detail?: string; status?: number; retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super(`${code}: ${description}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OAuthError';
    this.code = code;
    this.description = description;
    this.detail = options.detail;
    this.status = options.status ?? statusOf[code];
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** Whether this refusal already has its own audit entry, so the HTTP layer records nothing more for it. */
  get audited(): boolean {
    return this.#audited;
  }

  /** Notes that this refusal's audit entry is written; returns the error, to be rethrown. */
  markAudited(): this {
    this.#audited = true;
    return this;
  }

  /** The RFC 6749 §5.2 body. */
  toJSON(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.code, error_description: this.description };
  }
}

/**
 * A refused bearer token (RFC 6750 §3.1), answered with a `Bearer` challenge: naming the error
 * when a token was sent (none when it was not, as §3.1 says), and the scope a call needs.
 */
export class BearerTokenError extends OAuthError {
  constructor(
    code: 'invalid_token' | 'insufficient_scope',
    description: string,
    readonly challenge: { readonly tokenSent: boolean; readonly scope: string },
  ) {
    super(code, description);
  }
}

/** How a refusal reads in its audit entry: code, description, and the detail kept for logs. */
export function refusalReason(error: OAuthError): string {
  return `${error.code}: ${error.description}${error.detail === undefined ? '' : ` (${error.detail})`}`;
}

/** What is never echoed: controls, invisible format characters (bidi overrides, zero-width), line and paragraph separators, lone surrogates. */
const unechoable = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/**
 * A short, safe piece of what a caller sent, for an error description (and the audit entry that
 * repeats it): each control or invisible character becomes U+FFFD, and anything past `max`
 * characters is cut and marked with "…". The one way caller input enters a description.
 */
export function echo(value: string, max = 64): string {
  // At most 2·max UTF-16 units hold the first max characters whole; the rest is never looked at.
  const head = value.length > max * 2 ? value.slice(0, max * 2) : value;
  const chars = Array.from(head.replace(unechoable, '\uFFFD'));
  return chars.length > max || head.length < value.length ? `${chars.slice(0, max).join('')}…` : chars.join('');
}

/** Shorthand for the most common refusal. */
export function invalidRequest(description: string, detail?: string): OAuthError {
  return new OAuthError('invalid_request', description, detail === undefined ? {} : { detail });
}

/** The store could not be reached or failed; nothing was issued. Answered as 503. */
export class StorageUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`storage unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'StorageUnavailableError';
  }
}

/** A document fetch (see DocumentFetcher) refused or failed; the message says why, in words fit for the client. */
export class DocumentFetchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DocumentFetchError';
  }
}
