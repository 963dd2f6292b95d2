import { Hono, type Context } from 'hono';
import { evaluateBatch, evaluate, evaluationSchema, evaluationsSchema, parseAuthzen } from '../core/decisions/authzen.js';
import { authenticateResourceServer, authenticateWithScope, operatorScopes } from '../core/clients/callers.js';
import { actionIdRule, actionIdSyntax, decide, parseAuthorizeRequest } from '../core/decisions/authorize.js';
import { introspection, killSwitch, revokeToken } from '../core/revocation/revoke.js';
import { OAuthError, StorageUnavailableError, echo, invalidRequest } from '../core/errors.js';
import { signedAt, verifyAgainstCheckpoints, verifyCheckpoint, type CheckpointWitness } from '../core/audit/checkpoint.js';
import { activeTraceId, inSpan } from '../core/telemetry.js';
import { authorizationServerMetadata, supportedScopes } from '../core/metadata.js';
import type { Caller, Registry } from '../core/registry/registry.js';
import type { Refusal, RefusalTally } from '../core/audit/refusal-tally.js';
import type { Logger } from '../core/ports.js';
import { repeatableParameters } from '../core/grants/token-request.js';
import { handleTokenRequest } from '../core/grants/token-endpoint.js';
import { startAuthorization, submitConsent, submitLogin, type BrowserContext, type FlowStep } from '../core/code-flow/steps.js';
import { getCookie, setCookie } from 'hono/cookie';
import { languageDetector } from 'hono/language';
import { consentPage, errorPage, loginPage, returnPage } from './pages.js';
import { pageLanguage, pageLanguages } from './page-text.js';
import { parseForm } from './form.js';
import { readJsonBody } from './json-body.js';
import { fetchBodyReader, type BodyReader } from './body.js';
import { callerChallenge, clientChallenge, noStore, oauthErrorResponse } from './oauth-errors.js';
import { type AuditQueries } from '../core/ports.js';
import { type ServiceContext } from '../core/context.js';

export interface AppDeps {
  readonly service: ServiceContext;
  readonly logger: Logger;
  readonly maxBodyBytes: number;
  /** Resolves when the database answers; rejects otherwise. */
  readonly checkReady: () => Promise<void>;
  /** Re-read and swap in the policy set or the registry; reject (keeping the old one) when invalid, once the refusal is audited. `by` names who asked. */
  readonly reload: { readonly policies: (by: string) => Promise<readonly string[]>; readonly registry: (by: string) => Promise<void> };
  readonly auditQueries: AuditQueries;
  /** The audit keys and the checkpoints known outside the database; none where no audit key is configured. */
  readonly checkpoints?: CheckpointWitness;
  /** How request bodies are read (default: the Fetch API stream); the Node entry reads Node's own request. */
  readonly readBody?: BodyReader;
  /** Prometheus exposition of the process's metrics. */
  readonly metricsText: () => Promise<{ contentType: string; body: string }>;
  /** Bounds the audit entries of refusals that have none of their own; kept by the caller, so it outlives a Workers request. */
  readonly refusals: RefusalTally;
  /** The remote address of a request, when the runtime knows it (the source of an unauthenticated refusal). */
  readonly remoteAddress?: (c: Context) => string | undefined;
}

/**
 * The CSP source that lets a form end in a redirect to `redirectUri`: its origin. Browsers apply
 * `form-action` to the redirect that follows a form submission, and match only scheme, host and
 * port after a redirect, so the origin is as narrow as the directive can be. A private-use scheme
 * (`com.example.app:/cb`, RFC 8252 §7.1) has no origin; its scheme is the source. CSP has no
 * syntax for an IPv6 literal (`http://[::1]:8080`): undefined, and the form ends in a page that
 * sends the browser on instead (see `render`).
 */
export function formActionSource(redirectUri: string): string | undefined {
  const url = new URL(redirectUri);
  if (url.hostname.startsWith('[')) return undefined;
  if (url.origin !== 'null') return url.origin;
  return url.protocol;
}

