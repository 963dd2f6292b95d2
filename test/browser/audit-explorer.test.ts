import { AxeBuilder } from '@axe-core/playwright';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserArtifacts, haveChromium, launchChromium } from '../support/browser.js';
import { auditRequests } from '../support/audit.js';
import { startTestBaton, type TestBaton } from '../support/baton.js';

// Real Chromium (Debian's package, installed by .ci/run) driven by playwright-core, against a real
// Baton on PostgreSQL. On a machine without Chromium the suite is skipped with a notice, except in CI.
/** Screenshots of every page, kept as test artifacts (not committed). */
const artifacts = browserArtifacts;

let baton: TestBaton;
let browser: Browser;
let requests: ReturnType<typeof auditRequests>;

beforeAll(async () => {
  if (!haveChromium) return;
  mkdirSync(artifacts, { recursive: true });
  baton = await startTestBaton();
  requests = auditRequests(baton);
  // The three-hop chain: alice → orchestrator → payments-subagent → the decision on the action.
  await requests.chainAndDecision('browser-order-1');
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await baton?.close();
});

interface Session {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Content Security Policy violations and script errors Chromium reported. */
  readonly problems: string[];
}

async function open(): Promise<Session> {
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  return { context, page, problems };
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(artifacts, `audit-explorer-${name}.png`), fullPage: true });
}

/** Every accessibility violation axe-core finds on the page, by rule id. */
async function accessibilityProblems(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page }).analyze();
  return result.violations.map((v) => `${v.id} (${v.impact ?? 'unknown'}): ${v.help}`);
}

async function signIn(page: Page, tenant: string, user: string, password: string): Promise<void> {
  await page.goto(`${baton.url}/audit/`);
  await page.getByLabel('Tenant').fill(tenant);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: `Audit log of ${tenant}` }).waitFor();
}

async function searchAction(page: Page, actionId: string): Promise<void> {
  await page.getByLabel('Action ID').fill(actionId);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
}

const suite = haveChromium || process.env.CI !== undefined ? describe : describe.skip;

