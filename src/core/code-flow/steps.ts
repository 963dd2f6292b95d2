import { errors as joseErrors, jwtVerify } from 'jose';
import { attenuateScope, resolveTargets } from '../tokens/attenuate.js';
import type { AuditEvent } from '../audit/chain.js';
import type { LoginField } from '../ports.js';
import {
  describeDetail,
  parseAuthorizationDetails,
  type AuthorizationDetail,
} from '../tokens/authorization-details.js';
import { batonAlgorithms } from '../tokens/baton-token.js';
import { OAuthError, echo } from '../errors.js';
import { isDocumentClientId } from '../clients/document-client-id.js';
import {
  ClientDocumentError,
  documentCaller,
  tenantRefusesDocument,
  type ClientDocument,
} from '../clients/metadata-document.js';
import { signJwt } from '../tokens/jwt.js';
import { delegateAction, delegationRequest, noDelegateAction } from '../decisions/policy.js';
import type { Caller, Registry } from '../registry/registry.js';
import { assertInGoodStanding, firstStandingProblem, grantPrincipals } from '../registry/standing.js';
import { signInKeys } from './sign-in-throttle.js';
import { redirectUriMatches } from './redirect-uri.js';
import { authorizationCode } from '../grants/authorization-code.js';
import { scopeSyntax } from '../grants/parameters.js';
import type { FormParams } from '../grants/token-request.js';
import type { ServiceContext } from '../context.js';
import { randomId, sha256Base64url, secret } from '../secrets.js';

/** An authorization request that passed validation, carried signed between the pages. */
export interface PendingAuthorization {
  readonly tenant: string;
  readonly clientId: string;
  readonly redirectUri: string;
  readonly state: string | null;
  readonly codeChallenge: string;
  readonly scope: readonly string[];
  readonly audience: readonly string[];
  readonly authorizationDetails: readonly AuthorizationDetail[];
  readonly agent: string | null;
  /** Set once the user has signed in. */
  readonly user: string | null;
  /** For a client identified by a metadata document: what it says of itself, as fetched (not verified). */
  readonly document?: DocumentDisplay;
}

/** What a client metadata document says of its client, shown as the client's claim, not Baton's. */
export interface DocumentDisplay {
  readonly name: string | null;
  /** An https URL only. */
  readonly logoUri: string | null;
}

/**
 * A sentence shown to the user: `text` is the English wording, which also names the message for
 * translation; `{name}` in it is replaced by `values[name]`.
 */
export interface PageMessage {
  readonly text: string;
  readonly values?: Readonly<Record<string, string>>;
}

/**
 * What the browser is shown next. A page whose form may end in a redirect to the client names
 * that client's validated `redirectUri`, so the page may allow exactly that target.
 */
export type FlowStep =
  /** `audited`: the refusal has an audit entry of its own (else the HTTP layer audits it, bounded). */
  | { readonly kind: 'error-page'; readonly status: number; readonly message: PageMessage; readonly audited?: true }
  | { readonly kind: 'redirect'; readonly location: string }
  | {
      readonly kind: 'login';
      readonly sealed: string;
      readonly csrf: string;
      readonly fields: readonly LoginField[];
      readonly clientName: string;
      readonly redirectUri: string;
      readonly error?: PageMessage;
    }
  | {
      readonly kind: 'consent';
      readonly sealed: string;
      readonly csrf: string;
      readonly view: ConsentView;
      readonly redirectUri: string;
    };

/** Who is at the browser: the language the pages speak, the address sign-in is throttled by, its CSRF cookie. */
export interface BrowserContext {
  readonly language: string;
  readonly address: string | undefined;
  /** The CSRF cookie the browser already holds: reused, so that several tabs of one browser share it. */
  readonly csrf: string | undefined;
}

/** What the consent page names, in plain words. */
export interface ConsentView {
  readonly user: string;
  readonly clientName: string;
  readonly clientId: string;
  /** Set for a client identified by a metadata document: its name and logo are its own claim. */
  readonly unverified?: { readonly logoUri: string | null };
  readonly agent: { readonly id: string; readonly name: string } | null;
  readonly scope: readonly string[];
  readonly details: readonly string[];
}

