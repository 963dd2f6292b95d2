import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { verifyExport } from '../../src/cli/audit-verify.js';
import { signInPolicy } from '../../src/core/code-flow/sign-in-throttle.js';
import type { Jwks } from '../../src/core/registry/schema.js';
import { explorerCsp } from '../../src/http/routes/explorer.js';
import { auditRequests } from '../support/audit.js';
import { exchangeDetails, postJson, basic } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

/** A clock the expiry test moves forward. */
const clock = { offset: 0, now: () => Date.now() + clock.offset };

let baton: MemoryBaton;
let requests: ReturnType<typeof auditRequests>;
beforeAll(async () => {
  baton = await memoryBaton({}, { clock });
  requests = auditRequests(baton);
  await requests.chainAndDecision('explorer-order-1');
});
afterAll(async () => {
  await baton?.close();
});

const passwords: Record<string, string> = {
  audrey: 'audrey-demo-password',
  gus: 'gus-demo-password',
  alice: 'alice-demo-password',
};

/** The value of `name` among a response's Set-Cookie headers, with its attributes. */
function setCookie(response: Response, name: string): string | undefined {
  return response.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
}
const cookieValue = (header: string | undefined): string => (header ?? '').split(';')[0] ?? '';

/** Opens the sign-in page: its CSRF cookie and the token in its form. */
async function signInForm(): Promise<{ cookie: string; csrf: string; response: Response; html: string }> {
  const response = await baton.fetch(`${baton.url}/audit/`);
  const html = await response.text();
  const csrf = /name="csrf_token" value="([^"]+)"/.exec(html)?.[1] ?? '';
  return { cookie: cookieValue(setCookie(response, 'baton_audit_csrf')), csrf, response, html };
}

