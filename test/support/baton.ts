import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importJWK, SignJWT, type JWTPayload } from 'jose';
import { generateSigningKeys, type PrivateJwks } from '../../src/adapters/signing-keys.js';
import { demoSecret, mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import type { Clock, LogFields, Logger } from '../../src/core/ports.js';
import { loadConfig } from '../../src/node/config.js';
import { startBaton, type RunningBaton } from '../../src/node/server.js';
import { openTestDatabase } from './database.js';
import { expect } from 'vitest';

export const grants = {
  exchange: 'urn:ietf:params:oauth:grant-type:token-exchange',
} as const;
export const tokenTypes = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  idToken: 'urn:ietf:params:oauth:token-type:id_token',
} as const;

/** Everything a suite logged, to check what reaches the logs. */
export interface CapturedLogger extends Logger {
  readonly lines: { level: string; message: string; fields: LogFields | undefined }[];
}

/** A logger that keeps its lines and also writes them, as Baton would, to the run's log scan (see log-scan.ts). */
export function captureLogger(): CapturedLogger {
  const lines: CapturedLogger['lines'] = [];
  const dir = process.env.BATON_TEST_LOG_DIR;
  const file = dir === undefined ? undefined : join(dir, `${process.pid}-${randomUUID()}.jsonl`);
  const push = (level: string) => (message: string, fields?: LogFields) => {
    lines.push({ level, message, fields });
    if (file !== undefined) appendFileSync(file, `${JSON.stringify({ level, message, ...fields })}\n`);
  };
  return { lines, info: push('info'), warn: push('warn'), error: push('error') };
}

/** How a test sends a request: the Fetch API's signature. */
export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * Where a test sends its requests: a Baton's URL, and its `fetch` when it has no socket (a
 * memory Baton answers through its app, see memory-baton.ts); without one, the global fetch.
 */
export interface Target {
  readonly url: string;
  readonly fetch?: Fetch;
}

/** Signs arbitrary claims with Baton's current signing key (to forge tokens Baton never issued). */
export async function batonSigner(signingJwks: PrivateJwks): Promise<(claims: JWTPayload) => Promise<string>> {
  const current = signingJwks.keys[0] as Record<string, unknown>;
  const key = await importJWK(current, 'EdDSA');
  return (claims) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: current.kid as string, typ: 'at+jwt' }).sign(key);
}

export interface TestBaton extends RunningBaton {
  readonly signingJwks: PrivateJwks;
  /** The keys that sign its audit checkpoints. */
  readonly auditJwks: PrivateJwks;
  /** Where it publishes its checkpoints (a directory of its own, unless the test set BATON_CHECKPOINT_DIR). */
  readonly checkpointDir: string;
  readonly logger: CapturedLogger;
  /** Signs arbitrary claims with Baton's own current key (to forge tokens Baton never issued). */
  signAsBaton(claims: JWTPayload): Promise<string>;
}

/** Starts Baton on a random port with the demo registry, fresh keys and a database of its own. */
export async function startTestBaton(
  env: Record<string, string> = {},
  options: { readonly clock?: Clock } = {},
): Promise<TestBaton> {
  const signingJwks = await generateSigningKeys('EdDSA');
  const auditJwks = await generateSigningKeys('EdDSA');
  // Each instance publishes its checkpoints apart: a directory shared with another database would
  // hold checkpoints that database never had, which Baton reports as checkpoints gone missing.
  const checkpointDir = env.BATON_CHECKPOINT_DIR ?? mkdtempSync(join(tmpdir(), 'baton-checkpoints-'));
  const config = loadConfig({
    PORT: '0',
    BATON_SIGNING_KEYS: JSON.stringify(signingJwks),
    BATON_AUDIT_KEYS: JSON.stringify(auditJwks),
    BATON_CHECKPOINT_DIR: checkpointDir,
    ...env,
  });
  const database = await openTestDatabase();
  const logger = captureLogger();
  const baton = await startBaton(config, { database, logger, ...options });
  const signAsBaton = await batonSigner(signingJwks);
  let closing: Promise<void> | undefined;
  return {
    ...baton,
    signingJwks,
    auditJwks,
    checkpointDir,
    logger,
    close() {
      // Once, like Baton's own close (a test may stop it twice, as SIGINT and SIGTERM can).
      closing ??= baton.close().then(() => database.close());
      return closing;
    },
    signAsBaton,
  };
}

