import { decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose';
import { isAgentIdentity, type AgentIdentity } from './agent.js';
import { BatonError } from './errors.js';
import {
  assertWellFormed,
  basicAuthorization,
  getJson,
  isObject,
  postForm,
  systemClock,
  untilAborted,
  type Clock,
  type Fetch,
  type FormRequest,
  type RetryOptions,
} from './http.js';

/** RFC 8693 token type URIs. */
export const tokenTypes = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  idToken: 'urn:ietf:params:oauth:token-type:id_token',
  refreshToken: 'urn:ietf:params:oauth:token-type:refresh_token',
} as const;

const tokenExchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
const jwtBearerAssertion = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * How the SDK authenticates to Baton's token endpoint: a client secret (`client_secret_basic`),
 * an agent identity (`private_key_jwt`, a fresh assertion per request), or a public client's id.
 */
export type ClientCredentials = { readonly id: string; readonly secret?: string } | AgentIdentity;

/** The actor of an exchange: an agent identity (signs a fresh assertion), or a token it already holds. */
export type Actor = AgentIdentity | { readonly token: string; readonly tokenType?: string };

/** What `exchange` asks for (RFC 8693 §2.1, RFC 8707, RFC 9396). */
export interface ExchangeParams {
  readonly subjectToken: string;
  /** Default: `…:access_token` for a token Baton issued (its `iss`), else `…:jwt`. */
  readonly subjectTokenType?: string;
  readonly actor?: Actor;
  readonly audience?: string | readonly string[];
  readonly resource?: string | readonly string[];
  readonly scope?: string | readonly string[];
  readonly authorizationDetails?: readonly object[];
  readonly requestedTokenType?: string;
  /** Overrides the client's default credentials. */
  readonly client?: ClientCredentials;
  readonly signal?: AbortSignal;
}

/** What `clientCredentials` asks for. */
export interface ClientCredentialsParams {
  readonly client?: ClientCredentials;
  readonly audience?: string | readonly string[];
  readonly resource?: string | readonly string[];
  readonly scope?: string | readonly string[];
  readonly authorizationDetails?: readonly object[];
  readonly signal?: AbortSignal;
}

/** The claims of a token Baton issued, decoded (not verified: the agent only reads them), with its chain. */
export interface IssuedClaims extends JWTPayload {
  /** Who acts, oldest first: `[user, orchestrator, sub-agent]`; `[sub]` alone when no one acts. */
  readonly actChain: string[];
}

/** A token Baton issued and what it said about it. */
export interface IssuedToken {
  readonly accessToken: string;
  readonly issuedTokenType: string | undefined;
  readonly tokenType: string | undefined;
  readonly expiresIn: number | undefined;
  /** When the token expires (milliseconds, the client's clock): from `expires_in`, else the token's `exp`. */
  readonly expiresAt: number | undefined;
  readonly scope: string | undefined;
  readonly authorizationDetails: object[] | undefined;
  readonly refreshToken: string | undefined;
  readonly claims: IssuedClaims;
}

/** Options of `batonClient`. */
export interface BatonClientOptions {
  /** Baton's issuer URL. */
  readonly issuer: string;
  /** Default: read from the RFC 8414 metadata at `/.well-known/oauth-authorization-server`. */
  readonly tokenEndpoint?: string;
  /** Credentials used when a call names none. */
  readonly client?: ClientCredentials;
  readonly fetch?: Fetch;
  readonly clock?: Clock;
  readonly retry?: RetryOptions;
}

