import { createLocalJWKSet, type CryptoKey, type JSONWebKeySet } from 'jose';
import { z } from 'zod';
import { DocumentFetchError, OAuthError } from '../errors.js';
import { textProblem } from '../input/storable-text.js';
import type { Clock, DocumentFetcher, KeyResolver } from '../ports.js';
import type { Caller, Registry, Tenant } from '../registry/registry.js';
import { assertInGoodStanding } from '../registry/standing.js';

/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client whose
 * `client_id` is an HTTPS URL publishes its metadata there. Nothing in the document is trusted
 * until it was fetched from exactly that URL and validated; its name is shown as not verified.
 */

/** Why a document client cannot be used; the message is fit for the error page and `invalid_client`. */
export class ClientDocumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClientDocumentError';
  }
}

/** A validated client ID metadata document. */
export interface ClientDocument {
  /** The client_id: the URL it was fetched from, exactly. */
  readonly url: string;
  /** The URL's host (lower case, IPv6 in brackets): what a tenant's allowed hosts are matched against. */
  readonly host: string;
  readonly name: string | undefined;
  /** Shown only when it is an https URL. */
  readonly logoUri: string | undefined;
  readonly redirectUris: readonly string[];
  readonly grantTypes: ReadonlySet<string>;
  readonly authMethod: 'none' | 'private_key_jwt';
  readonly jwksUri: string | undefined;
  /** The document's `scope`, narrowing what the tenant's resource servers offer; undefined: no narrowing. */
  readonly scope: readonly string[] | undefined;
}

/** Fetches, validates and caches client ID metadata documents. */
export interface ClientDocuments {
  /** The validated document at `url`; throws ClientDocumentError saying what is wrong. */
  resolve(url: string): Promise<ClientDocument>;
  /** The client_id as a document URL, checked (as `resolve` checks it) but not fetched; throws ClientDocumentError. */
  urlOf(clientId: string): URL;
  /** The keys of a `private_key_jwt` document client, from its jwks_uri (fetched the same safe way, cached). */
  keys(document: ClientDocument): KeyResolver;
}

/**
 * The tenant of a document client before a grant binds it (see `callerInTenant`): it names no
 * tenant (no tenant has an empty id), so no tenant's suspensions, tokens or grants match it.
 */
export const unboundTenant = '';

const loopbackHosts: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The URL of a document client as the draft (§3) allows it, or a ClientDocumentError. */
function documentUrl(clientId: string, allowHttpLoopback: boolean): URL {
  if (clientId.length > 2048) throw new ClientDocumentError('client_id is longer than 2048 characters');
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    throw new ClientDocumentError('client_id is not a valid URL');
  }
  const httpAllowed = allowHttpLoopback && url.protocol === 'http:' && loopbackHosts.has(url.hostname);
  if (url.protocol !== 'https:' && !httpAllowed) throw new ClientDocumentError('client_id must be an https URL');
  // Read from the string as sent: the URL parser would already have removed them.
  const dotSegment = (clientId.split(/[?#]/)[0] ?? '')
    .split('/')
    .slice(3)
    .some((segment) => ['.', '..'].includes(segment.replaceAll(/%2e/gi, '.')));
  if (dotSegment) throw new ClientDocumentError('client_id must not contain dot segments');
  // The document's client_id must equal the URL as a string: a URL a parser would rewrite
  // (case, default port, dot segments, escapes) is refused rather than compared loosely.
  if (url.href !== clientId) throw new ClientDocumentError('client_id must be a URL in normal form');
  if (url.username !== '' || url.password !== '') throw new ClientDocumentError('client_id must not contain userinfo');
  if (clientId.includes('#')) throw new ClientDocumentError('client_id must not contain a fragment');
  if (url.pathname === '/' || url.pathname === '')
    throw new ClientDocumentError('client_id must have a path (the document it names)');
  const problem = textProblem(clientId);
  if (problem !== undefined) throw new ClientDocumentError(`client_id contains ${problem}`);
  return url;
}

/** A redirect URI a document may name: https, http to a loopback host (RFC 8252 §7.3), or a private-use scheme (§7.1). */
function acceptableRedirectUri(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (value.includes('#')) return false;
  if (url.protocol === 'https:') return url.username === '' && url.password === '';
  if (url.protocol === 'http:') return loopbackHosts.has(url.hostname) && url.username === '';
  // A private-use scheme is a reverse domain name (com.example.app:); never javascript:, data: and the like.
  return /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/.test(url.protocol);
}

/** Whether `s` holds a C0 control character or DEL (never part of a name shown on a page). */
function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

const untrustedText = z
  .string()
  .min(1)
  .max(200)
  .refine((s) => textProblem(s) === undefined && !hasControlCharacter(s), 'must be printable text');
const webUrl = z
  .string()
  .max(2048)
  .refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), 'must be an http(s) URL');