suite('audit explorer in Chromium', () => {
  it('an acme auditor signs in, searches an action ID and sees the three-hop chain with the decision', async () => {
    const { context, page, problems } = await open();
    await page.goto(`${baton.url}/audit/`);
    expect(await accessibilityProblems(page)).toEqual([]);
    await screenshot(page, 'sign-in');
    await signIn(page, 'acme', 'audrey', 'audrey-demo-password');
    await searchAction(page, 'browser-order-1');
    await page.getByRole('heading', { level: 2, name: 'Action browser-order-1' }).waitFor();
    const graphText = page.locator('#graph-text');
    await graphText.waitFor();
    expect(await graphText.innerText()).toBe(
      'Delegation: User alice → orchestrator → payments-subagent → Action browser-order-1: allow.',
    );
    // The graph is an image named by that text.
    expect(await page.getByRole('img', { name: /Delegation chain/ }).count()).toBe(1);
    const hops = page.locator('ol.hops > li > h3');
    expect(await hops.allInnerTexts()).toEqual([
      '1. User alice',
      '2. orchestrator',
      '3. payments-subagent',
      '4. Action browser-order-1: allow',
    ]);
    const subagent = await page.locator('ol.hops > li').nth(2).innerText();
    expect(subagent).toContain('payments:transfer');
    expect(subagent).toContain('delegate-within-tenant');
    expect(subagent).toContain('verified');
    expect(await page.locator('#action-body > p').first().innerText()).toBe('Every entry of this action verifies.');
    // Every entry's sequence number, hash and verification state.
    const rows = page.locator('table:has(caption:text("Entries of this action")) tbody tr');
    expect(await rows.count()).toBe(3);
    expect(await rows.nth(2).innerText()).toMatch(/^\d+\tdecision\tallow\t[0-9a-f]{64}\tverified$/);
    await screenshot(page, 'action-chain');
    expect(await accessibilityProblems(page)).toEqual([]);

    // The log's state: the latest signed checkpoint, entries since, the verification run's result.
    await baton.checkpoint();
    await page.getByRole('button', { name: 'Verify the whole log now' }).click();
    await page.locator('#log-body dl', { hasText: 'signature verified' }).waitFor();
    const log = await page.locator('#log-body').innerText();
    expect(log).toMatch(/Latest signed checkpoint\s+entry \d+, signed \d{4}-\d\d-\d\dT[\d:.]+Z, signature verified/);
    expect(log).toMatch(/Entries since\s+0\n/);
    expect(log).toMatch(/Verification run\s+valid: entries 1–\d+ verify/);

    // New entries appear without reloading.
    await requests.chainAndDecision('browser-order-live');
    await page.getByLabel('Action ID').fill('');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.locator('#results a', { hasText: 'browser-order-1' }).first().waitFor();
    await requests.chainAndDecision('browser-order-live-2');
    await page.locator('#results a', { hasText: 'browser-order-live-2' }).waitFor({ timeout: 15_000 });
    // The export link carries the selection.
    await searchAction(page, 'browser-order-1');
    await expect
      .poll(() => page.locator('#export').getAttribute('href'))
      .toBe('/audit/entries?from=1&limit=10000&action_id=browser-order-1');
    expect(problems).toEqual([]);
    await context.close();
  });

  it("globex's auditor sees nothing of acme's action", async () => {
    const { context, page, problems } = await open();
    await signIn(page, 'globex', 'gus', 'gus-demo-password');
    await searchAction(page, 'browser-order-1');
    await page.getByText('No action browser-order-1 in your tenant.', { exact: true }).first().waitFor();
    expect(await page.locator('#results').innerText()).not.toContain('browser-order-1');
    expect(await page.locator('ol.hops').count()).toBe(0);
    // gus is no operator: no revoke button.
    expect(await page.getByRole('button', { name: 'Revoke everything this action reached' }).count()).toBe(0);
    await screenshot(page, 'other-tenant');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('is usable with the keyboard alone: sign in, search, reach the chain, revoke, go back', async () => {
    await requests.chainAndDecision('browser-order-keys');
    const { context, page, problems } = await open();
    await page.goto(`${baton.url}/audit/`);
    // The tenant field has the focus on arrival (autofocus, applied once the page has rendered).
    await page.waitForFunction("document.activeElement?.id === 'tenant'");
    await page.keyboard.type('acme');
    await page.keyboard.press('Tab');
    await page.keyboard.type('audrey');
    await page.keyboard.press('Tab');
    await page.keyboard.type('audrey-demo-password');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Audit log of acme' }).waitFor();
    // Evaluated in the page (the test's own types have no DOM).
    const focused = () => page.evaluate<string>("document.activeElement?.id ?? ''");
    for (let i = 0; i < 20 && (await focused()) !== 'f-action'; i += 1) await page.keyboard.press('Tab');
    expect(await focused()).toBe('f-action');
    await page.keyboard.type('browser-order-keys');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 2, name: 'Action browser-order-keys' }).waitFor();
    await page.locator('#graph-text').waitFor();
    // The focus moves to the action's heading, so a screen reader hears where it landed.
    expect(await focused()).toBe('action-heading');
    page.once('dialog', (dialog) => void dialog.accept());
    for (let i = 0; i < 30 && (await focused()) !== 'revoke'; i += 1) await page.keyboard.press('Tab');
    expect(await focused()).toBe('revoke');
    await page.keyboard.press('Enter');
    await page
      .locator('#revoke-result', { hasText: 'Revoked 2 tokens reached by action browser-order-keys.' })
      .waitFor();
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('back');
    await page.keyboard.press('Enter');
    await page.waitForFunction("document.getElementById('action').hidden");
    await screenshot(page, 'keyboard');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('shows an entry a superuser edited past the triggers as tampered, at its sequence number', async () => {
    const headers = await requests.bearer('ops-console', 'baton:audit');
    const trail = (await requests.get('/audit/actions/browser-order-1', headers)).json() as {
      entries: { seq: number; entry: { type: string } }[];
    };
    const decision = trail.entries.find((e) => e.entry.type === 'decision')?.seq as number;
    await baton.database.sql.begin(async (tx) => {
      await tx.script('SET LOCAL session_replication_role = replica');
      await tx`UPDATE audit_log SET canonical = replace(canonical, '"decision":"allow"', '"decision":"deny"') WHERE seq = ${decision}`;
    });
    const { context, page, problems } = await open();
    await signIn(page, 'acme', 'audrey', 'audrey-demo-password');
    const tampered = page.locator('#tampered');
    await tampered.waitFor();
    expect(await tampered.innerText()).toMatch(new RegExp(`^FAILED: entry ${decision} is tampered \\(`));
    await searchAction(page, 'browser-order-1');
    await page.locator('#graph-text').waitFor();
    const row = page.locator('table:has(caption:text("Entries of this action")) tbody tr').nth(2);
    expect(await row.innerText()).toMatch(
      new RegExp(`^${decision}\\tdecision\\tdeny\\t[0-9a-f]{64}\\tTAMPERED: does not verify$`),
    );
    expect(await page.locator('#action-body > p').first().innerText()).toBe(
      `This action’s entries do not all verify: tampered at seq ${decision}.`,
    );
    await screenshot(page, 'tampered');
    expect(await accessibilityProblems(page)).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  });
});