/** A client of Baton's token endpoint. */
export interface BatonClient {
  readonly issuer: string;
  readonly clock: Clock;
  /** RFC 8693 token exchange: a token for `actor` to act for the subject token's principal. */
  exchange(params: ExchangeParams): Promise<IssuedToken>;
  /** `exchange` with the subject token first: `delegate(userToken, { actor, audience, scope })`. */
  delegate(subjectToken: string, params?: Omit<ExchangeParams, 'subjectToken'>): Promise<IssuedToken>;
  /** A token for the client itself (an agent's own token when the client is an agent identity). */
  clientCredentials(params?: ClientCredentialsParams): Promise<IssuedToken>;
  /** POSTs a grant to the token endpoint with client authentication (for other grants, such as the code flow's). */
  requestToken(
    params: Record<string, string | readonly string[] | undefined>,
    client: ClientCredentials | undefined,
    signal: AbortSignal | undefined,
    actor?: Actor,
  ): Promise<IssuedToken>;
  /** The token endpoint, discovered once from Baton's metadata unless given. */
  tokenEndpoint(signal?: AbortSignal): Promise<string>;
}

/** The RFC 8414 metadata URL of an issuer (the well-known segment goes before the issuer's path). */
export function metadataUrl(issuer: string): string {
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  return `${url.origin}/.well-known/oauth-authorization-server${path}`;
}

/** A client of Baton's token endpoint: exchange, delegate, client credentials. */
export function batonClient(options: BatonClientOptions): BatonClient {
  const { issuer, fetch, clock = systemClock, retry } = options;
  const http = { clock, ...(fetch === undefined ? {} : { fetch }), ...(retry === undefined ? {} : { retry }) };
  let endpoint: Promise<string> | undefined =
    options.tokenEndpoint === undefined ? undefined : Promise.resolve(options.tokenEndpoint);

  // Discovery is shared by every caller, so no one caller's signal may cancel it: each waits on it until its own signal aborts.
  const tokenEndpoint = (signal?: AbortSignal): Promise<string> => untilAborted(discover(), signal);
  const discover = (): Promise<string> =>
    (endpoint ??= getJson(metadataUrl(issuer), http)
      .then((metadata) => {
        // RFC 8414 §3.3: metadata for another issuer is not Baton's.
        if (metadata.issuer !== issuer)
          throw new BatonError(
            'invalid_response',
            `the metadata names issuer ${String(metadata.issuer)}, not ${issuer}`,
          );
        if (typeof metadata.token_endpoint !== 'string')
          throw new BatonError('invalid_response', 'the metadata has no token_endpoint');
        return metadata.token_endpoint;
      })
      .catch((error: unknown) => {
        endpoint = undefined;
        throw error;
      }));

  const requestToken: BatonClient['requestToken'] = async (params, client, signal, actor) => {
    const url = await tokenEndpoint(signal);
    const credentials = client ?? options.client;
    const build = async (): Promise<FormRequest> => {
      const form = new URLSearchParams();
      for (const [name, value] of Object.entries(params)) {
        if (value === undefined) continue;
        for (const one of typeof value === 'string' ? [value] : value) {
          assertWellFormed(name, one);
          form.append(name, one);
        }
      }
      if (actor !== undefined) {
        if (isAgentIdentity(actor)) {
          form.set('actor_token', await actor.assertion());
          form.set('actor_token_type', tokenTypes.jwt);
        } else {
          assertWellFormed('actor_token', actor.token);
          form.set('actor_token', actor.token);
          form.set('actor_token_type', actor.tokenType ?? tokenTypes.accessToken);
        }
      }
      return { params: form, headers: await authenticate(credentials, form) };
    };
    const body = await postForm(url, build, { ...http, signal });
    return issuedToken(body, clock);
  };

  const exchange: BatonClient['exchange'] = (params) =>
    requestToken(
      {
        grant_type: tokenExchangeGrant,
        subject_token: params.subjectToken,
        subject_token_type: params.subjectTokenType ?? subjectTokenType(params.subjectToken, issuer),
        audience: params.audience,
        resource: params.resource,
        scope: scopeText(params.scope),
        authorization_details: detailsText(params.authorizationDetails),
        requested_token_type: params.requestedTokenType,
      },
      params.client,
      params.signal,
      params.actor,
    );

  return {
    issuer,
    clock,
    tokenEndpoint,
    requestToken,
    exchange,
    delegate(subjectToken, params = {}) {
      return exchange({ ...params, subjectToken });
    },
    clientCredentials(params = {}) {
      return requestToken(
        {
          grant_type: 'client_credentials',
          audience: params.audience,
          resource: params.resource,
          scope: scopeText(params.scope),
          authorization_details: detailsText(params.authorizationDetails),
        },
        params.client,
        params.signal,
      );
    },
  };
}