const scopeToken = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

const documentSchema = z.looseObject({
  client_id: z.string(),
  client_name: untrustedText.optional(),
  client_uri: webUrl.optional(),
  logo_uri: webUrl.optional(),
  redirect_uris: z
    .array(z.string().max(2048).refine(acceptableRedirectUri, 'must be https, http to a loopback host, or app.scheme:'))
    .min(1, 'must name at least one redirect URI')
    .max(32),
  grant_types: z
    .array(z.enum(['authorization_code', 'refresh_token'], { error: 'must be authorization_code or refresh_token' }))
    .refine((g) => g.includes('authorization_code'), 'must include authorization_code')
    .optional(),
  response_types: z
    .array(z.string())
    .refine((r) => r.length === 1 && r[0] === 'code', 'must be ["code"]')
    .optional(),
  token_endpoint_auth_method: z.enum(['none', 'private_key_jwt'], {
    error: 'must be none or private_key_jwt',
  }),
  // Fetched as the document was: the fetcher refuses what is not https (or development loopback).
  jwks_uri: webUrl.optional(),
  scope: z
    .string()
    .max(2048)
    .refine((s) => s.split(' ').every((t) => scopeToken.test(t)), 'must be space-separated scope tokens')
    .optional(),
});

/** The first problem of a zod failure, as "field: problem". */
function firstProblem(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'the document is invalid';
  const path = issue.path.map(String).join('.');
  const message = issue.message.startsWith('Invalid input: expected')
    ? `has the wrong type (${issue.message.slice('Invalid input: '.length)})`
    : issue.message;
  return path === '' ? message : `${path} ${message}`;
}

