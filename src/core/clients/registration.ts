import type { AuditEvent } from '../audit/chain.js';
import type { ServiceContext } from '../context.js';
import { BearerTokenError, OAuthError, echo, refusalReason } from '../errors.js';
import { scopeSyntax } from '../grants/parameters.js';
import { describePath, findUnstorableText, textProblem } from '../input/storable-text.js';
import { RegistryError } from '../registry/compile.js';
import type { RegistryDocument } from '../registry/document.js';
import type { Caller, Registry, Tenant } from '../registry/registry.js';
import { jwksSchema } from '../registry/schema.js';
import type { RegistryStore } from '../registry/store.js';
import { randomId, secret } from '../secrets.js';
import { authenticateCaller, operatorScopes } from './callers.js';

/** What a registration request carries besides its body. */
export interface RegistrationRequest {
  readonly authorization: string | undefined;
  /** The remote address, which an open registration's rate limit is kept by. */
  readonly remoteAddress: string | undefined;
  readonly requestId: string | null;
  /** Reads the JSON object body (refusing other types, malformed JSON, a body over the size limit). */
  readonly body: () => Promise<unknown>;
  /** Told who presented the initial access token, once it is verified. */
  readonly observe?: (caller: Caller) => void;
}

/** The RFC 7591 §3.2.1 answer: the client's id, its secret when it has one (shown this once), and its registered metadata. */
export interface RegistrationResponse {
  readonly client_id: string;
  readonly client_id_issued_at: number;
  readonly client_secret?: string;
  readonly client_secret_expires_at?: 0;
  readonly client_name?: string;
  readonly redirect_uris: readonly string[];
  readonly grant_types: readonly string[];
  readonly response_types: readonly ['code'];
  readonly token_endpoint_auth_method: string;
  readonly scope?: string;
  readonly jwks?: unknown;
  readonly jwks_uri?: string;
}

type Client = RegistryDocument['clients'][number];
type AuthMethod = Client['token_endpoint_auth_method'];

/** The authentication methods a registered client may use: public with PKCE, a secret, or a signed assertion. */
const authMethods: readonly AuthMethod[] = ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'];
/** The grants a registered client may use: the code flow and its refresh. */
const registrableGrants = ['authorization_code', 'refresh_token'] as const;
const maxRedirectUris = 32;
const maxUriLength = 2048;
const maxNameLength = 200;
const maxScopes = 256;
/** Loopback hosts a redirect URI may name over plain HTTP (RFC 8252 §7.3, and `localhost` as RFC 8252 §8.3 tolerates). */
const loopbackHosts = new Set(['127.0.0.1', '[::1]', 'localhost']);

const badMetadata = (description: string): OAuthError => new OAuthError('invalid_client_metadata', description);
const badRedirect = (description: string): OAuthError => new OAuthError('invalid_redirect_uri', description);

/** A member of the body, only if it is the body's own (never `constructor` or anything else inherited). */
function member(body: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(body, name) ? body[name] : undefined;
}

/** A string member that can be stored, or undefined when absent. */
function text(body: Record<string, unknown>, name: string, fail: (d: string) => OAuthError): string | undefined {
  const value = member(body, name);
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw fail(`${name} must be a string`);
  const problem = textProblem(value);
  if (problem !== undefined) throw fail(`${name} contains ${problem}`);
  return value;
}

/** Checks one redirect URI: absolute HTTPS, or HTTP on a loopback host; no fragment, no user info. */
function redirectUri(value: unknown, index: number): string {
  const at = `redirect_uris[${index}]`;
  if (typeof value !== 'string') throw badRedirect(`${at} must be a string`);
  const problem = textProblem(value);
  if (problem !== undefined) throw badRedirect(`${at} contains ${problem}`);
  if (value.length > maxUriLength) throw badRedirect(`${at} is longer than ${maxUriLength} characters`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw badRedirect(`${at} is not an absolute URI`);
  }
  if (value.includes('#')) throw badRedirect(`${at} must not contain a fragment`);
  if (url.username !== '' || url.password !== '') throw badRedirect(`${at} must not contain user information`);
  if (url.protocol === 'https:') return value;
  if (url.protocol === 'http:' && loopbackHosts.has(url.hostname)) return value;
  if (url.protocol === 'http:')
    throw badRedirect(`${at} may use http only on a loopback host (127.0.0.1, [::1] or localhost)`);
  throw badRedirect(`${at} must be an https URI, or http on a loopback host`);
}