/** Adds the client's authentication to the form, or returns the Basic header that carries it. */
async function authenticate(
  client: ClientCredentials | undefined,
  form: URLSearchParams,
): Promise<Record<string, string>> {
  if (client === undefined) return {};
  if (isAgentIdentity(client)) {
    form.set('client_assertion_type', jwtBearerAssertion);
    form.set('client_assertion', await client.assertion());
    return {};
  }
  assertWellFormed('client_id', client.id);
  if (client.secret !== undefined) assertWellFormed('client_secret', client.secret);
  if (client.secret === undefined) {
    form.set('client_id', client.id);
    return {};
  }
  return { authorization: basicAuthorization(client.id, client.secret) };
}

function scopeText(scope: string | readonly string[] | undefined): string | undefined {
  return scope === undefined || typeof scope === 'string' ? scope : scope.join(' ');
}

function detailsText(details: readonly object[] | undefined): string | undefined {
  return details === undefined ? undefined : JSON.stringify(details);
}

/** A Baton token (`at+jwt` from this issuer) is an access token; anything else is sent as a JWT. */
function subjectTokenType(token: string, issuer: string): string {
  try {
    if (decodeProtectedHeader(token).typ === 'at+jwt' && decodeJwt(token).iss === issuer) return tokenTypes.accessToken;
  } catch {
    // Not a JWT Baton can tell apart: Baton will say what is wrong with it.
  }
  return tokenTypes.jwt;
}

/** The actor chain of a token's claims, oldest first: `sub`, then the innermost `act` out to the current actor. */
export function actChain(claims: JWTPayload): string[] {
  const actors: string[] = [];
  let node: unknown = claims.act;
  // Bounded as Baton bounds the nesting it accepts.
  for (let depth = 0; isObject(node) && typeof node.sub === 'string' && depth < 32; depth++) {
    actors.unshift(node.sub);
    node = node.act;
  }
  return typeof claims.sub === 'string' ? [claims.sub, ...actors] : actors;
}

function issuedToken(body: Record<string, unknown>, clock: Clock): IssuedToken {
  const {
    access_token: accessToken,
    issued_token_type: issuedTokenType,
    token_type: tokenType,
    expires_in: expiresIn,
    scope,
    authorization_details: authorizationDetails,
    refresh_token: refreshToken,
  } = body;
  if (typeof accessToken !== 'string' || accessToken === '')
    throw new BatonError('invalid_response', 'the token response has no access_token');
  let payload: JWTPayload;
  try {
    payload = decodeJwt(accessToken);
  } catch (cause) {
    throw new BatonError('invalid_response', 'the access token is not a JWT', { cause });
  }
  const lifetime = typeof expiresIn === 'number' && Number.isFinite(expiresIn) ? expiresIn : undefined;
  return {
    accessToken,
    issuedTokenType: typeof issuedTokenType === 'string' ? issuedTokenType : undefined,
    tokenType: typeof tokenType === 'string' ? tokenType : undefined,
    expiresIn: lifetime,
    expiresAt:
      lifetime !== undefined
        ? clock.now() + lifetime * 1000
        : typeof payload.exp === 'number'
          ? payload.exp * 1000
          : undefined,
    scope: typeof scope === 'string' ? scope : undefined,
    authorizationDetails: Array.isArray(authorizationDetails) ? (authorizationDetails as object[]) : undefined,
    refreshToken: typeof refreshToken === 'string' ? refreshToken : undefined,
    claims: { ...payload, actChain: actChain(payload) },
  };
}