/** Validates a fetched document against the URL it was fetched from. */
function validateDocument(url: URL, text: string): ClientDocument {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ClientDocumentError('the document is not valid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new ClientDocumentError('the document is not a JSON object');
  const parsed = documentSchema.safeParse(json);
  if (!parsed.success) throw new ClientDocumentError(`the document's ${firstProblem(parsed.error)}`);
  const doc = parsed.data;
  if (doc.client_id !== url.href)
    throw new ClientDocumentError("the document's client_id is not the URL it was fetched from");
  for (const forbidden of ['client_secret', 'client_secret_expires_at'] as const)
    if (Object.hasOwn(doc, forbidden)) throw new ClientDocumentError(`the document must not contain ${forbidden}`);
  if (Object.hasOwn(doc, 'jwks'))
    throw new ClientDocumentError('the document must name its keys by jwks_uri, not jwks');
  if (doc.token_endpoint_auth_method === 'private_key_jwt' && doc.jwks_uri === undefined)
    throw new ClientDocumentError("the document's jwks_uri is required for private_key_jwt");
  if (doc.token_endpoint_auth_method === 'none' && doc.jwks_uri !== undefined)
    throw new ClientDocumentError("the document's jwks_uri is only for private_key_jwt");
  return {
    url: url.href,
    host: url.hostname,
    name: doc.client_name,
    logoUri: doc.logo_uri,
    redirectUris: doc.redirect_uris,
    grantTypes: new Set(doc.grant_types ?? ['authorization_code']),
    authMethod: doc.token_endpoint_auth_method,
    jwksUri: doc.jwks_uri,
    scope: doc.scope?.split(' '),
  };
}

/** Bounds on how long a document is kept (Cache-Control max-age is clamped to them). */
export const documentCacheBounds = { minSeconds: 60, maxSeconds: 86_400, defaultSeconds: 300 } as const;

/** How long a response may be kept, from its Cache-Control, within the bounds; 0: not at all. */
export function cacheSeconds(cacheControl: string | undefined): number {
  const directives = (cacheControl ?? '')
    .toLowerCase()
    .split(',')
    .map((d) => d.trim());
  if (directives.includes('no-store') || directives.includes('no-cache')) return 0;
  const maxAge = directives.find((d) => d.startsWith('max-age='))?.slice('max-age='.length);
  const seconds = maxAge !== undefined && /^[0-9]{1,10}$/.test(maxAge) ? Number(maxAge) : undefined;
  if (seconds === undefined) return documentCacheBounds.defaultSeconds;
  return Math.min(documentCacheBounds.maxSeconds, Math.max(documentCacheBounds.minSeconds, seconds));
}

/** A JSON media type: application/json or application/*+json, parameters aside. */
function isJson(contentType: string | undefined): boolean {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  return type === 'application/json' || (type !== undefined && /^application\/[a-z0-9.+-]+\+json$/.test(type));
}

export interface ClientDocumentsOptions {
  readonly fetcher: DocumentFetcher;
  readonly clock: Clock;
  /** Development only: accept `http://127.0.0.1|localhost|[::1]/…` client_ids (the fetcher must allow them too). */
  readonly allowHttpLoopback: boolean;
  /** How many documents (and key sets) are kept at most. */
  readonly maxEntries?: number;
  /** How long a document that could not be used is refused without fetching it again (default 30 s). */
  readonly failureSeconds?: number;
  /** How many documents are fetched at once at most (default 16); past that a new one is refused. */
  readonly maxConcurrentFetches?: number;
}

/** Client ID metadata documents, fetched through `fetcher` and kept in a small bounded cache. */
export function createClientDocuments(options: ClientDocumentsOptions): ClientDocuments {
  const { fetcher, clock } = options;
  const maxEntries = options.maxEntries ?? 1000;
  const failureSeconds = options.failureSeconds ?? 30;
  const maxConcurrentFetches = options.maxConcurrentFetches ?? 16;
  const cache = new Map<string, { readonly value: unknown; readonly until: number }>();
  const inFlight = new Map<string, Promise<ClientDocument>>();
  const remember = (key: string, value: unknown, seconds: number): void => {
    if (seconds === 0) return;
    cache.delete(key);
    cache.set(key, { value, until: clock.now() + seconds * 1000 });
    // A Map iterates in insertion order: the first key is the oldest.
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value as string);
  };
  const cached = (key: string): unknown => {
    const entry = cache.get(key);
    if (entry === undefined) return undefined;
    if (entry.until > clock.now()) return entry.value;
    cache.delete(key);
    return undefined;
  };
  /** A JSON document at `url`, fetched safely; `what` names it in errors. */
  const fetchJson = async (url: string, what: string): Promise<{ body: string; seconds: number }> => {
    let response;
    try {
      response = await fetcher.get(url);
    } catch (error) {
      if (error instanceof DocumentFetchError)
        throw new ClientDocumentError(`${what} could not be fetched: ${error.message}`);
      throw error;
    }
    if (response.status !== 200)
      throw new ClientDocumentError(`${what} could not be fetched: the server answered ${response.status}`);
    if (!isJson(response.contentType)) throw new ClientDocumentError(`${what} is not served as JSON`);
    return { body: response.body, seconds: cacheSeconds(response.cacheControl) };
  };
  return {
    urlOf: (clientId) => documentUrl(clientId, options.allowHttpLoopback),
    async resolve(clientId) {
      const url = documentUrl(clientId, options.allowHttpLoopback);
      const hit = cached(`doc ${url.href}`) as ClientDocument | ClientDocumentError | undefined;
      // A document that just failed is refused as it failed: anyone can name any URL, and each
      // fetch may take the whole timeout, so a failing one is not fetched again at every request.
      if (hit instanceof ClientDocumentError) throw hit;
      if (hit !== undefined) return hit;
      // Requests for one URL while it is being fetched wait for that fetch rather than start their own.
      let fetching = inFlight.get(url.href);
      if (fetching === undefined) {
        if (inFlight.size >= maxConcurrentFetches)
          throw new ClientDocumentError(
            'too many client metadata documents are being fetched at once; try again in a few seconds',
          );
        fetching = fetchJson(url.href, 'the client metadata document')
          .then(({ body, seconds }) => {
            const document = validateDocument(url, body);
            remember(`doc ${url.href}`, document, seconds);
            return document;
          })
          .catch((error: unknown) => {
            if (error instanceof ClientDocumentError) remember(`doc ${url.href}`, error, failureSeconds);
            throw error;
          })
          .finally(() => inFlight.delete(url.href));
        inFlight.set(url.href, fetching);
      }
      return fetching;
    },
    keys(document) {
      const jwksUri = document.jwksUri;
      return async (header) => {
        if (jwksUri === undefined) throw new OAuthError('invalid_client', 'the client has no jwks_uri');
        let set = cached(`jwks ${jwksUri}`) as ReturnType<typeof createLocalJWKSet> | undefined;
        if (set === undefined) {
          let fetched;
          try {
            fetched = await fetchJson(jwksUri, "the client's jwks_uri");
          } catch (error) {
            // Raised inside the assertion's verification: an OAuth error, as a bad key would be.
            throw error instanceof ClientDocumentError ? new OAuthError('invalid_client', error.message) : error;
          }
          try {
            set = createLocalJWKSet(JSON.parse(fetched.body) as JSONWebKeySet);
          } catch {
            throw new OAuthError('invalid_client', "the client's jwks_uri is not a JWK set");
          }
          remember(`jwks ${jwksUri}`, set, fetched.seconds);
        }
        return (await set(header)) as CryptoKey;
      };
    },
  };
}