function redirectUris(body: Record<string, unknown>): string[] {
  const value = member(body, 'redirect_uris');
  if (value === undefined) throw badRedirect('redirect_uris is required');
  if (!Array.isArray(value) || value.length === 0) throw badRedirect('redirect_uris must be a non-empty array');
  if (value.length > maxRedirectUris) throw badRedirect(`redirect_uris may hold at most ${maxRedirectUris} URIs`);
  return [...new Set(value.map(redirectUri))];
}

function grantTypes(body: Record<string, unknown>): string[] {
  const value = member(body, 'grant_types');
  if (value === undefined) return ['authorization_code'];
  if (!Array.isArray(value) || value.length === 0 || value.length > registrableGrants.length * 2)
    throw badMetadata('grant_types must be a non-empty array of authorization_code and refresh_token');
  const types = new Set<string>();
  for (const g of value) {
    if (typeof g !== 'string' || !(registrableGrants as readonly string[]).includes(g))
      throw badMetadata(
        `grant_types may hold only authorization_code and refresh_token, not ${typeof g === 'string' ? `"${echo(g)}"` : 'a non-string'}`,
      );
    types.add(g);
  }
  if (!types.has('authorization_code'))
    throw badMetadata('grant_types must include authorization_code (refresh_token only comes with it)');
  return registrableGrants.filter((g) => types.has(g));
}

function responseTypes(body: Record<string, unknown>): void {
  const value = member(body, 'response_types');
  if (value === undefined) return;
  if (!Array.isArray(value) || value.length !== 1 || value[0] !== 'code')
    throw badMetadata('response_types must be ["code"]: Baton serves the authorization code flow only');
}

function authMethod(body: Record<string, unknown>): AuthMethod {
  const value = member(body, 'token_endpoint_auth_method');
  // RFC 7591 §2: client_secret_basic when left out.
  if (value === undefined) return 'client_secret_basic';
  if (typeof value !== 'string' || !(authMethods as readonly string[]).includes(value))
    throw badMetadata(`token_endpoint_auth_method must be one of ${authMethods.join(', ')}`);
  return value as AuthMethod;
}

/** The keys of a private_key_jwt client: inline keys, or (only with an initial access token) an https jwks_uri. */
function keySource(
  body: Record<string, unknown>,
  method: AuthMethod,
  open: boolean,
): { jwks?: Client['jwks']; jwks_uri?: string } {
  const jwks = member(body, 'jwks');
  const jwksUri = text(body, 'jwks_uri', badMetadata);
  if (method !== 'private_key_jwt') {
    if (jwks !== undefined || jwksUri !== undefined)
      throw badMetadata('jwks and jwks_uri are only used with token_endpoint_auth_method private_key_jwt');
    return {};
  }
  if (jwks !== undefined && jwksUri !== undefined) throw badMetadata('give either jwks or jwks_uri, not both');
  if (jwks === undefined && jwksUri === undefined) throw badMetadata('private_key_jwt requires jwks or jwks_uri');
  if (jwksUri !== undefined) {
    // An anonymous caller must not make Baton fetch a URL of its choosing.
    if (open) throw badMetadata('jwks_uri needs an initial access token; an open registration gives jwks');
    let url: URL | undefined;
    try {
      url = new URL(jwksUri);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'https:' || jwksUri.length > maxUriLength)
      throw badMetadata('jwks_uri must be an absolute https URI');
    return { jwks_uri: jwksUri };
  }
  const parsed = jwksSchema.safeParse(jwks);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badMetadata(`jwks${issue === undefined ? '' : `.${issue.path.join('.')}`} ${issue?.message ?? 'is invalid'}`);
  }
  const unstorable = findUnstorableText(parsed.data);
  if (unstorable !== undefined) throw badMetadata(`${describePath(unstorable.path, 'jwks')} ${unstorable.problem}`);
  return { jwks: parsed.data };
}