async function postSignIn(fields: Record<string, string>, cookie: string): Promise<Response> {
  return baton.fetch(`${baton.url}/audit/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  });
}

/** Signs `user` of `tenant` in; resolves to the session cookie (name=value) and the page's CSRF token. */
async function signIn(tenant: string, user: string): Promise<{ cookie: string; csrf: string }> {
  const form = await signInForm();
  const response = await postSignIn(
    { tenant, username: user, password: passwords[user] as string, csrf_token: form.csrf },
    form.cookie,
  );
  expect(response.status).toBe(303);
  const cookie = cookieValue(setCookie(response, 'baton_audit'));
  const page = await (await baton.fetch(`${baton.url}/audit/`, { headers: { cookie } })).text();
  return { cookie, csrf: /data-csrf="([^"]+)"/.exec(page)?.[1] ?? '' };
}

async function get(path: string, cookie: string) {
  const response = await baton.fetch(`${baton.url}${path}`, { headers: { cookie } });
  const text = await response.text();
  return { status: response.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

/** The last audit entry of the memory log (parsed). */
function lastEntry(): Record<string, unknown> {
  const entries = [...baton.storage.state.entries.values()].sort((a, b) => a.seq - b.seq);
  return JSON.parse(entries.at(-1)?.canonical ?? '{}') as Record<string, unknown>;
}

describe('audit explorer sign-in', () => {
  it('serves the sign-in form under the strict CSP with a SameSite=Strict CSRF cookie for /audit', async () => {
    const { response, html, csrf } = await signInForm();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    expect(response.headers.get('content-security-policy')).toBe(explorerCsp);
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(setCookie(response, 'baton_audit_csrf')).toMatch(
      /^baton_audit_csrf=[\w-]{44}; Path=\/audit; HttpOnly; SameSite=Strict$/,
    );
    expect(csrf).toMatch(/^[\w-]{44}$/);
    expect(html).toContain('<label for="tenant">Tenant</label>');
    expect(html).not.toContain('<script');
  });

  it('signs an auditor in with a sealed, HttpOnly, SameSite=Strict session cookie for /audit, audited', async () => {
    const form = await signInForm();
    const response = await postSignIn(
      { tenant: 'acme', username: 'audrey', password: passwords.audrey as string, csrf_token: form.csrf },
      form.cookie,
    );
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/audit/');
    expect(setCookie(response, 'baton_audit')).toMatch(
      /^baton_audit=[\w-]+\.[\w-]+\.[\w-]+; Max-Age=1800; Path=\/audit; HttpOnly; SameSite=Strict$/,
    );
    expect(lastEntry()).toMatchObject({
      tenant: 'acme',
      type: 'authorization.login',
      decision: 'granted',
      user: 'audrey',
      reason: 'audit explorer: signed in (auditor, operator)',
    });
    const page = await baton.fetch(`${baton.url}/audit/`, {
      headers: { cookie: cookieValue(setCookie(response, 'baton_audit')) },
    });
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(explorerCsp);
    expect(html).toContain('data-tenant="acme"');
    expect(html).toContain('<script src="/audit/assets/explorer.js"></script>');
    expect(html).toContain('Revoke everything this action reached');
  });

  it('refuses a wrong password and a user without the auditor role, each audited; a forged form is refused', async () => {
    let form = await signInForm();
    let response = await postSignIn(
      { tenant: 'acme', username: 'audrey', password: 'not-it', csrf_token: form.csrf },
      form.cookie,
    );
    expect(response.status).toBe(400);
    expect(await response.text()).toContain(
      'The tenant, user name or password is not right, or the user is not an auditor.',
    );
    expect(setCookie(response, 'baton_audit')).toBeUndefined();
    expect(lastEntry()).toMatchObject({
      tenant: 'acme',
      type: 'authorization.login',
      decision: 'refused',
      user: null,
      reason: 'audit explorer: wrong user name or password',
    });

    form = await signInForm();
    response = await postSignIn(
      { tenant: 'acme', username: 'alice', password: passwords.alice as string, csrf_token: form.csrf },
      form.cookie,
    );
    expect(response.status).toBe(400);
    expect(setCookie(response, 'baton_audit')).toBeUndefined();
    expect(lastEntry()).toMatchObject({
      tenant: 'acme',
      type: 'authorization.login',
      decision: 'refused',
      user: 'alice',
      reason: 'audit explorer: the user does not hold the auditor role',
    });

    // gus is globex's auditor: in acme he is no user at all.
    form = await signInForm();
    response = await postSignIn(
      { tenant: 'acme', username: 'gus', password: passwords.gus as string, csrf_token: form.csrf },
      form.cookie,
    );
    expect(response.status).toBe(400);
    expect(setCookie(response, 'baton_audit')).toBeUndefined();

    form = await signInForm();
    response = await postSignIn(
      { tenant: 'acme', username: 'audrey', password: passwords.audrey as string, csrf_token: 'x'.repeat(44) },
      form.cookie,
    );
    expect(response.status).toBe(403);
    expect(setCookie(response, 'baton_audit')).toBeUndefined();
  });

  it('throttles sign-in as the code flow does, audited; a tenant that does not exist is refused with the same words', async () => {
    // As at the code flow's sign-in: the allowance and one more attempt are checked, then the user is locked.
    for (let i = 0; i <= signInPolicy.perUser; i += 1) {
      const form = await signInForm();
      const response = await postSignIn(
        { tenant: 'acme', username: 'mallory', password: `guess-${i}`, csrf_token: form.csrf },
        form.cookie,
      );
      expect(response.status).toBe(400);
    }
    let form = await signInForm();
    const locked = await postSignIn(
      { tenant: 'acme', username: 'mallory', password: 'guess-last', csrf_token: form.csrf },
      form.cookie,
    );
    expect(locked.status).toBe(400);
    expect(await locked.text()).toContain('Too many failed sign-ins. Try again in 30 seconds.');
    expect(lastEntry()).toMatchObject({
      tenant: 'acme',
      type: 'authorization.login',
      decision: 'refused',
      reason: 'audit explorer: sign-in throttled: too many failed attempts',
    });
    form = await signInForm();
    const unknown = await postSignIn(
      { tenant: 'initech', username: 'audrey', password: passwords.audrey as string, csrf_token: form.csrf },
      form.cookie,
    );
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toContain(
      'The tenant, user name or password is not right, or the user is not an auditor.',
    );
  });

  it('signs out: the cookie is cleared; a sign-out form without the session token is refused', async () => {
    const { cookie, csrf } = await signIn('acme', 'audrey');
    const forged = await baton.fetch(`${baton.url}/audit/sign-out`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: 'csrf_token=forged',
      redirect: 'manual',
    });
    expect(forged.status).toBe(403);
    const out = await baton.fetch(`${baton.url}/audit/sign-out`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({ csrf_token: csrf }).toString(),
      redirect: 'manual',
    });
    expect(out.status).toBe(303);
    expect(setCookie(out, 'baton_audit')).toMatch(/^baton_audit=; Max-Age=0; Path=\/audit/);
  });
});

describe('the audit API with an explorer session', () => {
  it("answers the session's tenant exactly as an audit token of that tenant", async () => {
    const acme = await signIn('acme', 'audrey');
    const globex = await signIn('globex', 'gus');
    const trail = await get('/audit/actions/explorer-order-1', acme.cookie);
    expect(trail.status).toBe(200);
    expect((trail.json().entries as { entry: { type: string } }[]).map((e) => e.entry.type)).toEqual([
      'token.exchange',
      'token.exchange',
      'decision',
    ]);
    const other = await get('/audit/actions/explorer-order-1', globex.cookie);
    expect(other.status).toBe(404);
    expect(other.json()).toEqual({ error: 'not_found', error_description: 'no such action in your tenant' });
    expect((await get('/audit/trail/explorer-order-1', globex.cookie)).status).toBe(404);
    const searched = await get('/audit/search?action_id=explorer-order-1', globex.cookie);
    expect(searched.json()).toEqual({ entries: [], next: null });
    const exported = await get('/audit/entries?from=1&limit=10000', globex.cookie);
    expect(exported.text).not.toContain('explorer-order-1');
    expect((await get('/audit/verify', acme.cookie)).json()).toMatchObject({ valid: true });
    // No session and no token: refused as the API refuses a missing token.
    expect((await get('/audit/search', '')).status).toBe(401);
    expect((await get('/audit/actions/explorer-order-1', 'baton_audit=forged.session.cookie')).status).toBe(401);
  });

  it('draws the three-hop chain: user, each actor with scope, details in words and policies, then the decision', async () => {
    const { cookie } = await signIn('acme', 'audrey');
    const trail = await get('/audit/trail/explorer-order-1', cookie);
    expect(trail.status).toBe(200);
    const nodes = trail.json().nodes as {
      kind: string;
      id: string;
      decision: string | null;
      scope: string[];
      policyIds: string[];
    }[];
    expect(nodes.map((n) => [n.kind, n.id, n.decision])).toEqual([
      ['user', 'alice', null],
      ['actor', 'orchestrator', 'granted'],
      ['actor', 'payments-subagent', 'granted'],
      ['action', 'explorer-order-1', 'allow'],
    ]);
    expect(nodes[2]).toMatchObject({ scope: ['payments:transfer'], policyIds: ['delegate-within-tenant'] });
  });

  it("says each hop's authorization details in words, as the consent page does", async () => {
    const payment = {
      type: 'payment_initiation',
      actions: ['initiate'],
      instructedAmount: { currency: 'EUR', amount: '100.00' },
    };
    const hop = await exchangeDetails(baton, [payment], undefined);
    expect(hop.status).toBe(200);
    const decision = await postJson(
      baton,
      '/authorize',
      {
        token: hop.body.access_token,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount: 40, currency: 'EUR' },
        action_id: 'explorer-details-1',
      },
      { authorization: basic('payments') },
    );
    expect(decision.body.decision).toBe('allow');
    const { cookie } = await signIn('acme', 'audrey');
    const nodes = (await get('/audit/trail/explorer-details-1', cookie)).json().nodes as {
      kind: string;
      id: string;
      details: string[];
    }[];
    expect(nodes.map((n) => [n.kind, n.id, n.details])).toEqual([
      ['user', 'alice', []],
      ['actor', 'orchestrator', ['transfer up to 100.00 EUR']],
      ['action', 'explorer-details-1', ['transfer up to 100.00 EUR']],
    ]);
  });

  it('ends a session after 30 minutes', async () => {
    const { cookie } = await signIn('acme', 'audrey');
    try {
      clock.offset = 29 * 60 * 1000;
      expect((await get('/audit/search?limit=1', cookie)).status).toBe(200);
      clock.offset = 31 * 60 * 1000;
      expect((await get('/audit/search?limit=1', cookie)).status).toBe(401);
      const page = await get('/audit/', cookie);
      expect(page.text).toContain('Sign in to the audit explorer');
    } finally {
      clock.offset = 0;
    }
  });

  it('searches by action, agent, user, client, decision, type and time, newest first, paged', async () => {
    const { cookie } = await signIn('acme', 'audrey');
    const byAction = (await get('/audit/search?action_id=explorer-order-1', cookie)).json() as {
      entries: { seq: number; verified: boolean; entry: { type: string } }[];
    };
    expect(byAction.entries.map((e) => [e.entry.type, e.verified])).toEqual([['decision', true]]);
    const byAgent = (
      await get('/audit/search?agent=payments-subagent&type=token.exchange&decision=granted', cookie)
    ).json() as {
      entries: { seq: number; entry: { actor_chain: string[] } }[];
    };
    expect(byAgent.entries.length).toBeGreaterThan(0);
    expect(byAgent.entries.every((e) => e.entry.actor_chain.includes('payments-subagent'))).toBe(true);
    const seqs = byAgent.entries.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
    const page = (await get('/audit/search?user=alice&limit=1', cookie)).json() as {
      entries: { seq: number }[];
      next: number;
    };
    expect(page.entries).toHaveLength(1);
    expect(page.next).toBe(page.entries[0]?.seq);
    const following = (await get(`/audit/search?user=alice&limit=1&before=${page.next}`, cookie)).json() as {
      entries: { seq: number }[];
    };
    expect(following.entries[0]?.seq).toBeLessThan(page.next);
    const future = (await get('/audit/search?since=2999-01-01T00:00:00Z', cookie)).json();
    expect(future).toEqual({ entries: [], next: null });
    const byClient = (await get('/audit/search?client=agent-platform&until=2999-01-01T00:00:00Z', cookie)).json() as {
      entries: unknown[];
    };
    expect(byClient.entries.length).toBeGreaterThan(0);
  });

  it('refuses malformed filters with exact 400s', async () => {
    const { cookie } = await signIn('acme', 'audrey');
    const cases: [string, string][] = [
      ['decision=maybe', 'decision must be one of granted, refused, allow, deny, applied'],
      ['since=yesterday', 'since must be an RFC 3339 date-time (2026-01-31T12:00:00Z)'],
      ['since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z', 'since must not be later than until'],
      ['user=a&user=b', 'user is repeated'],
      ['user=', 'user must be 1–256 characters, no control characters'],
      ['type=DROP%20TABLE', 'type must be an entry type such as token.exchange or decision'],
      ['action_id=%20', 'action_id must be 1–128 visible ASCII characters'],
      ['limit=0', 'limit must be between 1 and 200'],
      ['before=-1', 'before must be a non-negative integer'],
    ];
    for (const [query, description] of cases) {
      const answer = await get(`/audit/search?${query}`, cookie);
      expect([query, answer.status, answer.json()]).toEqual([
        query,
        400,
        { error: 'invalid_request', error_description: description },
      ]);
    }
    const exported = await get('/audit/entries?decision=maybe', cookie);
    expect(exported.status).toBe(400);
  });

  it('exports a selection as JSON lines that verify offline, entries outside it as hashes only', async () => {
    const { cookie } = await signIn('acme', 'audrey');
    await baton.checkpoint();
    const jwks = (await (await baton.fetch(`${baton.url}/audit/keys`)).json()) as Jwks;
    const exported = (await get('/audit/entries?from=1&limit=10000&action_id=explorer-order-1', cookie)).text;
    const whole = exported
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { canonical?: string; redacted?: true; checkpoint?: string })
      .filter((l) => l.canonical !== undefined);
    expect(whole).toHaveLength(1);
    expect(JSON.parse(whole[0]?.canonical ?? '{}')).toMatchObject({ type: 'decision', action_id: 'explorer-order-1' });
    expect((await verifyExport(exported, jwks, sha256Hex)).ok).toBe(true);
  });

  it('revokes what an action reached for an operator session carrying its CSRF token, and only then', async () => {
    await requests.chainAndDecision('explorer-order-2');
    const acme = await signIn('acme', 'audrey');
    const globex = await signIn('globex', 'gus');
    const revoke = (cookie: string, csrf: string | undefined) =>
      baton.fetch(`${baton.url}/audit/revoke`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          cookie,
          ...(csrf === undefined ? {} : { 'x-csrf-token': csrf }),
        },
        body: JSON.stringify({ action_id: 'explorer-order-2' }),
      });
    let answer = await revoke('', undefined);
    expect([answer.status, await answer.json()]).toEqual([
      401,
      { error: 'invalid_token', error_description: 'sign in to the audit explorer first' },
    ]);
    answer = await revoke(acme.cookie, undefined);
    expect([answer.status, await answer.json()]).toEqual([
      403,
      { error: 'access_denied', error_description: "the request does not carry this session's CSRF token" },
    ]);
    answer = await revoke(globex.cookie, globex.csrf);
    expect([answer.status, await answer.json()]).toEqual([
      403,
      { error: 'insufficient_scope', error_description: 'revoking needs the operator role' },
    ]);
    answer = await revoke(acme.cookie, acme.csrf);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ action_id: 'explorer-order-2', revoked: 2 });
    expect(lastEntry()).toMatchObject({ tenant: 'acme', client: 'audrey', action_id: 'explorer-order-2' });
  });

  it('serves its own script and style', async () => {
    const js = await baton.fetch(`${baton.url}/audit/assets/explorer.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await js.text()).toContain("'use strict'");
    const css = await baton.fetch(`${baton.url}/audit/assets/explorer.css`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
  });
});