const requestType = 'baton-authorization-request+jwt';
/** How long a sign-in and consent request stays usable after it was opened. */
const requestLifetimeSeconds = 600;
/** The issuer under which answered consent requests are recorded as used (one consent, one answer). */
const consentUse = (issuer: string): string => `${issuer}/oauth2/authorize/consent`;

const messages = {
  unknownClient: { text: 'The application that sent you here is not registered for sign-in.' },
  unknownRedirect: { text: 'The address to return to is not registered for this application.' },
  forged: { text: 'This form has expired or was not sent from this site. Start again from the application.' },
  expired: { text: 'This sign-in request has expired. Start again from the application.' },
  answered: { text: 'This request has already been answered. Start again from the application.' },
  wrongPassword: { text: 'The user name or password is not right.' },
  documentsOff: { text: 'This service does not accept applications identified by a client metadata document.' },
  documentNoResource: {
    text: 'A client identified by a metadata document must name the resource it wants (RFC 8707 resource).',
  },
} as const satisfies Record<string, PageMessage>;

/** The browser's CSRF token when it has a well-formed one (see `secret`), else a fresh one. */
function csrfFor(browser: BrowserContext): string {
  return browser.csrf !== undefined && /^[A-Za-z0-9_-]{44}$/.test(browser.csrf) ? browser.csrf : secret();
}

/** A single-valued parameter (the form parser has already refused repeats). */
function single(query: FormParams, name: string): string | undefined {
  const value = query[name];
  return typeof value === 'string' ? value : undefined;
}

function redirectWith(uri: string, params: Record<string, string | null>, issuer: string): FlowStep {
  const url = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v !== null) url.searchParams.set(k, v);
  url.searchParams.set('iss', issuer);
  return { kind: 'redirect', location: url.toString() };
}

async function seal(ctx: ServiceContext, pending: PendingAuthorization, csrf: string): Promise<string> {
  const now = Math.floor(ctx.clock.now() / 1000);
  return signJwt(ctx.keys, requestType, {
    pending,
    csrf,
    jti: randomId(),
    iss: ctx.issuer,
    aud: ctx.issuer,
    iat: now,
    exp: now + requestLifetimeSeconds,
  });
}

/** A sealed request as the form brought it back. */
type Unsealed =
  | { readonly status: 'ok'; readonly pending: PendingAuthorization; readonly jti: string; readonly exp: number }
  | { readonly status: 'expired' | 'forged' };

/** Opens a sealed request, checking the CSRF token of the form and of the cookie both match it. */
async function unseal(
  ctx: ServiceContext,
  sealed: string | undefined,
  formCsrf: string | undefined,
  cookieCsrf: string | undefined,
): Promise<Unsealed> {
  if (sealed === undefined || formCsrf === undefined || cookieCsrf === undefined || formCsrf !== cookieCsrf)
    return { status: 'forged' };
  try {
    const { payload } = await jwtVerify(sealed, ctx.keys.resolve, {
      typ: requestType,
      issuer: ctx.issuer,
      audience: ctx.issuer,
      algorithms: [...batonAlgorithms],
      currentDate: new Date(ctx.clock.now()),
    });
    if (payload.csrf !== formCsrf || typeof payload.jti !== 'string' || typeof payload.exp !== 'number')
      return { status: 'forged' };
    return { status: 'ok', pending: payload.pending as PendingAuthorization, jti: payload.jti, exp: payload.exp };
  } catch (error) {
    // jose checks the signature before the claims: an expired request is one Baton sealed.
    return { status: error instanceof joseErrors.JWTExpired && error.payload.csrf === formCsrf ? 'expired' : 'forged' };
  }
}

/** The error page for a form whose sealed request cannot be used. */
function unusable(status: 'expired' | 'forged'): FlowStep {
  return status === 'expired'
    ? { kind: 'error-page', status: 400, message: messages.expired }
    : { kind: 'error-page', status: 403, message: messages.forged };
}

function audit(
  ctx: ServiceContext,
  pending: PendingAuthorization,
  event: Omit<AuditEvent, 'tenant' | 'client' | 'scope' | 'audience' | 'authorization_details'>,
): Promise<unknown> {
  return ctx.audit.append({
    tenant: pending.tenant,
    client: pending.clientId,
    scope: pending.scope,
    audience: pending.audience,
    authorization_details: pending.authorizationDetails,
    actor_chain: pending.agent === null ? [] : [pending.agent],
    ...event,
  });
}