/** Whether `host` is one of `allowed` (a name, or `*.domain` for any name under it); undefined allows any. */
function hostAllowed(allowed: readonly string[] | undefined, host: string): boolean {
  if (allowed === undefined) return true;
  return allowed.some((pattern) =>
    pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern,
  );
}

/** Why `tenant` does not accept a document client on `host`, in words for the client; undefined when it does. */
export function tenantRefusesDocument(tenant: Tenant | undefined, host: string): string | undefined {
  if (tenant === undefined) return 'the tenant of the resource does not exist';
  if (!tenant.clientIdMetadataDocuments.enabled)
    return `tenant ${tenant.id} does not accept clients identified by a metadata document`;
  if (!hostAllowed(tenant.clientIdMetadataDocuments.allowedHosts, host))
    return `tenant ${tenant.id} does not accept client metadata documents from host ${host}`;
  return undefined;
}

/** What a document client may ask for in `tenant`: the scopes its resource servers offer, narrowed by the document's `scope`. */
function scopeCeiling(registry: Registry, tenant: string, document: ClientDocument): Set<string> {
  const offered = new Set<string>();
  for (const rs of registry.resourceServers.values())
    if (rs.tenant === tenant) rs.scopes.forEach((s) => offered.add(s));
  return document.scope === undefined ? offered : new Set(document.scope.filter((s) => offered.has(s)));
}

/** The caller a document client is: in `tenant` (or unbound, see `unboundTenant`), with what the document says. */
export function documentCaller(
  documents: ClientDocuments,
  registry: Registry,
  document: ClientDocument,
  tenant: string,
): Caller {
  return {
    kind: 'client',
    id: document.url,
    tenant,
    authMethod: document.authMethod,
    secretSha256: undefined,
    resolve: document.authMethod === 'private_key_jwt' ? documents.keys(document) : undefined,
    grantTypes: document.grantTypes,
    scope: tenant === unboundTenant ? new Set() : scopeCeiling(registry, tenant, document),
    agents: new Set(),
    authorizationDetails: [],
    redirectUris: document.redirectUris,
    name: document.name ?? document.url,
    registeredAt: undefined,
  };
}

/**
 * The caller that redeems a grant of `tenant`. A document client authenticates unbound (the
 * token request names no tenant); it is bound here to the tenant of the code or refresh token
 * it presents, which Baton stored when that tenant accepted it, after checking the tenant still
 * does and the client is not suspended there. A registered client is already of one tenant.
 */
export function callerInTenant(registry: Registry, caller: Caller, tenant: string, now: number): Caller {
  if (caller.tenant !== unboundTenant) {
    if (caller.tenant !== tenant) throw new OAuthError('invalid_grant', 'the grant belongs to another tenant');
    return caller;
  }
  const problem = tenantRefusesDocument(registry.tenants.get(tenant), new URL(caller.id).hostname);
  if (problem !== undefined) throw new OAuthError('invalid_client', problem);
  assertInGoodStanding(registry, tenant, [{ kind: 'client', id: caller.id }], now, 'invalid_client');
  return { ...caller, tenant };
}