export function basic(clientId: string, secret = demoSecret(clientId)): string {
  return `Basic ${btoa(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`)}`;
}

export interface PostResult {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

/** POSTs a form to the token endpoint. */
export async function postToken(
  baton: Target,
  params: Record<string, string | string[]> | string,
  headers: Record<string, string> = { authorization: basic('agent-platform') },
): Promise<PostResult> {
  let body: string;
  if (typeof params === 'string') body = params;
  else {
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const one of Array.isArray(v) ? v : [v]) form.append(k, one);
    body = form.toString();
  }
  const response = await (baton.fetch ?? fetch)(`${baton.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body,
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

/** POSTs JSON to a Baton API. */
export async function postJson(
  baton: Target,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<PostResult> {
  const response = await (baton.fetch ?? fetch)(`${baton.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>,
  };
}

/** One token-exchange hop by `agent-platform`: `subject` for `actor`, proven by a fresh assertion. */
export async function exchangeHop(
  target: Target & Pick<RunningBaton, 'issuer'>,
  subject: string,
  subjectType: string,
  actor: string,
  extra: Record<string, string> = {},
): Promise<PostResult> {
  return postToken(target, {
    grant_type: grants.exchange,
    subject_token: subject,
    subject_token_type: subjectType,
    actor_token: await mintAgentAssertion(actor, target.issuer),
    actor_token_type: tokenTypes.jwt,
    ...extra,
  });
}

/** One exchange hop that must be granted; returns its access token. */
export async function exchangedToken(
  target: Target & Pick<RunningBaton, 'issuer'>,
  subject: string,
  subjectType: string,
  actor: string,
  extra: Record<string, string> = {},
): Promise<string> {
  const result = await exchangeHop(target, subject, subjectType, actor, extra);
  expect(result.status, JSON.stringify(result.body)).toBe(200);
  return result.body.access_token as string;
}

/** The Authorization header of a client-credentials token of `client` holding `scope`. */
export async function bearerOf(target: Target, client: string, scope: string): Promise<Record<string, string>> {
  const result = await postToken(target, { grant_type: 'client_credentials', scope }, { authorization: basic(client) });
  return { authorization: `Bearer ${result.body.access_token as string}` };
}

/** The demo chain alice → orchestrator (at payments) → payments-subagent; returns both tokens. */
export async function demoChain(
  target: Target & Pick<RunningBaton, 'issuer'>,
  scope = 'payments:read payments:transfer',
  secondScope?: string,
): Promise<[string, string]> {
  const first = await exchangeHop(
    target,
    await mintUserToken('alice', { audience: target.issuer }),
    tokenTypes.jwt,
    'orchestrator',
    { audience: 'payments', scope },
  );
  if (first.status !== 200) throw new Error(`first hop refused: ${JSON.stringify(first.body)}`);
  const second = await exchangeHop(
    target,
    first.body.access_token as string,
    tokenTypes.accessToken,
    'payments-subagent',
    secondScope === undefined ? {} : { scope: secondScope },
  );
  if (second.status !== 200) throw new Error(`second hop refused: ${JSON.stringify(second.body)}`);
  return [first.body.access_token as string, second.body.access_token as string];
}

/**
 * One exchange by `agent-platform` of alice's identity-provider token holding `granted`
 * authorization details, for `orchestrator` at payments; `requested` (an array, raw text, or
 * nothing to carry the granted ones over) is the request's `authorization_details`.
 */
export async function exchangeDetails(
  target: Target & Pick<RunningBaton, 'issuer'>,
  granted: object[],
  requested: object[] | string | undefined,
): Promise<PostResult> {
  return postToken(target, {
    grant_type: grants.exchange,
    subject_token: await mintUserToken('alice', {
      audience: target.issuer,
      claims: { authorization_details: granted },
    }),
    subject_token_type: tokenTypes.jwt,
    actor_token: await mintAgentAssertion('orchestrator', target.issuer),
    actor_token_type: tokenTypes.jwt,
    audience: 'payments',
    scope: 'payments:transfer',
    ...(requested === undefined
      ? {}
      : { authorization_details: typeof requested === 'string' ? requested : JSON.stringify(requested) }),
  });
}