/**
 * Why the pending request may not go on now: its client, the user or the agent is suspended, or
 * the agent has expired, since the request was opened. Undefined when all are in good standing.
 */
function pendingStandingProblem(
  ctx: ServiceContext,
  registry: Registry,
  pending: PendingAuthorization,
  user: string,
): string | undefined {
  return firstStandingProblem(
    registry,
    pending.tenant,
    [{ kind: 'client', id: pending.clientId }, ...grantPrincipals({ user, agent: pending.agent })],
    ctx.clock.now(),
  )?.description;
}

/**
 * `GET /oauth2/authorize`: an unknown client or redirect URI gets an error page and never a
 * redirect; every other problem goes back to the redirect URI with `error` and `state`.
 */
export async function startAuthorization(
  ctx: ServiceContext,
  query: FormParams,
  browser: BrowserContext,
): Promise<FlowStep> {
  const registry = ctx.registry();
  const clientId = single(query, 'client_id');
  const redirectUri = single(query, 'redirect_uri');
  let client = clientId === undefined ? undefined : registry.callers.get(clientId);
  let document: DocumentDisplay | undefined;
  if (client === undefined && clientId !== undefined && isDocumentClientId(clientId)) {
    const found = await documentClientFor(ctx, registry, clientId, redirectUri, query);
    if (found.kind === 'error-page') return found;
    ({ client, document } = found);
  }
  if (client === undefined || client.kind !== 'client' || !client.grantTypes.has(authorizationCode.grantType)) {
    return { kind: 'error-page', status: 400, message: messages.unknownClient };
  }
  if (redirectUri === undefined || !redirectUriMatches(client.redirectUris, redirectUri)) {
    return { kind: 'error-page', status: 400, message: messages.unknownRedirect };
  }
  const state = single(query, 'state') ?? null;
  try {
    const validated = await validateRequest(ctx, registry, client, redirectUri, state, query);
    const pending = document === undefined ? validated : { ...validated, document };
    const csrf = csrfFor(browser);
    return {
      kind: 'login',
      sealed: await seal(ctx, pending, csrf),
      csrf,
      fields: ctx.authenticator.fields,
      // A document's name is the client's own claim: sign-in names the URL Baton fetched it from.
      clientName: document === undefined ? client.name : client.id,
      redirectUri,
    };
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    await ctx.audit.append({
      tenant: client.tenant,
      type: 'authorization.login',
      decision: 'refused',
      client: client.id,
      reason: `${error.code}: ${error.description}`,
    });
    return redirectWith(redirectUri, { error: error.code, error_description: error.description, state }, ctx.issuer);
  }
}

/**
 * The client a metadata document URL stands for at `/oauth2/authorize`, in the tenant of the
 * resource it asks for (RFC 8707): the tenant is chosen and must accept the document's host
 * before anything is fetched, so a URL no tenant allows is never fetched. Every failure is an
 * error page (the redirect URI is not trusted until the document is), audited once the tenant
 * is known.
 */
