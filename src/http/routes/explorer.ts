import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { html } from 'hono/html';
import { chainView } from '../../core/audit/chain-view.js';
import {
  explorerCookie,
  explorerCsrfCookie,
  explorerSessionSeconds,
  openSession,
  sessionCaller,
  signInAuditor,
  type ExplorerSession,
} from '../../core/audit/explorer-session.js';
import { parseAuditFilter } from '../../core/audit/search.js';
import { actionIdRule, actionIdSyntax } from '../../core/decisions/authorize.js';
import { invalidRequest, OAuthError } from '../../core/errors.js';
import { killSwitch } from '../../core/revocation/revoke.js';
import { secret } from '../../core/secrets.js';
import type { AppDeps } from '../app-deps.js';
import { explorerCss, explorerJs } from '../explorer/assets.js';
import { noStore } from '../oauth-errors.js';
import type { Page } from '../pages.js';
import { tally } from '../refusals.js';
import { errorsAs, formOf, jsonOf, known, requestIdOf, type Env } from '../request.js';
import { requireAuditor } from './audit.js';

/** The explorer's Content-Security-Policy: its own script and style only, nothing inline, never framed. */
export const explorerCsp =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const pageHeaders = {
  ...noStore,
  'Content-Security-Policy': explorerCsp,
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

function shell(title: string, body: Page, data: Record<string, string> = {}): Page {
  const attributes = Object.entries(data).map(([k, v]) => html` data-${k}="${v}"`);
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Baton</title>
<link rel="stylesheet" href="/audit/assets/explorer.css">
</head>
<body${attributes}>
<a class="skip" href="#main">Skip to content</a>
${body}
</body>
</html>`;
}

function signInPage(csrf: string, error?: string, tenant = '', username = ''): Page {
  return shell(
    'Audit explorer: sign in',
    html`<header><p class="brand">Baton audit explorer</p></header>
<main id="main" class="narrow">
<h1>Sign in to the audit explorer</h1>
<p>For users of a tenant who hold the auditor role.</p>
${error === undefined ? '' : html`<p class="error" role="alert">${error}</p>`}
<form method="post" action="/audit/sign-in">
<input type="hidden" name="csrf_token" value="${csrf}">
<label for="tenant">Tenant</label>
<input id="tenant" name="tenant" type="text" autocomplete="organization" required value="${tenant}" autofocus>
<label for="username">User name</label>
<input id="username" name="username" type="text" autocomplete="username" required value="${username}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main>`,
  );
}

function explorerPage(session: ExplorerSession): Page {
  const operator = session.roles.includes('operator');
  return shell(
    'Audit explorer',
    html`<header>
<p class="brand">Baton audit explorer</p>
<p>Signed in as <strong>${session.sub}</strong>, auditor of tenant <strong>${session.tenant}</strong>${operator ? ' (operator)' : ''}.</p>
<form method="post" action="/audit/sign-out" class="inline">
<input type="hidden" name="csrf_token" value="${session.csrf}">
<button type="submit">Sign out</button>
</form>
<nav aria-label="Explorer"><ul>
<li><a href="#search">Search</a></li>
<li><a href="#log">Log state</a></li>
</ul></nav>
</header>
<main id="main">
<div id="status" role="status" aria-live="polite" class="status"></div>
<h1>Audit log of ${session.tenant}</h1>
<section id="search" aria-labelledby="search-heading">
<h2 id="search-heading">Search entries</h2>
<form id="search-form" novalidate>
<div class="fields">
<div><label for="f-action">Action ID</label><input id="f-action" name="action_id" type="text" maxlength="128"></div>
<div><label for="f-user">User</label><input id="f-user" name="user" type="text" maxlength="256"></div>
<div><label for="f-agent">Agent</label><input id="f-agent" name="agent" type="text" maxlength="256"></div>
<div><label for="f-client">Client</label><input id="f-client" name="client" type="text" maxlength="256"></div>
<div><label for="f-decision">Decision</label><select id="f-decision" name="decision">
<option value="">any</option><option>granted</option><option>refused</option><option>allow</option><option>deny</option><option>applied</option>
</select></div>
<div><label for="f-type">Entry type</label><select id="f-type" name="type">
<option value="">any</option><option>token.exchange</option><option>token.client_credentials</option><option>token.refresh</option><option>token.revocation</option><option>decision</option><option>authorization.login</option><option>authorization.consent</option><option>authzen.evaluation</option><option>request.refusal</option><option>registry.change</option><option>registry.suspend</option><option>policy.reload</option>
</select></div>
<div><label for="f-since">From (local time)</label><input id="f-since" name="since" type="datetime-local" step="1"></div>
<div><label for="f-until">Until (local time)</label><input id="f-until" name="until" type="datetime-local" step="1"></div>
</div>
<button type="submit">Search</button>
<label class="check"><input id="live" type="checkbox" checked> Show new entries as they arrive</label>
</form>
<p><a id="export" href="/audit/entries">Export this selection as JSON lines</a> (verifiable with <code>baton audit verify</code>; entries outside the selection are given as hashes only).</p>
<div id="results" aria-live="off"></div>
<button id="older" type="button" hidden>Older entries</button>
</section>
<section id="action" aria-labelledby="action-heading" hidden>
<h2 id="action-heading" tabindex="-1">Action</h2>
<div id="action-body"></div>
${operator ? html`<p><button id="revoke" type="button" class="danger">Revoke everything this action reached</button></p><p id="revoke-result"></p>` : ''}
<p><a href="#search" id="back">Back to the search</a></p>
</section>
<section id="log" aria-labelledby="log-heading">
<h2 id="log-heading">Log state</h2>
<div id="log-body"><p>Loading…</p></div>
<button id="verify" type="button">Verify the whole log now</button>
</section>
</main>
<script src="/audit/assets/explorer.js"></script>`,
    { csrf: session.csrf, tenant: session.tenant, user: session.sub, operator: operator ? 'yes' : 'no' },
  );
}

