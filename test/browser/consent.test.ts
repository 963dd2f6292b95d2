import { AxeBuilder } from '@axe-core/playwright';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserArtifacts, haveChromium, launchChromium } from '../support/browser.js';
import { mintAgentAssertion } from '../../src/cli/demo-kit.js';
import { postToken, startTestBaton, tokenTypes, type TestBaton } from '../support/baton.js';

// Real Chromium (Debian's package, installed by .ci/run) driven by playwright-core. On a machine
// without it the suite is skipped with a notice, except in CI, where it must run.
/** Screenshots of every page, kept as test artifacts (not committed). */
const artifacts = browserArtifacts;

/** The client's callback: a loopback server that records what each redirect brought. */
interface Callback {
  readonly server: Server;
  readonly origin: string;
  readonly received: URL[];
}

async function startCallback(host = '127.0.0.1'): Promise<Callback> {
  const received: URL[] = [];
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://callback');
    // The browser also asks the client's origin for its icon; only redirects to the callback count.
    if (url.pathname.endsWith('/callback')) received.push(url);
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end('<!doctype html><html lang="en"><title>Client</title><main><h1>Back at the client</h1></main></html>');
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no callback address');
  return { server, origin: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`, received };
}

/** A clock the expiry test can move forward. */
const clock = { offset: 0, now: () => Date.now() + clock.offset };

let baton: TestBaton;
let callback: Callback;
/** A callback on the IPv6 loopback address, which CSP cannot name. */
let callback6: Callback;
let browser: Browser;
let consoleRedirect: string;

beforeAll(async () => {
  if (!haveChromium) return;
  mkdirSync(artifacts, { recursive: true });
  callback = await startCallback();
  callback6 = await startCallback('::1');
  // The demo registry, with the clients' redirect URIs on the callback server (another origin than
  // Baton's), and one more for agent-console on the IPv6 loopback callback.
  const registryFile = join(mkdtempSync(join(tmpdir(), 'baton-browser-')), 'registry.json');
  const registry = JSON.parse(
    readFileSync('policies/registry.json', 'utf8').replaceAll('http://localhost:3000', callback.origin),
  ) as { clients: { client_id: string; redirect_uris?: string[] }[] };
  registry.clients
    .find((c) => c.client_id === 'agent-console')
    ?.redirect_uris?.push(`${callback6.origin}/console/callback`);
  writeFileSync(registryFile, JSON.stringify(registry));
  consoleRedirect = `${callback.origin}/console/callback`;
  baton = await startTestBaton({ BATON_REGISTRY: registryFile }, { clock });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await baton?.close();
  await new Promise((resolve) => callback?.server.close(resolve));
  await new Promise((resolve) => callback6?.server.close(resolve));
});

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

const payment = [
  { type: 'payment_initiation', actions: ['initiate'], instructedAmount: { currency: 'EUR', amount: '100.00' } },
];

/** The authorization request `agent-console` sends for alice's consent to `orchestrator`. */
function authorizeUrl(challenge: string, state: string, extra: Record<string, string> = {}): string {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: 'agent-console',
    redirect_uri: consoleRedirect,
    scope: 'payments:read',
    authorization_details: JSON.stringify(payment),
    requested_actor: 'orchestrator',
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...extra,
  });
  return `${baton.url}/oauth2/authorize?${query}`;
}

interface Session {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Content Security Policy violations Chromium reported. */
  readonly violations: string[];
}

async function open(options: { locale?: string; viewport?: { width: number; height: number } } = {}): Promise<Session> {
  const context = await browser.newContext({
    locale: options.locale ?? 'en-US',
    viewport: options.viewport ?? { width: 1024, height: 768 },
  });
  const page = await context.newPage();
  const violations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  return { context, page, violations };
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/** Serious and critical accessibility violations on the current page, by rule id. */
async function accessibilityProblems(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page }).analyze();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help}`);
}

