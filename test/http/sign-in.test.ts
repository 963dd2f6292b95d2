import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signInPolicy } from '../../src/core/code-flow/sign-in-throttle.js';
import { basic, postToken } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

/** A clock the tests move: counts are forgotten after the window, locks end. */
const clock = { offset: 0, now: () => Date.now() + clock.offset };
const advance = (seconds: number) => {
  clock.offset += seconds * 1000;
};

let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton({}, { clock });
});
afterAll(async () => {
  await baton?.close();
});
// Each test starts past the window of the one before: nothing is remembered between them.
beforeEach(() => advance(signInPolicy.windowSeconds + 1));

interface LoginForm {
  readonly cookie: string;
  readonly fields: Record<string, string>;
}

/** Opens a sign-in page of the demo flow. */
async function loginForm(): Promise<LoginForm> {
  const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: 'agent-platform',
    redirect_uri: 'http://localhost:3000/callback',
    scope: 'payments:read',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  const response = await baton.fetch(`${baton.url}/oauth2/authorize?${query}`);
  const html = await response.text();
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g))
    fields[m[1] as string] = m[2] as string;
  return { cookie: /baton_csrf=([^;]+)/.exec(response.headers.get('set-cookie') ?? '')?.[1] as string, fields };
}

/** Signs in on a fresh sign-in page; returns what the page says (the alert, or that consent was reached). */
async function signIn(username: string, password: string): Promise<string> {
  const form = await loginForm();
  const response = await baton.fetch(`${baton.url}/oauth2/authorize/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `baton_csrf=${form.cookie}` },
    body: new URLSearchParams({ ...form.fields, username, password }),
  });
  const html = await response.text();
  if (html.includes('<h1>Allow access?</h1>')) return 'consent';
  return /role="alert">([^<]+)</.exec(html)?.[1] ?? `status ${response.status}`;
}

const wrong = 'The user name or password is not right.';
const throttled = (seconds: number) => `Too many failed sign-ins. Try again in ${seconds} seconds.`;

async function throttledRefusals(): Promise<number> {
  const auditor = await postToken(
    baton,
    { grant_type: 'client_credentials', scope: 'baton:audit' },
    { authorization: basic('ops-console') },
  );
  const text = await (
    await baton.fetch(`${baton.url}/audit/entries?limit=10000`, {
      headers: { authorization: `Bearer ${auditor.body.access_token as string}` },
    })
  ).text();
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { canonical?: string })
    .map((l) =>
      l.canonical === undefined ? {} : (JSON.parse(l.canonical) as { type?: string; reason?: string | null }),
    )
    .filter((e) => e.type === 'authorization.login' && e.reason === 'sign-in throttled: too many failed attempts')
    .length;
}

describe('password sign-in throttling', () => {
  it('locks a user at the attempt after five failures, even for the right password, and audits each refusal', async () => {
    const auditedBefore = await throttledRefusals();
    for (let i = 0; i <= signInPolicy.perUser; i++) expect(await signIn('alice', `guess-${i}`)).toBe(wrong);
    expect(await signIn('alice', 'alice-demo-password')).toBe(throttled(30));
    expect(await signIn('alice', 'guess-6')).toBe(throttled(30));
    expect(await throttledRefusals()).toBe(auditedBefore + 2);
  });

  it('lets one password be tried per lock, doubling the lock up to the cap, and a success clears it', async () => {
    // Every attempt also counts against the address (20): this test stays within it.
    for (let i = 0; i < signInPolicy.perUser; i++) await signIn('alice', `guess-${i}`);
    for (const seconds of [30, 60, 120, 240, 480, 900, 900]) {
      expect(await signIn('alice', 'guess')).toBe(wrong);
      advance(seconds - 1);
      expect(await signIn('alice', 'alice-demo-password')).toBe(throttled(1));
      advance(1);
    }
    expect(await signIn('alice', 'alice-demo-password')).toBe('consent');
    // The success forgot the failures: two guesses in a row are both checked.
    expect([await signIn('alice', 'guess'), await signIn('alice', 'guess')]).toEqual([wrong, wrong]);
  });

  it('counts attempts sent side by side: no more than the allowance are checked', async () => {
    const answers = await Promise.all(Array.from({ length: 15 }, (_, i) => signIn('alice', `parallel-${i}`)));
    // The allowance, and the one attempt that took the first lock.
    expect(answers.filter((a) => a === wrong)).toHaveLength(signInPolicy.perUser + 1);
    expect(answers.filter((a) => a === throttled(30))).toHaveLength(15 - signInPolicy.perUser - 1);
  });

  it('locks an address that fails across many user names', async () => {
    for (let i = 0; i <= signInPolicy.perAddress; i++) expect(await signIn(`user-${i}`, 'guess')).toBe(wrong);
    expect(await signIn('alice', 'alice-demo-password')).toBe(throttled(30));
  });

  it('does not count successes against the address', async () => {
    for (let i = 0; i < signInPolicy.perAddress + 5; i++)
      expect(await signIn('alice', 'alice-demo-password')).toBe('consent');
  });

  it('forgets failures after the window', async () => {
    for (let i = 0; i < signInPolicy.perUser; i++) await signIn('alice', `guess-${i}`);
    advance(signInPolicy.windowSeconds + 1);
    expect(await signIn('alice', 'alice-demo-password')).toBe('consent');
  });

  it('counts any user name the form can carry, and refuses a form that holds a NUL', async () => {
    for (const name of ['\ud800', '__proto__', 'constructor', 'x'.repeat(5000)])
      expect(await signIn(name, 'guess')).toBe(wrong);
    expect(await signIn('a\u0000b', 'guess')).toBe('The form could not be read.');
  });
});

describe('refused pages', () => {
  // Each test starts a new interval of the refusal tally (beforeEach moves the clock an hour on).
  it.each([
    [
      'an unknown client',
      `client_id=nobody`,
      'invalid_request (400): The application that sent you here is not registered for sign-in.',
    ],
    ['a repeated parameter', 'client_id=a&client_id=b', 'invalid_request (400): parameter client_id is repeated'],
  ])('audits %s through the bounded tally', async (_name, query, reason) => {
    const before = baton.storage.state.head.seq;
    const requestId = `page-refusal-${query.length}`;
    await baton.fetch(`${baton.url}/oauth2/authorize?${query}`, { headers: { 'x-request-id': requestId } });
    const entries = baton.auditEntries(before);
    expect(entries.filter((e) => e.request_id === requestId).map((e) => [e.type, e.decision, e.reason])).toEqual([
      ['request.refusal', 'refused', `GET /oauth2/authorize from address 127.0.0.1: ${reason}`],
    ]);
  });

  it('audits a sign-in form that was not sent from Baton', async () => {
    const before = baton.storage.state.head.seq;
    const response = await baton.fetch(`${baton.url}/oauth2/authorize/login`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: `baton_csrf=${'x'.repeat(44)}`,
        'x-request-id': 'forged-form',
      },
      body: new URLSearchParams({ request: 'not-a-jwt', csrf_token: 'x'.repeat(44), username: 'alice', password: 'p' }),
    });
    expect(response.status).toBe(403);
    const entries = baton.auditEntries(before);
    expect(entries.filter((e) => e.request_id === 'forged-form').map((e) => [e.type, e.reason])).toEqual([
      [
        'request.refusal',
        'POST /oauth2/authorize/login from address 127.0.0.1: access_denied (403): This form has expired or was not sent from this site. Start again from the application.',
      ],
    ]);
  });
});
