/** Every error the SDK throws: a stable `code` to branch on, and a description fit to log. */
export class BatonError extends Error {
  constructor(
    /** An RFC 6749 `error` code when Baton answered one, else the SDK's own (`network_error`, `invalid_response`, `invalid_token`, …). */
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Baton answered with an OAuth error (RFC 6749 §5.2): its `error`, `error_description` and HTTP status. */
export class OAuthResponseError extends BatonError {
  constructor(
    code: string,
    readonly description: string | undefined,
    readonly status: number,
    /** Seconds from `Retry-After`, when Baton sent one (429, 503). */
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(code, description === undefined ? `${code} (HTTP ${status})` : `${code}: ${description}`);
  }
}
