import { BatonError, OAuthResponseError } from './errors.js';

/** The Fetch API's signature: pass your own to route, instrument or test the SDK's requests. */
export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Where the SDK reads the time: milliseconds since the epoch, as `Date.now()`. */
export interface Clock {
  now(): number;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** Waits `ms` milliseconds, or rejects with `BatonError('aborted')` as soon as `signal` aborts. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** How a request answered 503 or 429 is tried again. */
export interface RetryOptions {
  /** Attempts in all, the first included (default 3; 1 turns retries off). */
  readonly attempts?: number;
  /** Wait before the second attempt when Baton sends no `Retry-After`, doubled for each further one (default 500 ms). */
  readonly baseDelayMs?: number;
  /** A `Retry-After` longer than this is not waited for: the error is thrown at once (default 10 s). */
  readonly maxDelaySeconds?: number;
  /** How to wait (default `setTimeout`); tests inject one that records and returns. */
  readonly sleep?: Sleep;
}

/** The error thrown when the caller's `AbortSignal` fires, carrying the signal's reason as `cause`. */
export function abortedError(signal: AbortSignal): BatonError {
  return new BatonError('aborted', 'the request was aborted', { cause: signal.reason });
}

/** Settles as `promise` does, or rejects with `BatonError('aborted')` as soon as `signal` aborts (the work itself goes on). */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(abortedError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortedError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** `setTimeout` as a promise that an `AbortSignal` cuts short. */
export const timerSleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortedError(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** An `Authorization: Basic` value (RFC 6749 §2.3.1: each part form-urlencoded, then joined and base64-encoded). */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  let binary = '';
  for (const byte of new TextEncoder().encode(`${encode(clientId)}:${encode(clientSecret)}`))
    binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}

/** Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), if it has a usable one. */
export function parseRetryAfter(value: string | null, clock: Clock = systemClock): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d{1,9}$/.test(text)) return Number(text);
  // Only an IMF-fixdate (RFC 9110 §5.6.7): Date.parse also reads "-1" or "2" as years.
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) return undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - clock.now()) / 1000));
}

/**
 * Turns a non-2xx answer into the error to throw: Baton's RFC 6749 §5.2 JSON becomes an
 * `OAuthResponseError`; anything else (a proxy's HTML page, say) is `invalid_response`.
 */
export async function readOAuthError(response: Response, clock: Clock = systemClock): Promise<BatonError> {
  const retryAfter = parseRetryAfter(response.headers.get('retry-after'), clock);
  let body: unknown;
  try {
    body = JSON.parse(await response.text());
  } catch (cause) {
    return new BatonError('invalid_response', `Baton answered HTTP ${response.status} without a JSON body`, { cause });
  }
  const { error, error_description: description } = (isObject(body) ? body : {}) as Record<string, unknown>;
  if (typeof error !== 'string' || error === '')
    return new BatonError('invalid_response', `Baton answered HTTP ${response.status} without an OAuth error code`);
  return new OAuthResponseError(
    error,
    typeof description === 'string' ? description : undefined,
    response.status,
    retryAfter,
  );
}

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Refuses a parameter holding a lone UTF-16 surrogate before it is sent: URL encoding would
 * silently turn it into U+FFFD, so Baton would judge another request than the caller made.
 */
export function assertWellFormed(name: string, value: string): void {
  if (loneSurrogate.test(value)) throw new BatonError('invalid_request', `${name} contains a lone surrogate`);
}

/** Whether a value is a plain JSON object (not an array, not null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What one request of `postForm` sends; built anew for each attempt (a retry must sign fresh assertions). */
export interface FormRequest {
  readonly params: URLSearchParams;
  readonly headers?: Record<string, string>;
}

/** Options of `postForm` and `getJson`. */
export interface RequestOptions {
  readonly fetch?: Fetch;
  readonly clock?: Clock;
  readonly retry?: RetryOptions;
  readonly signal?: AbortSignal | undefined;
}

/**
 * POSTs a form and returns the JSON object Baton answered. 503 and 429 are tried again (with
 * `Retry-After`, else exponential backoff), each attempt with a request built anew by `build`;
 * the signal is honoured before, during and between attempts. Every failure is a `BatonError`:
 * `OAuthResponseError` for Baton's refusals, `network_error`, `invalid_response`, `aborted`.
 */
export async function postForm(
  url: string,
  build: () => Promise<FormRequest>,
  options: RequestOptions = {},
): Promise<Record<string, unknown>> {
  return send(
    url,
    async () => {
      const { params, headers } = await build();
      return {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
        body: params.toString(),
      };
    },
    options,
  );
}

/** GETs a JSON object (metadata, JWKS), with the same retries, errors and abort as `postForm`. */
export async function getJson(url: string, options: RequestOptions = {}): Promise<Record<string, unknown>> {
  return send(url, async () => ({ method: 'GET', headers: { accept: 'application/json' } }), options);
}

async function send(
  url: string,
  build: () => Promise<RequestInit>,
  options: RequestOptions,
): Promise<Record<string, unknown>> {
  const { fetch: fetchImpl = globalThis.fetch, clock = systemClock, signal } = options;
  // A NaN or negative setting would retry forever or never wait: such settings take the default.
  const setting = (value: number | undefined, fallback: number) =>
    value !== undefined && Number.isFinite(value) && value >= 0 ? value : fallback;
  const attempts = Math.max(1, Math.floor(setting(options.retry?.attempts, 3)));
  const baseDelayMs = setting(options.retry?.baseDelayMs, 500);
  const maxDelaySeconds = setting(options.retry?.maxDelaySeconds, 10);
  const sleep = options.retry?.sleep ?? timerSleep;
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw abortedError(signal);
    const init = await build();
    let response: Response;
    try {
      response = await fetchImpl(url, signal === undefined ? init : { ...init, signal });
    } catch (cause) {
      if (signal?.aborted) throw abortedError(signal);
      throw new BatonError('network_error', `could not reach ${url}`, { cause });
    }
    if (response.ok) return readObject(response, signal);
    const error = await readOAuthError(response, clock);
    if (signal?.aborted) throw abortedError(signal);
    if ((response.status !== 503 && response.status !== 429) || attempt >= attempts) throw error;
    const retryAfter = error instanceof OAuthResponseError ? error.retryAfterSeconds : undefined;
    if (retryAfter !== undefined && retryAfter > maxDelaySeconds) throw error;
    await sleep(retryAfter !== undefined ? retryAfter * 1000 : baseDelayMs * 2 ** (attempt - 1), signal);
  }
}

async function readObject(response: Response, signal: AbortSignal | undefined): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await response.text();
  } catch (cause) {
    if (signal?.aborted) throw abortedError(signal);
    throw new BatonError('network_error', 'the answer was cut off', { cause });
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (cause) {
    throw new BatonError('invalid_response', `Baton answered HTTP ${response.status} with a body that is not JSON`, {
      cause,
    });
  }
  if (!isObject(body))
    throw new BatonError('invalid_response', `Baton answered HTTP ${response.status} with JSON that is not an object`);
  return body;
}