/** The scopes the tenant's resource servers offer: what a registered client may ask for at most. */
function tenantScopes(registry: Registry, tenant: string): string[] {
  return [
    ...new Set([...registry.resourceServers.values()].filter((rs) => rs.tenant === tenant).flatMap((rs) => rs.scopes)),
  ];
}

function scope(body: Record<string, unknown>, offered: readonly string[]): string[] {
  const value = text(body, 'scope', badMetadata);
  if (value === undefined) return [...offered];
  if (value.length > 4096 || !scopeSyntax.test(value))
    throw badMetadata('scope must be space-separated RFC 6749 scope tokens');
  const asked = [...new Set(value.split(' '))];
  if (asked.length > maxScopes) throw badMetadata(`scope may hold at most ${maxScopes} scopes`);
  for (const s of asked)
    if (!offered.includes(s))
      throw badMetadata(`scope "${echo(s)}" is not offered by any resource server of the tenant`);
  return asked;
}

function clientName(body: Record<string, unknown>): string | undefined {
  const name = text(body, 'client_name', badMetadata);
  if (name === undefined) return undefined;
  if (name.trim() === '' || [...name].length > maxNameLength)
    throw badMetadata(`client_name must be 1 to ${maxNameLength} characters`);
  return name;
}

/** The client the metadata describes, as the registry keeps it (without id, tenant and secret). */
function clientFromMetadata(
  body: unknown,
  offeredScopes: readonly string[],
  open: boolean,
): Omit<Client, 'client_id' | 'tenant' | 'name'> & { readonly clientName: string | undefined } {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badMetadata('the client metadata must be a JSON object');
  const metadata = body as Record<string, unknown>;
  const uris = redirectUris(metadata);
  responseTypes(metadata);
  const grants = grantTypes(metadata);
  const method = authMethod(metadata);
  const keys = keySource(metadata, method, open);
  const scopes = scope(metadata, offeredScopes);
  return {
    clientName: clientName(metadata),
    token_endpoint_auth_method: method,
    ...keys,
    grant_types: grants as Client['grant_types'],
    ...(scopes.length === 0 ? {} : { scope: scopes }),
    redirect_uris: uris,
  };
}

/** Who registers, and into which tenant: the initial access token's holder and tenant, or anyone into the open tenant. */
async function registrant(
  ctx: ServiceContext,
  registry: Registry,
  request: RegistrationRequest,
): Promise<{ tenant: Tenant; caller: Caller | undefined }> {
  const scope = operatorScopes.register;
  const authorization = request.authorization?.trim() ?? '';
  if (authorization === '') {
    const open = [...registry.tenants.values()].find((t) => t.dynamicClientRegistration.mode === 'open');
    if (open === undefined)
      throw new BearerTokenError(
        'invalid_token',
        `an initial access token (a Baton access token with scope ${scope}) is required to register a client`,
        { tokenSent: false, scope },
      );
    // One bucket per address, beside the callers' own (an id never has a space).
    ctx.rateLimit.check(`registration from ${request.remoteAddress ?? 'an unknown address'}`);
    return { tenant: open, caller: undefined };
  }
  if (!/^bearer /i.test(authorization))
    throw new BearerTokenError('invalid_token', 'the initial access token must be sent as Authorization: Bearer', {
      tokenSent: true,
      scope,
    });
  let authenticated;
  try {
    authenticated = await authenticateCaller(ctx, registry, authorization);
  } catch (error) {
    if (error instanceof OAuthError && error.code === 'invalid_client')
      throw new BearerTokenError('invalid_token', `the initial access token is not valid: ${error.description}`, {
        tokenSent: true,
        scope,
      });
    throw error;
  }
  request.observe?.(authenticated.caller);
  if (!authenticated.scope.has(scope))
    throw new BearerTokenError('insufficient_scope', `the initial access token lacks the ${scope} scope`, {
      tokenSent: true,
      scope,
    });
  const tenant = registry.tenants.get(authenticated.caller.tenant);
  if (tenant === undefined) throw new OAuthError('server_error', 'the token names no known tenant');
  return { tenant, caller: authenticated.caller };
}

