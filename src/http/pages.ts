import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { ConsentView, PageMessage } from '../core/code-flow/steps.js';
import type { LoginField } from '../core/ports.js';
import { translate, word, type PageLanguage } from './page-text.js';

/** A rendered page (hono's escaped HTML string: every interpolated value is escaped). */
export type Page = HtmlEscapedString | Promise<HtmlEscapedString>;

const strong = (value: string) => html`<strong>${value}</strong>`;
const code = (value: string) => html`<code>${value}</code>`;

function page(language: PageLanguage, title: string, body: Page): Page {
  return html`<!doctype html>
<html lang="${language}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${word(language, title)} · Baton</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 34rem; margin: 3rem auto; padding: 0 1rem; color: #1b1b1b; background: #fff; }
  h1 { font-size: 1.6rem; line-height: 1.25; }
  p, li { overflow-wrap: anywhere; }
  label { display: block; margin-top: 1rem; font-weight: 600; }
  input { font: inherit; padding: .5rem; width: 100%; box-sizing: border-box; border: 1px solid #595959; border-radius: 4px; }
  button { font: inherit; min-height: 2.75rem; margin: 1.2rem .6rem 0 0; padding: .5rem 1.2rem; border: 1px solid #1b1b1b; border-radius: 4px; background: #f2f2f2; color: #1b1b1b; cursor: pointer; }
  button[value="approve"], button[type="submit"]:only-of-type { background: #1a4d8f; border-color: #1a4d8f; color: #fff; }
  :focus-visible { outline: 3px solid #1a4d8f; outline-offset: 2px; }
  .error { color: #a40000; border-left: 4px solid #a40000; padding-left: .6rem; }
  code { background: #f2f2f2; padding: 0 .2rem; }
  @media (max-width: 30rem) {
    body { margin: 1.25rem auto; }
    button { display: block; width: 100%; margin-right: 0; }
  }
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}

/** The error page for requests that must not be redirected (unknown client or redirect URI, a form that cannot be used). */
export function errorPage(language: PageLanguage, message: PageMessage): Page {
  return page(
    language,
    'Cannot continue',
    html`<h1>${word(language, 'Cannot continue')}</h1>
<p role="alert">${translate(language, message, strong)}</p>`,
  );
}

/** The sign-in form. */
export function loginPage(
  language: PageLanguage,
  clientName: string,
  sealed: string,
  csrf: string,
  fields: readonly LoginField[],
  error?: PageMessage,
): Page {
  const inputs = fields.map(
    (f, i) => html`<label for="${f.name}">${word(language, f.label)}</label>
<input id="${f.name}" name="${f.name}" type="${f.type}" autocomplete="${f.autocomplete}" required${i === 0 ? html` autofocus` : ''}>
`,
  );
  return page(
    language,
    'Sign in',
    html`<h1>${word(language, 'Sign in')}</h1>
<p>${translate(language, { text: '{client} asks you to sign in.', values: { client: clientName } }, strong)}</p>
${error === undefined ? '' : html`<p class="error" role="alert">${translate(language, error, (v) => v)}</p>`}
<form method="post" action="/oauth2/authorize/login">
<input type="hidden" name="request" value="${sealed}">
<input type="hidden" name="csrf_token" value="${csrf}">
${inputs}<button type="submit">${word(language, 'Sign in')}</button>
</form>`,
  );
}

/** The consent page: who asks, for which agent, and each scope and detail in plain words. */
export function consentPage(language: PageLanguage, view: ConsentView, sealed: string, csrf: string): Page {
  // Who will act for the user: the named agent, or else the client itself (an MCP client, say).
  const agent =
    view.agent === null
      ? html`<p>${translate(language, { text: '{client} will act for you.', values: { client: view.clientName } }, strong)}</p>`
      : html`<p>${translate(language, { text: 'It wants to let the agent {agent} ({agentId}) act for you.', values: { agent: view.agent.name, agentId: view.agent.id } }, (v, name) => (name === 'agentId' ? code(v) : strong(v)))}</p>`;
  const items = [
    ...view.scope.map(
      (s) => html`<li>${translate(language, { text: 'use the permission {scope}', values: { scope: s } }, code)}</li>
`,
    ),
    ...view.details.map(
      (d) => html`<li>${d}</li>
`,
    ),
  ];
  const client = translate(
    language,
    { text: '{client} ({clientId}) asks for access.', values: { client: view.clientName, clientId: view.clientId } },
    (v, name) => (name === 'clientId' ? code(v) : strong(v)),
  );
  const unverified =
    view.unverified === undefined
      ? ''
      : html`${view.unverified.logoUri === null ? '' : html`<img src="${view.unverified.logoUri}" alt="" width="48" height="48">`}
<p class="unverified">${translate(language, { text: 'The name {client} comes from the application itself and is not verified by Baton.', values: { client: view.clientName } }, strong)}</p>`;
  return page(
    language,
    'Allow access',
    html`<h1>${word(language, 'Allow access?')}</h1>
<p>${translate(language, { text: 'Signed in as {user}.', values: { user: view.user } }, strong)}</p>
<p>${client}</p>
${unverified}
${agent}
<h2>${word(language, 'It will be able to')}</h2>
<ul>
${items}</ul>
<form method="post" action="/oauth2/authorize/consent">
<input type="hidden" name="request" value="${sealed}">
<input type="hidden" name="csrf_token" value="${csrf}">
<button type="submit" name="decision" value="approve">${word(language, 'Allow')}</button>
<button type="submit" name="decision" value="deny">${word(language, 'Deny')}</button>
</form>`,
  );
}

/** The page that sends the browser back to the client when a redirect cannot follow the form (see routes/browser.ts). */
export function returnPage(language: PageLanguage, location: string): Page {
  return page(
    language,
    'Returning to the application',
    html`<h1>${word(language, 'Returning to the application')}</h1>
<p><a href="${location}">${word(language, 'Continue')}</a></p>`,
  );
}
