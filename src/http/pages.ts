import type { ConsentView } from '../core/code-flow.js';
import type { LoginField } from '../core/authenticator.js';

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Baton</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 34rem; margin: 3rem auto; padding: 0 1rem; color: #1b1b1b; }
  label { display: block; margin-top: 1rem; font-weight: 600; }
  input { font: inherit; padding: .4rem; width: 100%; box-sizing: border-box; }
  button { font: inherit; margin: 1.2rem .6rem 0 0; padding: .5rem 1.2rem; }
  .error { color: #a40000; border-left: 4px solid #a40000; padding-left: .6rem; }
  code { background: #f2f2f2; padding: 0 .2rem; }
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}

/** The error page for requests that must not be redirected (unknown client or redirect URI). */
export function errorPage(message: string): string {
  return page('Cannot continue', `<h1>Cannot continue</h1>\n<p role="alert">${escapeHtml(message)}</p>`);
}

/** The sign-in form. */
export function loginPage(clientName: string, sealed: string, csrf: string, fields: readonly LoginField[], error?: string): string {
  const inputs = fields
    .map((f) => `<label for="${escapeHtml(f.name)}">${escapeHtml(f.label)}</label>\n<input id="${escapeHtml(f.name)}" name="${escapeHtml(f.name)}" type="${f.type}" autocomplete="${escapeHtml(f.autocomplete)}" required>`)
    .join('\n');
  return page(
    'Sign in',
    `<h1>Sign in</h1>
<p><strong>${escapeHtml(clientName)}</strong> asks you to sign in.</p>
${error === undefined ? '' : `<p class="error" role="alert">${escapeHtml(error)}</p>`}
<form method="post" action="/oauth2/authorize/login">
<input type="hidden" name="request" value="${escapeHtml(sealed)}">
<input type="hidden" name="csrf_token" value="${escapeHtml(csrf)}">
${inputs}
<button type="submit">Sign in</button>
</form>`,
  );
}

/** The consent page: who asks, for which agent, and each scope and detail in plain words. */
export function consentPage(view: ConsentView, sealed: string, csrf: string): string {
  const agent = view.agent === null ? '' : `<p>It wants to let the agent <strong>${escapeHtml(view.agent.name)}</strong> (<code>${escapeHtml(view.agent.id)}</code>) act for you.</p>`;
  const items = [...view.scope.map((s) => `<li>use the permission <code>${escapeHtml(s)}</code></li>`), ...view.details.map((d) => `<li>${escapeHtml(d)}</li>`)].join('\n');
  return page(
    'Allow access',
    `<h1>Allow access?</h1>
<p>Signed in as <strong>${escapeHtml(view.user)}</strong>.</p>
<p><strong>${escapeHtml(view.clientName)}</strong> (<code>${escapeHtml(view.clientId)}</code>) asks for access.</p>
${agent}
<h2>It will be able to</h2>
<ul>
${items}
</ul>
<form method="post" action="/oauth2/authorize/consent">
<input type="hidden" name="request" value="${escapeHtml(sealed)}">
<input type="hidden" name="csrf_token" value="${escapeHtml(csrf)}">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`,
  );
}