/**
 * RFC 7591 dynamic client registration: checks who registers (an initial access token with
 * `baton:register`, whose tenant the client joins; or nobody, into the one tenant open to it,
 * rate-limited per address), validates the metadata, and stores an ordinary client of the code
 * flow, marked as registered, through the registry store (so every instance has it within the
 * registry's propagation). A secret, when the client uses one, is shown in this answer only; its
 * SHA-256 is stored. Refusals in a known tenant, and every registration, are audited.
 */
export async function registerClient(
  ctx: ServiceContext,
  store: RegistryStore,
  request: RegistrationRequest,
): Promise<RegistrationResponse> {
  const registry = ctx.registry();
  const { tenant, caller } = await registrant(ctx, registry, request);
  const audit = (event: Pick<AuditEvent, 'decision' | 'reason'>) =>
    ctx.audit.append({
      tenant: tenant.id,
      type: 'registry.registration',
      client: caller?.id ?? null,
      ...event,
      request_id: request.requestId,
    });
  const by = caller === undefined ? 'open registration' : `initial access token of "${caller.id}"`;
  try {
    const mode = tenant.dynamicClientRegistration.mode;
    if (mode === 'off')
      throw new OAuthError('access_denied', `dynamic client registration is off for tenant "${tenant.id}"`);
    const body = await request.body();
    const { clientName, ...metadata } = clientFromMetadata(
      body,
      tenantScopes(registry, tenant.id),
      caller === undefined,
    );
    const clientId = `dcr-${randomId()}`;
    const now = ctx.clock.now();
    const made =
      metadata.token_endpoint_auth_method === 'client_secret_basic' ||
      metadata.token_endpoint_auth_method === 'client_secret_post'
        ? secret()
        : undefined;
    const client: Client = {
      client_id: clientId,
      tenant: tenant.id,
      name: clientName ?? clientId,
      ...metadata,
      ...(made === undefined ? {} : { client_secret_sha256: ctx.sha256(made) }),
      dynamically_registered_at: new Date(now).toISOString(),
    };
    try {
      await store.edit(`registration (${by})`, (document) => ({ ...document, clients: [...document.clients, client] }));
    } catch (error) {
      if (!(error instanceof RegistryError)) throw error;
      // The new client is the edit's only change: a problem names a path inside it.
      const problem = error.problems.find((p) => p.path.startsWith('/clients/')) ?? error.problems[0];
      const path = problem?.path.replace(/^\/clients\/\d+\/?/, '').replaceAll('/', '.') ?? '';
      throw badMetadata(`${path === '' ? 'the client' : path}: ${problem?.message ?? 'is invalid'}`);
    }
    await audit({
      decision: 'granted',
      reason: `registered client "${clientId}" (${metadata.token_endpoint_auth_method}) by ${by}`,
    });
    return {
      client_id: clientId,
      client_id_issued_at: Math.floor(now / 1000),
      ...(made === undefined ? {} : { client_secret: made, client_secret_expires_at: 0 as const }),
      ...(clientName === undefined ? {} : { client_name: clientName }),
      redirect_uris: metadata.redirect_uris ?? [],
      grant_types: metadata.grant_types,
      response_types: ['code'],
      token_endpoint_auth_method: metadata.token_endpoint_auth_method,
      ...(metadata.scope === undefined ? {} : { scope: metadata.scope.join(' ') }),
      ...(metadata.jwks === undefined ? {} : { jwks: metadata.jwks }),
      ...(metadata.jwks_uri === undefined ? {} : { jwks_uri: metadata.jwks_uri }),
    };
  } catch (error) {
    if (!(error instanceof OAuthError) || error.status >= 500) throw error;
    await audit({ decision: 'refused', reason: `${by}: ${refusalReason(error)}` });
    throw error.markAudited();
  }
}