async function documentClientFor(
  ctx: ServiceContext,
  registry: Registry,
  clientId: string,
  redirectUri: string | undefined,
  query: FormParams,
): Promise<{ kind: 'client'; client: Caller; document: DocumentDisplay } | Extract<FlowStep, { kind: 'error-page' }>> {
  const documents = ctx.clientDocuments;
  if (documents === undefined) return { kind: 'error-page', status: 400, message: messages.documentsOff };
  const resources =
    query.resource === undefined ? [] : Array.isArray(query.resource) ? query.resource : [query.resource];
  if (resources.length === 0) return { kind: 'error-page', status: 400, message: messages.documentNoResource };
  const servers = [];
  for (const resource of resources) {
    const server = registry.audiences.get(resource);
    if (server === undefined)
      return {
        kind: 'error-page',
        status: 400,
        message: {
          text: 'The resource {resource} is not a registered resource server.',
          values: { resource: echo(resource, 120) },
        },
      };
    servers.push(server);
  }
  const tenant = servers[0]?.tenant as string;
  if (servers.some((rs) => rs.tenant !== tenant))
    return {
      kind: 'error-page',
      status: 400,
      message: { text: 'The resources asked for belong to different tenants.' },
    };
  /** An error page whose `{reason}` (if any) is `reason`, audited in the tenant. */
  const refuse = async (text: string, reason?: string): Promise<Extract<FlowStep, { kind: 'error-page' }>> => {
    await ctx.audit.append({
      tenant,
      type: 'authorization.login',
      decision: 'refused',
      // Not yet known to be a well-formed URL: carried as the error messages carry untrusted text.
      client: echo(clientId, 2048),
      reason: `invalid_client: ${reason === undefined ? text : text.replace('{reason}', reason)}`,
    });
    const message: PageMessage = reason === undefined ? { text } : { text, values: { reason } };
    return { kind: 'error-page', status: 400, message, audited: true };
  };
  let document: ClientDocument;
  try {
    const problem = tenantRefusesDocument(registry.tenants.get(tenant), documents.urlOf(clientId).hostname);
    if (problem !== undefined) return await refuse('This application cannot sign in here: {reason}.', problem);
    document = await documents.resolve(clientId);
  } catch (error) {
    if (!(error instanceof ClientDocumentError)) throw error;
    return refuse("The application's client metadata document cannot be used: {reason}.", error.message);
  }
  if (redirectUri === undefined || !redirectUriMatches(document.redirectUris, redirectUri))
    return refuse(messages.unknownRedirect.text);
  return {
    kind: 'client',
    client: documentCaller(documents, registry, document, tenant),
    document: {
      name: document.name ?? null,
      logoUri: document.logoUri !== undefined && document.logoUri.startsWith('https://') ? document.logoUri : null,
    },
  };
}

async function validateRequest(
  ctx: ServiceContext,
  registry: Registry,
  client: Caller,
  redirectUri: string,
  state: string | null,
  query: FormParams,
): Promise<PendingAuthorization> {
  const responseType = single(query, 'response_type');
  if (responseType !== 'code') throw new OAuthError('invalid_request', 'response_type must be code');
  const challenge = single(query, 'code_challenge');
  const method = single(query, 'code_challenge_method');
  if (challenge === undefined) throw new OAuthError('invalid_request', 'code_challenge is required (PKCE)');
  if (method !== 'S256') throw new OAuthError('invalid_request', 'code_challenge_method must be S256');
  if (!/^[A-Za-z0-9_-]{43}$/.test(challenge))
    throw new OAuthError('invalid_request', 'code_challenge must be a base64url SHA-256');
  if (state !== null && state.length > 1024) throw new OAuthError('invalid_request', 'state is too long');
  const now = ctx.clock.now();
  assertInGoodStanding(registry, client.tenant, [{ kind: 'client', id: client.id }], now, 'access_denied');

  const requestedActor = single(query, 'requested_actor');
  let agent: string | null = null;
  if (requestedActor !== undefined) {
    const found = registry.agents.get(requestedActor);
    if (found === undefined || found.tenant !== client.tenant)
      throw new OAuthError('invalid_request', 'requested_actor is not a registered agent of this tenant');
    if (!client.agents.has(found.id))
      throw new OAuthError('invalid_request', 'requested_actor is not an agent this client may request');
    assertInGoodStanding(registry, client.tenant, [{ kind: 'agent', id: found.id }], now, 'access_denied');
    agent = found.id;
  }
  const scopeParam = single(query, 'scope');
  if (scopeParam !== undefined && !scopeSyntax.test(scopeParam))
    throw new OAuthError('invalid_scope', 'scope must be space-separated scope tokens');
  const details =
    parseAuthorizationDetails(
      single(query, 'authorization_details'),
      ctx.detailTypes,
      ctx.limits.maxAuthorizationDetails,
    ) ?? [];
  if (scopeParam === undefined && details.length === 0)
    throw new OAuthError('invalid_request', 'scope or authorization_details is required');
  const scope =
    scopeParam === undefined
      ? []
      : attenuateScope(scopeParam, [
          ['what this client may request', client.scope ?? new Set()],
          [`what agent "${agent}" may hold`, agent === null ? undefined : registry.agents.get(agent)?.scope],
        ]);
  const resourceValues =
    query.resource === undefined ? [] : Array.isArray(query.resource) ? query.resource : [query.resource];
  let audience = resolveTargets(registry, client.tenant, [], resourceValues);
  if (audience.length === 0) {
    // Without RFC 8707 resources, the token is for the resource servers that offer its scopes.
    audience = [...registry.resourceServers.values()]
      .filter((rs) => rs.tenant === client.tenant && rs.scopes.some((s) => scope.includes(s)))
      .map((rs) => rs.audience);
  }
  if (audience.length === 0)
    throw new OAuthError(
      'invalid_target',
      'no resource server of this tenant offers the requested scope; name one with resource',
    );
  return {
    tenant: client.tenant,
    clientId: client.id,
    redirectUri,
    state,
    codeChallenge: challenge,
    scope,
    audience,
    authorizationDetails: details,
    agent,
    user: null,
  };
}