/** Headers of every browser page: never framed, cached or sniffed, no referrer, forms only to Baton and `formTarget`. */
function pageHeaders(formTarget?: string): Record<string, string> {
  const source = formTarget === undefined ? undefined : formActionSource(formTarget);
  const formAction = source === undefined ? "'self'" : `'self' ${source}`;
  return {
    ...noStore,
    'Content-Security-Policy': `default-src 'none'; style-src 'unsafe-inline'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
  };
}

/** The caller's X-Request-ID when it is a plausible identifier (1–128 visible ASCII); never anything longer. */
function requestIdOf(c: Context): string | null {
  const value = c.req.header('x-request-id');
  return value !== undefined && /^[\x21-\x7E]{1,128}$/.test(value) ? value : null;
}

type Env = { Variables: { refusal: { error: string; detail: string | undefined }; who: { tenant?: string; client?: string; actor?: string }; language: string } };

/** A method as a refusal's route names it: a caller's own spelling never becomes a key of the tally. */
const knownMethod = (method: string): string => (/^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$/.test(method) ? method : 'other method');

/** Builds the Baton HTTP application from its dependencies; no globals, no runtime APIs. */
export function createApp(deps: AppDeps): Hono<Env> {
  const { service, logger } = deps;
  const app = new Hono<Env>();
  // Metadata follows the registry (its scopes), so it is built once per registry that is loaded.
  const metadataByRegistry = new WeakMap<Registry, ReturnType<typeof authorizationServerMetadata>>();
  const metadata = (registry: Registry) => {
    let built = metadataByRegistry.get(registry);
    if (built === undefined) {
      built = authorizationServerMetadata(service.issuer, [service.keys.current.alg], [...service.detailTypes.keys()], supportedScopes(registry));
      metadataByRegistry.set(registry, built);
    }
    return built;
  };
  const base = service.issuer;
  const authzenMetadata = {
    policy_decision_point: base,
    access_evaluation_endpoint: `${base}/access/v1/evaluation`,
    access_evaluations_endpoint: `${base}/access/v1/evaluations`,
  };
  const readBody = deps.readBody ?? fetchBodyReader;
  /** The request body as text, refused with 413 beyond the configured size. */
  const bodyText = (c: Context<Env>): Promise<string> => readBody(c, deps.maxBodyBytes);
  /** Notes who a request turned out to come from (for its log line and for the refusal tally). */
  const known = (c: Context<Env>, caller: Caller): Caller => {
    c.set('who', { tenant: caller.tenant, client: caller.id });
    return caller;
  };
  /**
   * Answers a refusal. One that has no audit entry of its own (refused before the endpoint's
   * logic: content type, form, body size, credentials…) is audited through the tally, which
   * bounds how many entries a flood from one source can write (see RefusalTally).
   */
  /** Counts a refusal in the tally, by who sent it as far as it is known, and writes the entries it says to write now. */
  const tally = async (c: Context<Env>, refusal: Pick<Refusal, 'status' | 'code' | 'description' | 'detail'>): Promise<void> => {
    const who = (c.get('who') as Env['Variables']['who'] | undefined) ?? {};
    const address = deps.remoteAddress?.(c);
    const written = deps.refusals.note({
      source: who.client !== undefined ? `client ${who.client}` : address !== undefined ? `address ${address}` : 'unknown',
      tenant: who.tenant ?? 'unknown',
      client: who.client ?? null,
      route: `${knownMethod(c.req.method)} ${c.req.routePath}`,
      ...refusal,
      requestId: requestIdOf(c),
    });
    await Promise.all(written.map((event) => service.audit.append(event)));
  };
  const refuse = async (c: Context<Env>, error: unknown, challenge: string = clientChallenge): Promise<Response> => {
    if (error instanceof OAuthError && !error.audited && error.status < 500) {
      try {
        await tally(c, { status: error.status, code: error.code, description: error.description, detail: error.detail });
      } catch (failure) {
        return oauthErrorResponse(c, failure, logger, challenge);
      }
    }
    return oauthErrorResponse(c, error, logger, challenge);
  };

  /** Runs a JSON API handler; errors become JSON with the caller challenge on 401. */
  const api = (handler: (c: Context<Env>) => Promise<Response>) => async (c: Context<Env>) => {
    try {
      return await handler(c);
    } catch (error) {
      return refuse(c, error, callerChallenge);
    }
  };
  /** Parses a form body, refusing other content types and repeated parameters (but the `repeatable` ones). */
  const formOf = async (c: Context<Env>, repeatable: ReadonlySet<string> = new Set()) => {
    const type = c.req.header('content-type') ?? '';
    if (!/^application\/x-www-form-urlencoded(;|$)/i.test(type.trim())) throw invalidRequest('content type must be application/x-www-form-urlencoded');
    return parseForm(await bodyText(c), repeatable);
  };

  app.use(async (c, next) => {
    const started = performance.now();
    // Set before the answer is made, so it is part of the answer's own headers (set afterwards,
    // the Node adapter would have to rebuild every answer as a full Response).
    c.header('X-Content-Type-Options', 'nosniff');
    await inSpan('baton.request', { 'http.request.method': c.req.method }, async (span) => {
      await next();
      const route = c.req.routePath;
      const seconds = (performance.now() - started) / 1000;
      span.setAttributes({ 'http.route': route, 'http.response.status_code': c.res.status });
      service.metrics.request(route, c.req.method, c.res.status, seconds);
      const requestId = requestIdOf(c);
      if (requestId !== null) c.header('X-Request-ID', requestId);
      const refusal = c.get('refusal');
      logger.info('request', {
        trace_id: activeTraceId(),
        request_id: requestId,
        method: c.req.method,
        route,
        status: c.res.status,
        duration_ms: Math.round(seconds * 100_000) / 100,
        ...c.get('who'),
        ...(refusal === undefined ? {} : { error: refusal.error, detail: refusal.detail }),
      });
    });
  });

  app.get('/.well-known/oauth-authorization-server', (c) => c.json(metadata(service.registry()), 200, { 'Cache-Control': 'public, max-age=300' }));
  app.get('/.well-known/jwks.json', (c) => c.json(service.keys.publicJwks, 200, { 'Cache-Control': 'public, max-age=300' }));
  app.get('/.well-known/authzen-configuration', (c) => c.json(authzenMetadata, 200, { 'Cache-Control': 'public, max-age=300' }));

  app.post('/oauth2/token', async (c) => {
    try {
      const params = await formOf(c, repeatableParameters);
      const response = await handleTokenRequest(service, { params, authorization: c.req.header('authorization'), requestId: requestIdOf(c), observe: (who) => c.set('who', who) });
      return c.json(response, 200, noStore);
    } catch (error) {
      return refuse(c, error);
    }
  });
  app.post('/oauth2/revoke', async (c) => {
    try {
      await revokeToken(service, await formOf(c), c.req.header('authorization'), requestIdOf(c), (caller) => known(c, caller));
      return c.body(null, 200, noStore);
    } catch (error) {
      return refuse(c, error);
    }
  });
  app.post(
    '/oauth2/introspect',
    api(async (c) => c.json(await introspection(service, c.req.header('authorization'), () => formOf(c), requestIdOf(c), (caller) => known(c, caller)), 200, noStore)),
  );
  app.post(
    '/admin/revoke',
    api(async (c) => {
      const caller = known(c, (await authenticateWithScope(service, service.registry(), c.req.header('authorization'), operatorScopes.admin)).caller);
      return c.json(await killSwitch(service, caller, readJsonBody(c, await bodyText(c)), requestIdOf(c)), 200, noStore);
    }),
  );
  // The browser side of the on-behalf-of code flow. Pages are never framed or cached; the CSRF
  // token is in a SameSite=Strict cookie and in the form, and both must match the signed request.
  // Pages speak the browser's language (Accept-Language) when Baton has it.
  const detectLanguage = languageDetector({ order: ['header'], caches: false, supportedLanguages: [...pageLanguages], fallbackLanguage: 'en' });
  app.use('/oauth2/authorize', detectLanguage);
  app.use('/oauth2/authorize/*', detectLanguage);
  const browserOf = (c: Context<Env>): BrowserContext => ({ language: pageLanguage(c.get('language')), address: deps.remoteAddress?.(c), csrf: getCookie(c, 'baton_csrf') });
  /**
   * A refused page without an entry of its own (an unknown client, a form that cannot be used) is
   * audited through the tally, like refusals before an endpoint's logic; an unavailable store is not a refusal.
   */
  const tallied = async (c: Context<Env>, step: Extract<FlowStep, { kind: 'error-page' }>): Promise<void> => {
    if (step.audited === true || step.status >= 500) return;
    await tally(c, { status: step.status, code: step.status === 403 ? 'access_denied' : 'invalid_request', description: step.message.text, detail: undefined });
  };

  const render = (c: Context<Env>, step: FlowStep): Response | Promise<Response> => {
    const language = pageLanguage(c.get('language'));
    c.header('Content-Language', language);
    c.header('Vary', 'Accept-Language');
    switch (step.kind) {
      case 'error-page':
        return tallied(c, step).then(() => c.html(errorPage(language, step.message), step.status as 400, pageHeaders()));
      case 'redirect':
        // A form cannot be allowed to end at a target CSP cannot name: the answer to the form is
        // a page that sends the browser on, which form-action does not govern.
        if (c.req.method === 'POST' && formActionSource(step.location) === undefined) {
          return c.html(returnPage(language, step.location), 200, { ...pageHeaders(), Refresh: `0; url=${step.location}` });
        }
        // The redirect may carry a code: never cached, and no referrer beyond it.
        return c.body(null, 302, { ...noStore, Location: step.location, 'Referrer-Policy': 'no-referrer' });
      case 'login':
      case 'consent':
        setCookie(c, 'baton_csrf', step.csrf, { path: '/oauth2/authorize', httpOnly: true, sameSite: 'Strict', secure: service.issuer.startsWith('https:') });
        return c.html(step.kind === 'login' ? loginPage(language, step.clientName, step.sealed, step.csrf, step.fields, step.error) : consentPage(language, step.view, step.sealed, step.csrf), 200, pageHeaders(step.redirectUri));
    }
  };
  /** Runs a step of the flow; a store that cannot answer gets a page saying so (503), not JSON. */
  const browserStep = async (c: Context<Env>, step: () => Promise<FlowStep>): Promise<Response> => {
    try {
      return await render(c, await step());
    } catch (error) {
      if (!(error instanceof StorageUnavailableError)) throw error;
      logger.warn('sign-in page unavailable: storage did not answer', { detail: error.message });
      c.header('Retry-After', '1');
      return render(c, { kind: 'error-page', status: 503, message: { text: 'The service is unavailable right now. Try again in a moment.' } });
    }
  };
  const unreadable: FlowStep = { kind: 'error-page', status: 400, message: { text: 'The form could not be read.' } };
  app.get('/oauth2/authorize', async (c) => {
    let query;
    try {
      query = parseForm(new URL(c.req.url).search.slice(1), new Set(['resource']));
    } catch (error) {
      const message = { text: error instanceof OAuthError ? error.description : 'The request could not be read.' };
      return browserStep(c, async () => ({ kind: 'error-page', status: 400, message }));
    }
    return browserStep(c, () => startAuthorization(service, query, browserOf(c)));
  });
  const browserForm = async (c: Context<Env>): Promise<Record<string, string> | undefined> => {
    try {
      const form = await formOf(c);
      return Object.fromEntries(Object.entries(form).map(([k, v]) => [k, Array.isArray(v) ? (v[0] ?? '') : v]));
    } catch {
      return undefined;
    }
  };
  app.post('/oauth2/authorize/login', async (c) => {
    const form = await browserForm(c);
    return browserStep(c, async () => (form === undefined ? unreadable : submitLogin(service, form, getCookie(c, 'baton_csrf'), browserOf(c))));
  });
  app.post('/oauth2/authorize/consent', async (c) => {
    const form = await browserForm(c);
    return browserStep(c, async () => (form === undefined ? unreadable : submitConsent(service, form, getCookie(c, 'baton_csrf'))));
  });

  app.all('/oauth2/token', async (c) => {
    const refused = await refuse(c, new OAuthError('invalid_request', 'use POST', { status: 405 }));
    refused.headers.set('Allow', 'POST');
    return refused;
  });

  app.post(
    '/authorize',
    api(async (c) => {
      const caller = known(c, await authenticateResourceServer(service, service.registry(), c.req.header('authorization')));
      const outcome = await decide(service, caller, parseAuthorizeRequest(readJsonBody(c, await bodyText(c))), requestIdOf(c));
      if (outcome.detail !== undefined) c.set('refusal', { error: outcome.decision, detail: outcome.detail });
      return c.json({ decision: outcome.decision, action_id: outcome.action_id, reasons: outcome.reasons }, 200, noStore);
    }),
  );

  app.post(
    '/access/v1/evaluation',
    api(async (c) => {
      const caller = known(c, await authenticateResourceServer(service, service.registry(), c.req.header('authorization')));
      return c.json(await evaluate(service, caller, parseAuthzen(evaluationSchema, readJsonBody(c, await bodyText(c))), requestIdOf(c)), 200, noStore);
    }),
  );
  app.post(
    '/access/v1/evaluations',
    api(async (c) => {
      const caller = known(c, await authenticateResourceServer(service, service.registry(), c.req.header('authorization')));
      return c.json(await evaluateBatch(service, caller, parseAuthzen(evaluationsSchema, readJsonBody(c, await bodyText(c))), requestIdOf(c)), 200, noStore);
    }),
  );

  app.post(
    '/admin/policies/reload',
    api(async (c) => {
      const caller = known(c, (await authenticateWithScope(service, service.registry(), c.req.header('authorization'), operatorScopes.admin)).caller);
      try {
        return c.json({ status: 'reloaded', policies: await deps.reload.policies(caller.id) }, 200, noStore);
      } catch (error) {
        // The reload audits its own refusal (policy.reload, refused).
        throw invalidRequest(`the new policy set was refused; the running set stays: ${error instanceof Error ? error.message : String(error)}`).markAudited();
      }
    }),
  );
  app.post(
    '/admin/registry/reload',
    api(async (c) => {
      const caller = known(c, (await authenticateWithScope(service, service.registry(), c.req.header('authorization'), operatorScopes.admin)).caller);
      try {
        await deps.reload.registry(caller.id);
        return c.json({ status: 'reloaded' }, 200, noStore);
      } catch (error) {
        // The reload audits its own refusal (registry.reload, refused).
        throw invalidRequest(`the new registry was refused; the running one stays: ${error instanceof Error ? error.message : String(error)}`).markAudited();
      }
    }),
  );

  const auditor = async (c: Context<Env>) => known(c, (await authenticateWithScope(service, service.registry(), c.req.header('authorization'), operatorScopes.audit)).caller).tenant;
  /** A sequence-number query parameter, once at most; undefined when absent. */
  const seqParam = (c: Context<Env>, name: string): number | undefined => {
    const values = c.req.queries(name);
    if (values === undefined) return undefined;
    if (values.length > 1) throw invalidRequest(`${name} is repeated`);
    const [raw = ''] = values;
    if (!/^\d{1,15}$/.test(raw)) throw invalidRequest(`${name} must be a non-negative integer`);
    return Number(raw);
  };

  app.get(
    '/audit/actions/:actionId',
    api(async (c) => {
      const tenant = await auditor(c);
      const actionId = c.req.param('actionId') ?? '';
      // Every action id ever recorded has this syntax, so nothing else is looked up (a NUL, which
      // the database refuses, included).
      if (!actionIdSyntax.test(actionId)) throw invalidRequest(`action_id ${actionIdRule}`);
      const { entries, gaps } = await deps.auditQueries.actionTrail(tenant, actionId);
      if (entries.length === 0) {
        // With entries missing from the log, "no such action" cannot be said: it may have been
        // among them. The gaps are the shared chain's, the same for any action id asked about.
        const missing = await deps.auditQueries.gaps(100);
        if (missing.length === 0) return c.json({ error: 'not_found', error_description: 'no such action in your tenant' }, 404, noStore);
        const named = missing.map((g) => (g.from === g.to ? `${g.from}` : `${g.from}–${g.to}`)).join(', ');
        return c.json({ action_id: actionId, verified: false, reason: `no entry of this action remains in your tenant, and the log is missing entries ${named}: the chain is broken there, and the action may have been among them`, entries, gaps: missing }, 200, noStore);
      }
      const verified = gaps.length === 0 && entries.every((e) => e.verified);
      return c.json({ action_id: actionId, verified, entries, gaps }, 200, noStore);
    }),
  );
  app.get(
    '/audit/entries',
    api(async (c) => {
      const tenant = await auditor(c);
      const from = Math.max(1, seqParam(c, 'from') ?? 1);
      const limit = Math.min(10_000, Math.max(1, seqParam(c, 'limit') ?? 1000));
      const lines = await deps.auditQueries.exportLines(tenant, from, limit);
      const checkpoints = await deps.auditQueries.checkpointsFrom(from);
      const body = [...lines.map((l) => JSON.stringify(l)), ...checkpoints.map(({ jws }) => JSON.stringify({ checkpoint: jws }))].join('\n');
      return c.body(body === '' ? '' : `${body}\n`, 200, { ...noStore, 'Content-Type': 'application/x-ndjson' });
    }),
  );
  app.get(
    '/audit/verify',
    api(async (c) => {
      await auditor(c);
      const asked = { from: seqParam(c, 'from'), to: seqParam(c, 'to') };
      const head = await deps.auditQueries.head();
      // A range that names no entries is a mistake of the caller's, never a verdict on the log:
      // `valid: false` reads as tampering to whatever watches it.
      if (asked.from !== undefined && asked.to !== undefined && asked.from > asked.to) throw invalidRequest('from must not be greater than to');
      if (asked.from !== undefined && asked.from > head.seq) throw invalidRequest(`from is beyond the last entry (${head.seq})`);
      if (asked.to !== undefined && asked.to < 1) throw invalidRequest('to must be at least 1');
      const from = Math.max(1, asked.from ?? 1);
      const to = Math.min(head.seq, asked.to ?? head.seq);
      return c.json({ from, to, ...(await verifyAgainstCheckpoints(deps.auditQueries, deps.checkpoints, service.issuer, { from, to, head: head.seq })) }, 200, noStore);
    }),
  );
  app.get(
    '/audit/checkpoint',
    api(async (c) => {
      await auditor(c);
      const checkpoint = await deps.auditQueries.latestCheckpoint();
      if (checkpoint === undefined) return c.json({ error: 'not_found', error_description: 'no checkpoint has been signed yet' }, 404, noStore);
      // The time it was signed at is read from the signature; one that does not verify says so.
      const stated = deps.checkpoints === undefined ? undefined : await verifyCheckpoint(deps.checkpoints.resolve, checkpoint.jws, service.issuer).catch(() => undefined);
      return c.json({ ...checkpoint, signed_at: stated === undefined ? null : signedAt(stated), verified: stated !== undefined && stated.seq === checkpoint.seq && stated.hash === checkpoint.hash }, 200, noStore);
    }),
  );
  // The public half of the keys that sign checkpoints: open, like the token JWKS, so any witness can check them.
  app.get('/audit/keys', (c) =>
    deps.checkpoints === undefined
      ? c.json({ error: 'not_found', error_description: 'no audit key is configured on this deployment' }, 404, noStore)
      : c.json(deps.checkpoints.publicJwks, 200, { 'Cache-Control': 'public, max-age=300' }),
  );

  app.get(
    '/metrics',
    api(async (c) => {
      known(c, (await authenticateWithScope(service, service.registry(), c.req.header('authorization'), operatorScopes.metrics)).caller);
      const { contentType, body } = await deps.metricsText();
      return c.body(body, 200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
    }),
  );

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    try {
      await deps.checkReady();
      return c.json({ status: 'ready' });
    } catch {
      return c.json({ status: 'unavailable' }, 503);
    }
  });

  app.notFound((c) => c.json({ error: 'not_found', error_description: `no route for ${echo(c.req.method, 16)} ${echo(c.req.path, 120)}` }, 404));
  app.onError((error, c) => oauthErrorResponse(c, error, logger));
  return app;
}