/** The browser's sign-in CSRF token when it has a well-formed one, else a fresh one. */
const csrfOf = (c: Context<Env>): string => {
  const held = getCookie(c, explorerCsrfCookie);
  return held !== undefined && /^[A-Za-z0-9_-]{44}$/.test(held) ? held : secret();
};

/**
 * The audit explorer (`/audit/`): a page for a tenant's auditors, signed in through the same
 * authenticator and throttle as the code flow's sign-in; its session is a sealed cookie sent only
 * to /audit, which the audit API accepts as it accepts an audit token (see requireAuditor).
 */
export function explorerRoutes(deps: AppDeps): Hono<Env> {
  const { service } = deps;
  const routes = new Hono<Env>();
  const api = errorsAs('api');
  const auditor = requireAuditor();
  const secure = service.issuer.startsWith('https:');

  const showSignIn = (c: Context<Env>, status: 200 | 400 | 403 | 429, error?: string, tenant = '', user = '') => {
    const csrf = csrfOf(c);
    setCookie(c, explorerCsrfCookie, csrf, { path: '/audit', httpOnly: true, sameSite: 'Strict', secure });
    return c.html(signInPage(csrf, error, tenant, user), status, pageHeaders);
  };

  routes.get('/audit', (c) => c.redirect('/audit/', 301));
  routes.get('/audit/', async (c) => {
    const session = await openSession(service, getCookie(c, explorerCookie));
    if (session === undefined) return showSignIn(c, 200);
    return c.html(explorerPage(session), 200, pageHeaders);
  });
  routes.get('/audit/assets/explorer.js', (c) =>
    c.body(explorerJs, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache' }),
  );
  routes.get('/audit/assets/explorer.css', (c) =>
    c.body(explorerCss, 200, { 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'no-cache' }),
  );

  routes.post('/audit/sign-in', async (c) => {
    let form: Record<string, string>;
    try {
      const read = await formOf(c, deps);
      form = Object.fromEntries(Object.entries(read).map(([k, v]) => [k, Array.isArray(v) ? (v[0] ?? '') : v]));
    } catch {
      return showSignIn(c, 400, 'The form could not be read.');
    }
    const cookie = getCookie(c, explorerCsrfCookie);
    if (cookie === undefined || form.csrf_token !== cookie) {
      await tally(c, deps, {
        status: 403,
        code: 'access_denied',
        description: 'audit explorer sign-in form not sent from this site',
        detail: undefined,
      });
      return showSignIn(c, 403, 'This form has expired or was not sent from this site. Try again.');
    }
    const result = await signInAuditor(c.get('service'), form, deps.remoteAddress?.(c));
    if (result.kind === 'refused') {
      if (!result.audited)
        await tally(c, deps, {
          status: 400,
          code: 'access_denied',
          description: 'audit explorer sign-in: no such tenant',
          detail: undefined,
        });
      return showSignIn(c, 400, result.message, form.tenant ?? '', form.username ?? '');
    }
    setCookie(c, explorerCookie, result.sealed, {
      path: '/audit',
      httpOnly: true,
      sameSite: 'Strict',
      secure,
      maxAge: explorerSessionSeconds,
    });
    deleteCookie(c, explorerCsrfCookie, { path: '/audit', secure });
    return c.body(null, 303, { ...noStore, Location: '/audit/' });
  });

  routes.post('/audit/sign-out', async (c) => {
    const session = await openSession(service, getCookie(c, explorerCookie));
    let token: string | undefined;
    try {
      const form = await formOf(c, deps);
      token = typeof form.csrf_token === 'string' ? form.csrf_token : undefined;
    } catch {
      token = undefined;
    }
    // Signing out someone else's session by a forged form is refused as any forged form is.
    if (session !== undefined && token !== session.csrf)
      return c.html(
        shell(
          'Audit explorer',
          html`<main id="main" class="narrow"><h1>Cannot sign out</h1><p role="alert">This form was not sent from this site.</p><p><a href="/audit/">Back to the explorer</a></p></main>`,
        ),
        403,
        pageHeaders,
      );
    deleteCookie(c, explorerCookie, { path: '/audit', secure });
    return c.body(null, 303, { ...noStore, Location: '/audit/' });
  });

  routes.get('/audit/search', api, auditor, async (c) => {
    const { tenant } = c.get('caller');
    const filter = parseAuditFilter((name) => c.req.queries(name));
    const seq = (name: string): number | undefined => {
      const values = c.req.queries(name);
      if (values === undefined) return undefined;
      if (values.length > 1) throw invalidRequest(`${name} is repeated`);
      const [raw = ''] = values;
      if (!/^\d{1,15}$/.test(raw)) throw invalidRequest(`${name} must be a non-negative integer`);
      return Number(raw);
    };
    const before = seq('before');
    const after = seq('after');
    const limit = seq('limit') ?? 50;
    if (limit < 1 || limit > 200) throw invalidRequest('limit must be between 1 and 200');
    const found = await deps.auditQueries.search(tenant, {
      ...filter,
      ...(before === undefined ? {} : { before }),
      ...(after === undefined ? {} : { after }),
      limit,
    });
    return c.json(found, 200, noStore);
  });

  routes.get('/audit/trail/:actionId', api, auditor, async (c) => {
    const { tenant } = c.get('caller');
    const actionId = c.req.param('actionId') ?? '';
    if (!actionIdSyntax.test(actionId)) throw invalidRequest(`action_id ${actionIdRule}`);
    const { entries, gaps } = await deps.auditQueries.actionTrail(tenant, actionId);
    if (entries.length === 0)
      return c.json({ error: 'not_found', error_description: 'no such action in your tenant' }, 404, noStore);
    return c.json(
      {
        action_id: actionId,
        verified: gaps.length === 0 && entries.every((e) => e.verified),
        nodes: chainView(entries, actionId, service.detailTypes),
        entries,
        gaps,
      },
      200,
      noStore,
    );
  });

  // Revoke by action from the page: a session with the operator role, and its CSRF token in a
  // header (the cookie alone never acts). The same call as POST /admin/revoke {"action_id"}.
  routes.post('/audit/revoke', api, async (c) => {
    const session = await openSession(service, getCookie(c, explorerCookie));
    if (session === undefined)
      throw new OAuthError('invalid_token', 'sign in to the audit explorer first', { status: 401 });
    if (c.req.header('x-csrf-token') !== session.csrf)
      throw new OAuthError('access_denied', "the request does not carry this session's CSRF token", { status: 403 });
    if (!session.roles.includes('operator'))
      throw new OAuthError('insufficient_scope', 'revoking needs the operator role', { status: 403 });
    const caller = known(c, sessionCaller(session));
    return c.json(
      await killSwitch(c.get('service'), deps.auditQueries, caller, await jsonOf(c, deps), requestIdOf(c)),
      200,
      noStore,
    );
  });
  return routes;
}
