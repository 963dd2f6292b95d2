import { isAgentIdentity } from './agent.js';
import type {
  BatonClient,
  ClientCredentials,
  ClientCredentialsParams,
  ExchangeParams,
  IssuedToken,
} from './exchange.js';
import { abortedError, type Clock } from './http.js';

/** Options of `tokenCache`. */
export interface TokenCacheOptions {
  /** A cached token is exchanged again this many seconds before it expires (default 30). */
  readonly refreshBeforeSeconds?: number;
  /** Default: the client's clock. */
  readonly clock?: Clock;
  /** Tokens kept at most (default 1000); past it, stale ones go first, then the oldest. */
  readonly maxEntries?: number;
}

/** A `BatonClient`'s exchanges, cached per request until shortly before the token expires. */
export interface TokenCache {
  exchange(params: ExchangeParams): Promise<IssuedToken>;
  delegate(subjectToken: string, params?: Omit<ExchangeParams, 'subjectToken'>): Promise<IssuedToken>;
  clientCredentials(params?: ClientCredentialsParams): Promise<IssuedToken>;
  /** Forgets every token (requests in flight finish for their callers but are not kept). */
  clear(): void;
  /** How many keys the cache holds. */
  readonly size: number;
}

interface Pending {
  readonly promise: Promise<IssuedToken>;
  readonly controller: AbortController;
  waiters: number;
}

interface Entry {
  token?: IssuedToken;
  pending?: Pending | undefined;
}

/**
 * Caches a client's tokens by everything that shapes them: the subject token, its type, the
 * actor, audience, resource, scope, authorization details, requested type and client. Keys are
 * SHA-256 digests of that request's canonical JSON, where tokens and secrets appear only as their
 * own digests: no token is a key in clear. Concurrent calls for one key share one request; a
 * token is never handed out for another key; failures are not cached.
 */
export function tokenCache(client: BatonClient, options: TokenCacheOptions = {}): TokenCache {
  const { refreshBeforeSeconds = 30, clock = client.clock, maxEntries = 1000 } = options;
  let entries = new Map<string, Entry>();

  const fresh = (token: IssuedToken | undefined, now: number): token is IssuedToken =>
    token?.expiresAt !== undefined && now < token.expiresAt - refreshBeforeSeconds * 1000;

  const evict = () => {
    if (entries.size <= maxEntries) return;
    const now = clock.now();
    for (const [key, entry] of entries)
      if (entry.pending === undefined && !fresh(entry.token, now)) entries.delete(key);
    for (const key of entries.keys()) {
      if (entries.size <= maxEntries) break;
      entries.delete(key);
    }
  };

  const cached = async (
    shape: Promise<unknown>,
    run: (signal: AbortSignal) => Promise<IssuedToken>,
    signal: AbortSignal | undefined,
  ): Promise<IssuedToken> => {
    if (signal?.aborted) throw abortedError(signal);
    const key = await digest(canonicalJson(await shape));
    if (signal?.aborted) throw abortedError(signal);
    // Nothing awaits between this look-up and the entry's pending request being set: one request per key.
    const map = entries;
    let entry = map.get(key);
    if (fresh(entry?.token, clock.now())) return entry.token;
    if (entry === undefined) {
      entry = {};
      map.set(key, entry);
    }
    if (entry.pending === undefined) {
      const controller = new AbortController();
      const owner = entry;
      const promise = run(controller.signal).then(
        (token) => {
          owner.pending = undefined;
          owner.token = token;
          evict();
          return token;
        },
        (error: unknown) => {
          owner.pending = undefined;
          if (map.get(key) === owner) map.delete(key);
          throw error;
        },
      );
      // A request every waiter gave up on still settles; its failure is nobody's to handle.
      promise.catch(() => undefined);
      entry.pending = { promise, controller, waiters: 0 };
    }
    return wait(entry.pending, signal);
  };

  const exchange: TokenCache['exchange'] = (params) => {
    const { signal, ...rest } = params;
    return cached(exchangeShape(params), (shared) => client.exchange({ ...rest, signal: shared }), signal);
  };

  return {
    exchange,
    delegate(subjectToken, params = {}) {
      return exchange({ ...params, subjectToken });
    },
    clientCredentials(params = {}) {
      const { signal, ...rest } = params;
      return cached(
        clientCredentialsShape(params),
        (shared) => client.clientCredentials({ ...rest, signal: shared }),
        signal,
      );
    },
    clear() {
      entries = new Map();
    },
    get size() {
      return entries.size;
    },
  };
}

/** Waits for a shared request; the request is aborted only when every caller waiting on it has aborted. */
function wait(pending: Pending, signal: AbortSignal | undefined): Promise<IssuedToken> {
  pending.waiters++;
  return new Promise((resolve, reject) => {
    let done = false;
    const leave = () => {
      done = true;
      pending.waiters--;
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      if (done) return;
      leave();
      if (pending.waiters === 0) pending.controller.abort((signal as AbortSignal).reason);
      reject(abortedError(signal as AbortSignal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    pending.promise.then(
      (token) => {
        if (done) return;
        leave();
        resolve(token);
      },
      (error: unknown) => {
        if (done) return;
        leave();
        reject(error);
      },
    );
  });
}

async function exchangeShape(params: ExchangeParams): Promise<unknown> {
  const { actor } = params;
  return {
    grant: 'token-exchange',
    subject: await digest(params.subjectToken),
    subjectTokenType: params.subjectTokenType,
    actor:
      actor === undefined
        ? undefined
        : isAgentIdentity(actor)
          ? { agent: actor.id, issuer: actor.issuer }
          : { token: await digest(actor.token), type: actor.tokenType },
    ...common(params),
    requestedTokenType: params.requestedTokenType,
    client: await clientShape(params.client),
  };
}

async function clientCredentialsShape(params: ClientCredentialsParams): Promise<unknown> {
  return { grant: 'client_credentials', ...common(params), client: await clientShape(params.client) };
}

function common(params: ClientCredentialsParams) {
  const list = (value: string | readonly string[] | undefined) =>
    value === undefined ? undefined : typeof value === 'string' ? [value] : [...value];
  return {
    audience: list(params.audience),
    resource: list(params.resource),
    scope: typeof params.scope === 'string' ? params.scope : params.scope?.join(' '),
    authorizationDetails: params.authorizationDetails,
  };
}

async function clientShape(client: ClientCredentials | undefined): Promise<unknown> {
  if (client === undefined) return undefined;
  if (isAgentIdentity(client)) return { agent: client.id, issuer: client.issuer };
  return { id: client.id, secret: client.secret === undefined ? undefined : await digest(client.secret) };
}

/** JSON with object members sorted by name and undefined members left out, so equal requests give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const members = Object.keys(value)
      .filter((name) => (value as Record<string, unknown>)[name] !== undefined)
      .sort()
      .map((name) => `${JSON.stringify(name)}:${canonicalJson((value as Record<string, unknown>)[name])}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** SHA-256 of text, as hex (Web Crypto). */
async function digest(text: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