/** `POST /oauth2/authorize/login`: signs the user in (throttled), asks the delegation policy, then shows the consent page. */
export async function submitLogin(
  ctx: ServiceContext,
  form: Readonly<Record<string, string>>,
  cookieCsrf: string | undefined,
  browser: BrowserContext,
): Promise<FlowStep> {
  const opened = await unseal(ctx, form.request, form.csrf_token, cookieCsrf);
  if (opened.status !== 'ok') return unusable(opened.status);
  const { pending } = opened;
  const registry = ctx.registry();
  const client = registry.callers.get(pending.clientId);
  const clientName = pending.document?.name ?? client?.name ?? pending.clientId;
  const loginName = pending.document === undefined ? clientName : pending.clientId;
  const again = async (error: PageMessage): Promise<FlowStep> => {
    const csrf = csrfFor(browser);
    return {
      kind: 'login',
      sealed: await seal(ctx, pending, csrf),
      csrf,
      fields: ctx.authenticator.fields,
      clientName: loginName,
      redirectUri: pending.redirectUri,
      error,
    };
  };
  const keys = signInKeys(ctx.sha256, pending.tenant, form.username ?? '', browser.address);
  const lockedUntil = await ctx.signInThrottle.attempt(keys, new Date(ctx.clock.now()));
  if (lockedUntil !== undefined) {
    await audit(ctx, pending, {
      type: 'authorization.login',
      decision: 'refused',
      reason: 'sign-in throttled: too many failed attempts',
    });
    const seconds = Math.max(1, Math.ceil((lockedUntil.getTime() - ctx.clock.now()) / 1000));
    return again({
      text: 'Too many failed sign-ins. Try again in {seconds} seconds.',
      values: { seconds: String(seconds) },
    });
  }
  const user = await ctx.authenticator.authenticate(pending.tenant, form);
  if (user === undefined) {
    await audit(ctx, pending, {
      type: 'authorization.login',
      decision: 'refused',
      reason: 'wrong user name or password',
    });
    return again(messages.wrongPassword);
  }
  await ctx.signInThrottle.succeeded(keys);
  const refused = pendingStandingProblem(ctx, registry, pending, user);
  if (refused !== undefined) {
    await audit(ctx, pending, {
      type: 'authorization.login',
      decision: 'refused',
      user,
      reason: `access_denied: ${refused}`,
    });
    return redirectWith(
      pending.redirectUri,
      { error: 'access_denied', error_description: refused, state: pending.state },
      ctx.issuer,
    );
  }
  const signedIn: PendingAuthorization = { ...pending, user };
  await audit(ctx, signedIn, { type: 'authorization.login', decision: 'granted', user });
  if (pending.agent !== null) {
    const policy = ctx.policy();
    const decision = policy.evaluate(
      delegationRequest(registry, {
        tenant: pending.tenant,
        actor: pending.agent,
        user,
        clientId: pending.clientId,
        audience: pending.audience,
        scope: pending.scope,
        authorizationDetails: pending.authorizationDetails,
        chain: [pending.agent],
      }),
    );
    if (!decision.allowed) {
      const description = policy.declares(delegateAction)
        ? 'delegation is not permitted by policy'
        : `delegation is not permitted by policy: ${noDelegateAction}`;
      await audit(ctx, signedIn, {
        type: 'authorization.consent',
        decision: 'refused',
        user,
        policy_ids: decision.reasons,
        policy_digest: policy.digest,
        reason: `access_denied: ${description}`,
      });
      return redirectWith(
        pending.redirectUri,
        { error: 'access_denied', error_description: description, state: pending.state },
        ctx.issuer,
      );
    }
  }
  const agent = pending.agent === null ? undefined : registry.agents.get(pending.agent);
  const csrf = csrfFor(browser);
  return {
    kind: 'consent',
    sealed: await seal(ctx, signedIn, csrf),
    csrf,
    redirectUri: pending.redirectUri,
    view: {
      user,
      clientName,
      clientId: pending.clientId,
      // A name the client gave itself (a metadata document, or a dynamic registration) is marked as such.
      ...(pending.document !== undefined
        ? { unverified: { logoUri: pending.document.logoUri } }
        : client?.registeredAt !== undefined
          ? { unverified: { logoUri: null } }
          : {}),
      agent: agent === undefined ? null : { id: agent.id, name: agent.name },
      scope: pending.scope,
      details: pending.authorizationDetails.map((d) => describeDetail(ctx.detailTypes, d, browser.language)),
    },
  };
}

