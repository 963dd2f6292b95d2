import { createHash, randomBytes } from 'node:crypto';
import { mintAgentAssertion } from '../../src/cli/demo-kit.js';
import { basic, postToken, type PostResult, type Target } from './baton.js';

export const redirectUri = 'http://localhost:3000/callback';
const jwtTokenType = 'urn:ietf:params:oauth:token-type:jwt';

/** A PKCE verifier and its S256 challenge. */
export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** What a test reads off a page of the browser flow. */
export interface Page {
  readonly cookie: string | undefined;
  readonly fields: Record<string, string>;
  readonly location: string | null;
}

/** Reads a page of the browser flow: its redirect, CSRF cookie and hidden fields. */
export async function read(response: Response, cookie?: string): Promise<Page> {
  const html = await response.text();
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g))
    fields[m[1] as string] = (m[2] as string).replaceAll('&amp;', '&');
  return {
    cookie: response.headers.get('set-cookie')?.match(/baton_csrf=([^;]+)/)?.[1] ?? cookie,
    fields,
    location: response.headers.get('location'),
  };
}

/** Submits a page's form with `extra` fields, carrying its CSRF cookie. */
export async function submit(target: Target, path: string, page: Page, extra: Record<string, string>): Promise<Page> {
  const response = await (target.fetch ?? fetch)(`${target.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `baton_csrf=${page.cookie ?? ''}` },
    body: new URLSearchParams({ ...page.fields, ...extra }),
  });
  return read(response, page.cookie);
}

export interface ConsentRequest {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly scope: string;
  /** `requested_actor`, or null for none. */
  readonly agent: string | null;
}

/** Alice consents at `target` (by default to `agent-platform` with agent `orchestrator`): the code and its PKCE verifier. */
export async function consentedCode(
  target: Target,
  request: Partial<ConsentRequest> = {},
): Promise<{ code: string; verifier: string }> {
  const {
    clientId,
    redirectUri: redirect,
    scope,
    agent,
  }: ConsentRequest = {
    clientId: 'agent-platform',
    redirectUri,
    scope: 'payments:read payments:transfer',
    agent: 'orchestrator',
    ...request,
  };
  const { verifier, challenge } = pkce();
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirect,
    scope,
    state: 's',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(agent === null ? {} : { requested_actor: agent }),
  });
  const login = await read(
    await (target.fetch ?? fetch)(`${target.url}/oauth2/authorize?${query}`, { redirect: 'manual' }),
  );
  const consent = await submit(target, '/oauth2/authorize/login', login, {
    username: 'alice',
    password: 'alice-demo-password',
  });
  const approved = await submit(target, '/oauth2/authorize/consent', consent, { decision: 'approve' });
  const code = approved.location === null ? null : new URL(approved.location).searchParams.get('code');
  if (code === null) throw new Error('consent did not end in a code');
  return { code, verifier };
}

/** The code flow's token request by `agent-platform`, proving `orchestrator` with `actorToken` (a fresh assertion by default). */
export async function redeemCode(
  target: Target & { readonly issuer: string },
  code: string,
  verifier: string,
  actorToken?: string,
): Promise<PostResult> {
  return postToken(target, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    code_verifier: verifier,
    actor_token: actorToken ?? (await mintAgentAssertion('orchestrator', target.issuer)),
    actor_token_type: jwtTokenType,
  });
}

/** A refresh-token request by `agent-platform`. */
export function refresh(target: Target, refreshToken: string): Promise<PostResult> {
  return postToken(
    target,
    { grant_type: 'refresh_token', refresh_token: refreshToken },
    { authorization: basic('agent-platform') },
  );
}

/** Introspects at `target` as the payments resource server: true while the token is active. */
export async function isActive(target: Target, token: string): Promise<boolean> {
  const response = await (target.fetch ?? fetch)(`${target.url}/oauth2/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('payments') },
    body: new URLSearchParams({ token }),
  });
  return ((await response.json()) as { active: boolean }).active;
}

/** Waits until none of `tokens` is active at any of `targets`, or `withinMs` has passed; returns those still active. */
export async function stillActiveAfter(
  targets: readonly Target[],
  tokens: readonly string[],
  withinMs: number,
): Promise<string[]> {
  const started = performance.now();
  for (;;) {
    const active: string[] = [];
    for (const target of targets) for (const token of tokens) if (await isActive(target, token)) active.push(token);
    if (active.length === 0 || performance.now() - started > withinMs) return active;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