async function signIn(page: Page, password = 'alice-demo-password'): Promise<void> {
  await page.getByLabel('User name').fill('alice');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Waits until the callback server has received `count` requests. */
async function callbacks(count: number): Promise<URL[]> {
  await expect.poll(() => callback.received.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(count);
  return callback.received.slice(0, count);
}

describe.skipIf(!haveChromium)('the consent flow in Chromium', () => {
  it('allows: the callback gets code, state and iss, and the code redeems into a token acting for the agent', async () => {
    const { context, page, violations } = await open();
    const { verifier, challenge } = pkce();
    const before = callback.received.length;
    await page.goto(authorizeUrl(challenge, 'state-allow'));
    await expect.poll(() => page.title()).toBe('Sign in · Baton');
    await screenshot(page, 'login');
    expect(await accessibilityProblems(page)).toEqual([]);
    await signIn(page);
    await expect.poll(() => page.title()).toBe('Allow access · Baton');
    expect(await page.locator('main').innerText()).toContain('Acme Agent Console (agent-console) asks for access.');
    expect(await page.locator('li').allInnerTexts()).toEqual([
      'use the permission payments:read',
      'transfer up to 100.00 EUR',
    ]);
    await screenshot(page, 'consent');
    expect(await accessibilityProblems(page)).toEqual([]);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${consoleRedirect}?**`, { timeout: 10_000 });
    const arrived = (await callbacks(before + 1)).at(-1) as URL;
    expect(arrived.pathname).toBe('/console/callback');
    expect([...arrived.searchParams.keys()].sort()).toEqual(['code', 'iss', 'state']);
    expect(arrived.searchParams.get('state')).toBe('state-allow');
    expect(arrived.searchParams.get('iss')).toBe(baton.issuer);
    expect(violations).toEqual([]);

    const tokens = await postToken(
      baton,
      {
        grant_type: 'authorization_code',
        client_id: 'agent-console',
        code: arrived.searchParams.get('code') as string,
        redirect_uri: consoleRedirect,
        code_verifier: verifier,
        actor_token: await mintAgentAssertion('orchestrator', baton.issuer),
        actor_token_type: tokenTypes.jwt,
      },
      {},
    );
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    expect(decodeJwt(tokens.body.access_token as string)).toMatchObject({
      sub: 'alice',
      client_id: 'agent-console',
      act: { sub: 'orchestrator' },
      authorization_details: payment,
    });
    await context.close();
  });

  it('returns to an IPv6 loopback redirect URI, which CSP cannot name, through a page that sends the browser on', async () => {
    const { context, page, violations } = await open();
    const redirect = `${callback6.origin}/console/callback`;
    await page.goto(authorizeUrl(pkce().challenge, 'v6', { redirect_uri: redirect }));
    await signIn(page);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${redirect}?**`, { timeout: 10_000 });
    await expect.poll(() => callback6.received.length).toBe(1);
    const arrived = callback6.received[0] as URL;
    expect([...arrived.searchParams.keys()].sort()).toEqual(['code', 'iss', 'state']);
    expect(violations).toEqual([]);
    await context.close();
  });

  it('denies: the callback gets error=access_denied with state and iss', async () => {
    const { context, page, violations } = await open();
    const before = callback.received.length;
    await page.goto(authorizeUrl(pkce().challenge, 'state-deny'));
    await signIn(page);
    await page.getByRole('button', { name: 'Deny' }).click();
    await page.waitForURL(`${consoleRedirect}?**`, { timeout: 10_000 });
    const arrived = (await callbacks(before + 1)).at(-1) as URL;
    expect(Object.fromEntries(arrived.searchParams)).toEqual({
      error: 'access_denied',
      error_description: 'the user declined',
      state: 'state-deny',
      iss: baton.issuer,
    });
    expect(violations).toEqual([]);
    await context.close();
  });

  it.each([
    ['an unknown client', { client_id: 'nobody' }, 'The application that sent you here is not registered for sign-in.'],
    [
      'an unregistered redirect URI',
      { redirect_uri: 'https://evil.example/cb' },
      'The address to return to is not registered for this application.',
    ],
  ])('shows an error page for %s and never leaves Baton', async (name, extra, message) => {
    const { context, page } = await open();
    const response = await page.goto(authorizeUrl(pkce().challenge, 's', extra));
    expect(response?.status()).toBe(400);
    expect(new URL(page.url()).origin).toBe(baton.url);
    expect(await page.getByRole('alert').innerText()).toBe(message);
    expect(await accessibilityProblems(page)).toEqual([]);
    await screenshot(page, `error-${name.replaceAll(' ', '-')}`);
    await context.close();
  });

  it('refuses a wrong password, then signs in with the right one', async () => {
    const { context, page } = await open();
    await page.goto(authorizeUrl(pkce().challenge, 's'));
    await signIn(page, 'not-her-password');
    expect(await page.getByRole('alert').innerText()).toBe('The user name or password is not right.');
    await screenshot(page, 'login-wrong-password');
    expect(await accessibilityProblems(page)).toEqual([]);
    await signIn(page);
    await expect.poll(() => page.title()).toBe('Allow access · Baton');
    await context.close();
  });

  it('answers a consent once: two tabs each get their own code, a duplicated form is refused', async () => {
    const { context, page: first } = await open();
    const second = await context.newPage();
    const before = callback.received.length;
    await first.goto(authorizeUrl(pkce().challenge, 'tab-1'));
    await signIn(first);
    await second.goto(authorizeUrl(pkce().challenge, 'tab-2'));
    await signIn(second);
    await expect.poll(() => first.title()).toBe('Allow access · Baton');
    await expect.poll(() => second.title()).toBe('Allow access · Baton');
    const firstForm = await first.locator('form').evaluate((form) => form.outerHTML);

    await first.getByRole('button', { name: 'Allow' }).click();
    await first.waitForURL(`${consoleRedirect}?**`, { timeout: 10_000 });
    await second.getByRole('button', { name: 'Allow' }).click();
    await second.waitForURL(`${consoleRedirect}?**`, { timeout: 10_000 });
    const arrived = await callbacks(before + 2);
    const codes = arrived.slice(before).map((u) => [u.searchParams.get('state'), u.searchParams.get('code') === null]);
    expect(codes.sort()).toEqual([
      ['tab-1', false],
      ['tab-2', false],
    ]);

    // The first tab's form, submitted again from a third tab: the request was already answered.
    const third = await context.newPage();
    await third.goto(`${baton.url}/oauth2/authorize`);
    await third.locator('main').evaluate((main, formHtml) => main.insertAdjacentHTML('beforeend', formHtml), firstForm);
    await Promise.all([third.waitForLoadState('load'), third.locator('form button[value="approve"]').click()]);
    await expect
      .poll(() => third.getByRole('alert').innerText())
      .toBe('This request has already been answered. Start again from the application.');
    expect(new URL(third.url()).origin).toBe(baton.url);
    expect(callback.received.length).toBe(before + 2);
    await context.close();
  });

  it('the back button after approval sends no second code', async () => {
    const { context, page } = await open();
    const before = callback.received.length;
    await page.goto(authorizeUrl(pkce().challenge, 'back'));
    await signIn(page);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${consoleRedirect}?**`, { timeout: 10_000 });
    await callbacks(before + 1);
    // The consent page was the answer to a POST and is never cached: going back cannot show it
    // again (Chromium offers to resubmit the sign-in instead), so nothing can be approved twice.
    await page.goBack().catch(() => undefined);
    await screenshot(page, 'after-back');
    expect(await page.getByRole('button', { name: 'Allow' }).count()).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(callback.received.length).toBe(before + 1);
    await context.close();
  });

  it('an expired sign-in request shows an error page', async () => {
    const { context, page } = await open();
    await page.goto(authorizeUrl(pkce().challenge, 'late'));
    clock.offset = 601_000;
    try {
      await signIn(page);
      await expect
        .poll(() => page.getByRole('alert').innerText())
        .toBe('This sign-in request has expired. Start again from the application.');
    } finally {
      clock.offset = 0;
    }
    expect(new URL(page.url()).origin).toBe(baton.url);
    await screenshot(page, 'expired');
    await context.close();
  });

  it('works with the keyboard alone, every control labelled', async () => {
    const { context, page } = await open();
    const before = callback.received.length;
    await page.goto(authorizeUrl(pkce().challenge, 'keys'));
    // The user name field has the focus; Tab moves through the form in order.
    expect(await page.locator(':focus').getAttribute('name')).toBe('username');
    await page.keyboard.type('alice');
    await page.keyboard.press('Tab');
    expect(await page.locator(':focus').getAttribute('name')).toBe('password');
    await page.keyboard.type('alice-demo-password');
    await page.keyboard.press('Tab');
    expect(await page.locator(':focus').textContent()).toBe('Sign in');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.title()).toBe('Allow access · Baton');
    const labels: (string | null)[] = [];
    for (let i = 0; i < 2; i++) {
      await page.keyboard.press('Tab');
      labels.push(await page.locator(':focus').textContent());
    }
    expect(labels).toEqual(['Allow', 'Deny']);
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${consoleRedirect}?**`, { timeout: 10_000 });
    expect((await callbacks(before + 1)).at(-1)?.searchParams.get('state')).toBe('keys');
    await context.close();
  });

  it('fits a narrow (mobile) viewport', async () => {
    const { context, page } = await open({ viewport: { width: 360, height: 740 } });
    await page.goto(authorizeUrl(pkce().challenge, 'mobile'));
    const overflow = () => page.locator('html').evaluate((root) => root.scrollWidth - root.clientWidth);
    expect(await overflow()).toBe(0);
    await screenshot(page, 'mobile-login');
    await signIn(page);
    await expect.poll(() => page.title()).toBe('Allow access · Baton');
    expect(await overflow()).toBe(0);
    expect(await accessibilityProblems(page)).toEqual([]);
    await screenshot(page, 'mobile-consent');
    await context.close();
  });

  it.each([
    [
      'de-DE',
      'de',
      'Anmelden',
      'Benutzername',
      'Passwort',
      'Zugriff erlauben?',
      ['die Berechtigung payments:read nutzen', 'überweisen bis zu 100.00 EUR'],
      'Erlauben',
    ],
    [
      'fr-FR',
      'fr',
      'Connexion',
      'Nom d’utilisateur',
      'Mot de passe',
      'Autoriser l’accès ?',
      ['utiliser la permission payments:read', 'virer jusqu’à 100.00 EUR'],
      'Autoriser',
    ],
  ])(
    'speaks %s when the browser asks for it',
    async (locale, lang, title, userLabel, passwordLabel, heading, items, allow) => {
      const { context, page } = await open({ locale });
      const before = callback.received.length;
      await page.goto(authorizeUrl(pkce().challenge, lang));
      expect(await page.getAttribute('html', 'lang')).toBe(lang);
      expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe(title);
      await page.getByLabel(userLabel).fill('alice');
      await page.getByLabel(passwordLabel).fill('alice-demo-password');
      await page.getByRole('button', { name: title }).click();
      await expect.poll(() => page.getByRole('heading', { level: 1 }).innerText()).toBe(heading);
      expect(await page.locator('li').allInnerTexts()).toEqual(items);
      expect(await accessibilityProblems(page)).toEqual([]);
      await screenshot(page, `consent-${lang}`);
      await page.getByRole('button', { name: allow }).click();
      await page.waitForURL(`${consoleRedirect}?**`, { timeout: 10_000 });
      expect((await callbacks(before + 1)).at(-1)?.searchParams.get('state')).toBe(lang);
      await context.close();
    },
  );
});