/**
 * `POST /oauth2/authorize/consent`: the user's choice is audited; approval sends a code bound to
 * everything asked. A consent request is answered once: a second submission (a replayed form, a
 * second tab, the back button) is refused, on every instance.
 */
export async function submitConsent(
  ctx: ServiceContext,
  form: Readonly<Record<string, string>>,
  cookieCsrf: string | undefined,
): Promise<FlowStep> {
  const opened = await unseal(ctx, form.request, form.csrf_token, cookieCsrf);
  if (opened.status !== 'ok') return unusable(opened.status);
  const { pending } = opened;
  if (pending.user === null) return unusable('forged');
  const first = await ctx.store.consumeAssertion({
    tenant: pending.tenant,
    issuer: consentUse(ctx.issuer),
    jti: opened.jti,
    expiresAt: new Date(opened.exp * 1000),
  });
  if (!first) {
    await audit(ctx, pending, {
      type: 'authorization.consent',
      decision: 'refused',
      user: pending.user,
      reason: 'the consent form was already answered (replayed)',
    });
    return { kind: 'error-page', status: 400, message: messages.answered, audited: true };
  }
  if (form.decision !== 'approve') {
    await audit(ctx, pending, {
      type: 'authorization.consent',
      decision: 'refused',
      user: pending.user,
      reason: 'access_denied: the user declined',
    });
    return redirectWith(
      pending.redirectUri,
      { error: 'access_denied', error_description: 'the user declined', state: pending.state },
      ctx.issuer,
    );
  }
  const refused = pendingStandingProblem(ctx, ctx.registry(), pending, pending.user);
  if (refused !== undefined) {
    await audit(ctx, pending, {
      type: 'authorization.consent',
      decision: 'refused',
      user: pending.user,
      reason: `access_denied: ${refused}`,
    });
    return redirectWith(
      pending.redirectUri,
      { error: 'access_denied', error_description: refused, state: pending.state },
      ctx.issuer,
    );
  }
  const code = secret();
  const grantId = randomId();
  await ctx.grants.saveCode(
    sha256Base64url(ctx.sha256, code),
    pending.tenant,
    grantId,
    {
      clientId: pending.clientId,
      user: pending.user,
      agent: pending.agent,
      scope: pending.scope,
      audience: pending.audience,
      authorizationDetails: pending.authorizationDetails,
      redirectUri: pending.redirectUri,
      codeChallenge: pending.codeChallenge,
    },
    new Date(ctx.clock.now() + ctx.limits.codeLifetimeSeconds * 1000),
  );
  await audit(ctx, pending, {
    type: 'authorization.consent',
    decision: 'granted',
    user: pending.user,
    root_grant: grantId,
    reason: 'the user approved; code issued',
  });
  return redirectWith(pending.redirectUri, { code, state: pending.state }, ctx.issuer);
}
