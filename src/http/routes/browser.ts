import { Hono, type Context } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { languageDetector } from 'hono/language';
import {
  startAuthorization,
  submitConsent,
  submitLogin,
  type BrowserContext,
  type FlowStep,
} from '../../core/code-flow/steps.js';
import { OAuthError, type StorageUnavailableError } from '../../core/errors.js';
import type { AppDeps } from '../app-deps.js';
import { parseForm } from '../form.js';
import { noStore } from '../oauth-errors.js';
import { pageLanguage, pageLanguages } from '../page-text.js';
import { consentPage, errorPage, loginPage, returnPage } from '../pages.js';
import { tally } from '../refusals.js';
import { errorsAs, formOf, type Env } from '../request.js';

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
function pageHeaders(formTarget?: string, image?: string): Record<string, string> {
  const source = formTarget === undefined ? undefined : formActionSource(formTarget);
  const formAction = source === undefined ? "'self'" : `'self' ${source}`;
  // A client metadata document's logo (https only, see steps.ts): exactly that image may load.
  const imgSrc =
    image === undefined ? '' : `; img-src ${new URL(image).href.replaceAll(';', '%3B').replaceAll(',', '%2C')}`;
  return {
    ...noStore,
    'Content-Security-Policy': `default-src 'none'; style-src 'unsafe-inline'${imgSrc}; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
  };
}

/**
 * A refused page without an entry of its own (an unknown client, a form that cannot be used) is
 * audited through the tally, like refusals before an endpoint's logic; an unavailable store is not a refusal.
 */
async function tallied(c: Context<Env>, deps: AppDeps, step: Extract<FlowStep, { kind: 'error-page' }>): Promise<void> {
  if (step.audited === true || step.status >= 500) return;
  await tally(c, deps, {
    status: step.status,
    code: step.status === 403 ? 'access_denied' : 'invalid_request',
    description: step.message.text,
    detail: undefined,
  });
}

/** Answers a step of the flow: a page in the browser's language, or the redirect back to the client. */
function render(c: Context<Env>, deps: AppDeps, step: FlowStep): Response | Promise<Response> {
  const language = pageLanguage(c.get('language'));
  c.header('Content-Language', language);
  c.header('Vary', 'Accept-Language');
  switch (step.kind) {
    case 'error-page':
      return tallied(c, deps, step).then(() =>
        c.html(errorPage(language, step.message), step.status as 400, pageHeaders()),
      );
    case 'redirect':
      // A form cannot be allowed to end at a target CSP cannot name: the answer to the form is
      // a page that sends the browser on, which form-action does not govern.
      if (c.req.method === 'POST' && formActionSource(step.location) === undefined) {
        return c.html(returnPage(language, step.location), 200, {
          ...pageHeaders(),
          Refresh: `0; url=${step.location}`,
        });
      }
      // The redirect may carry a code: never cached, and no referrer beyond it.
      return c.body(null, 302, { ...noStore, Location: step.location, 'Referrer-Policy': 'no-referrer' });
    case 'login':
    case 'consent':
      setCookie(c, 'baton_csrf', step.csrf, {
        path: '/oauth2/authorize',
        httpOnly: true,
        sameSite: 'Strict',
        secure: deps.service.issuer.startsWith('https:'),
      });
      return c.html(
        step.kind === 'login'
          ? loginPage(language, step.clientName, step.sealed, step.csrf, step.fields, step.error)
          : consentPage(language, step.view, step.sealed, step.csrf),
        200,
        pageHeaders(
          step.redirectUri,
          step.kind === 'consent' ? (step.view.unverified?.logoUri ?? undefined) : undefined,
        ),
      );
  }
}

/** The answer of a sign-in page whose store did not answer (see errors.ts): a page saying so (503), not JSON. */
export function unavailablePage(
  c: Context<Env>,
  error: StorageUnavailableError,
  deps: AppDeps,
): Response | Promise<Response> {
  deps.logger.warn('sign-in page unavailable: storage did not answer', { detail: error.message });
  c.header('Retry-After', '1');
  return render(c, deps, {
    kind: 'error-page',
    status: 503,
    message: { text: 'The service is unavailable right now. Try again in a moment.' },
  });
}

const unreadable: FlowStep = { kind: 'error-page', status: 400, message: { text: 'The form could not be read.' } };

/**
 * The browser side of the on-behalf-of code flow. Pages are never framed or cached; the CSRF
 * token is in a SameSite=Strict cookie and in the form, and both must match the signed request.
 * Pages speak the browser's language (Accept-Language) when Baton has it.
 */
export function browserRoutes(deps: AppDeps): Hono<Env> {
  const routes = new Hono<Env>();
  const page = errorsAs('page');
  const detectLanguage = languageDetector({
    order: ['header'],
    caches: false,
    supportedLanguages: [...pageLanguages],
    fallbackLanguage: 'en',
  });
  routes.use('/oauth2/authorize', detectLanguage);
  routes.use('/oauth2/authorize/*', detectLanguage);
  const browserOf = (c: Context<Env>): BrowserContext => ({
    language: pageLanguage(c.get('language')),
    address: deps.remoteAddress?.(c),
    csrf: getCookie(c, 'baton_csrf'),
  });
  /** The form of a page, or undefined when it cannot be read: whatever the reason, the browser gets the same page (see `unreadable`). */
  const browserForm = async (c: Context<Env>): Promise<Record<string, string> | undefined> => {
    try {
      const form = await formOf(c, deps);
      return Object.fromEntries(Object.entries(form).map(([k, v]) => [k, Array.isArray(v) ? (v[0] ?? '') : v]));
    } catch {
      return undefined;
    }
  };

  routes.get('/oauth2/authorize', page, async (c) => {
    let query;
    try {
      query = parseForm(new URL(c.req.url).search.slice(1), new Set(['resource']));
    } catch (error) {
      // A query that cannot be read is shown on a page, never sent back to a redirect URI.
      return render(c, deps, {
        kind: 'error-page',
        status: 400,
        message: { text: error instanceof OAuthError ? error.description : 'The request could not be read.' },
      });
    }
    return render(c, deps, await startAuthorization(c.get('service'), query, browserOf(c)));
  });
  routes.post('/oauth2/authorize/login', page, async (c) => {
    const form = await browserForm(c);
    return render(
      c,
      deps,
      form === undefined
        ? unreadable
        : await submitLogin(c.get('service'), form, getCookie(c, 'baton_csrf'), browserOf(c)),
    );
  });
  routes.post('/oauth2/authorize/consent', page, async (c) => {
    const form = await browserForm(c);
    return render(
      c,
      deps,
      form === undefined ? unreadable : await submitConsent(c.get('service'), form, getCookie(c, 'baton_csrf')),
    );
  });
  return routes;
}
