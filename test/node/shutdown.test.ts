import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditReader } from '../../src/adapters/db/audit-reader.js';
import { openPglite } from '../../src/adapters/db/pglite.js';
import { openPostgres } from '../../src/adapters/db/postgres.js';
import type { Database } from '../../src/adapters/db/sql.js';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { generateSigningKeys } from '../../src/adapters/signing-keys.js';
import { basic, demoChain } from '../support/baton.js';
import { testDatabaseUrl } from '../support/database.js';

// The entry point as `npm start` runs it, compiled into a folder of this suite's own: other suites
// rebuild dist/ while their processes start.
const built = join('node_modules', '.cache', 'baton-shutdown-test');
const issuer = 'http://baton.test';
const drainSeconds = 5;
/** What the exit may take beyond the drain's own end: flushing, closing, process exit, a loaded machine. */
const marginMs = 2000;
const schemas: string[] = [];
const dataDirs: string[] = [];
const children: ChildProcess[] = [];

beforeAll(() => {
  rmSync(built, { recursive: true, force: true });
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', built], {
    stdio: 'inherit',
  });
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  if (testDatabaseUrl !== undefined) {
    const admin = postgres(testDatabaseUrl, { max: 1, onnotice: () => {} });
    for (const schema of schemas) await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
});

interface LogLine {
  readonly message: string;
  readonly [field: string]: unknown;
}

interface Running {
  readonly child: ChildProcess;
  readonly url: string;
  /** Every line it logged, with the moment the test read it. */
  readonly logs: { readonly line: LogLine; readonly at: number }[];
  /** Settles once it has exited and every line it wrote has been read. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** The database it wrote, opened again once it has exited. */
  openDatabase(): Promise<Database>;
}

/** Starts the built entry point on a database of its own; resolves once `processes` of it (workers) serve. */
async function startProcess(env: Record<string, string>, processes: number): Promise<Running> {
  // Only what the test sets: none of the runner's own BATON_* or DATABASE_URL.
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !name.startsWith('BATON_') && name !== 'DATABASE_URL' && name !== 'PORT',
    ),
  );
  const dataDir = mkdtempSync(join(tmpdir(), 'baton-shutdown-'));
  dataDirs.push(dataDir);
  const schema = `baton_shutdown_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const database: Record<string, string> =
    testDatabaseUrl === undefined
      ? { BATON_DATA_DIR: dataDir }
      : {
          DATABASE_URL: testDatabaseUrl,
          BATON_DATABASE_SCHEMA: schema,
          BATON_SIGNING_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
          BATON_AUDIT_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
        };
  if (testDatabaseUrl !== undefined) schemas.push(schema);
  const child = spawn(process.execPath, [join(built, 'node', 'main.js')], {
    env: {
      ...inherited,
      PORT: '0',
      BATON_ISSUER: issuer,
      BATON_RATE_LIMIT: '0',
      BATON_DRAIN_TIMEOUT: String(drainSeconds),
      ...database,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const logs: { line: LogLine; at: number }[] = [];
  // 'close' rather than 'exit': by then every line it wrote has been read.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  // What it logs goes to the run's log scan as well (see test/support/log-scan.ts).
  const logFile =
    process.env.BATON_TEST_LOG_DIR === undefined
      ? undefined
      : join(process.env.BATON_TEST_LOG_DIR, `shutdown-${randomUUID()}.jsonl`);
  let timer: NodeJS.Timeout | undefined;
  const url = await new Promise<string>((resolve, reject) => {
    const started: string[] = [];
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
      if (logFile !== undefined) appendFileSync(logFile, `${text}\n`);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        // Workers share the pipe, and a write longer than the pipe's atomic size can be split by another's.
        return;
      }
      logs.push({ line, at: performance.now() });
      if (line.message === 'baton started' && started.push(line.url as string) === processes)
        resolve(started[0] as string);
    });
    void exited.then(({ code }) => reject(new Error(`exited with ${code} before it started: ${stderr.slice(-2000)}`)));
    timer = setTimeout(() => reject(new Error('did not start in 60 s')), 60_000);
  }).finally(() => clearTimeout(timer));
  return {
    child,
    url,
    logs,
    exited,
    openDatabase: () =>
      testDatabaseUrl === undefined
        ? openPglite(join(dataDir, 'pglite'))
        : openPostgres(testDatabaseUrl, { schema, max: 1 }),
  };
}

type Outcome =
  | {
      readonly kind: 'answered';
      readonly path: string;
      readonly status: number;
      readonly close: boolean;
      readonly body: string;
      readonly sentAt: number;
      readonly at: number;
    }
  | { readonly kind: 'refused'; readonly sentAt: number; readonly at: number }
  | {
      readonly kind: 'failed';
      readonly path: string;
      readonly error: string;
      readonly reusedSocket: boolean;
      readonly sentAt: number;
      readonly at: number;
    };

/** One POST through `agent`: answered (the whole body read), refused (no connection), or failed (anything else). */
function post(agent: Agent, url: URL, path: string, headers: Record<string, string>, body: string): Promise<Outcome> {
  const sentAt = performance.now();
  return new Promise((resolve) => {
    const req = httpRequest({
      agent,
      host: url.hostname,
      port: url.port,
      method: 'POST',
      path,
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
    });
    const failed = (error: NodeJS.ErrnoException): void =>
      resolve(
        error.code === 'ECONNREFUSED'
          ? { kind: 'refused', sentAt, at: performance.now() }
          : {
              kind: 'failed',
              path,
              error: `${error.code ?? ''} ${error.message}`,
              reusedSocket: req.reusedSocket,
              sentAt,
              at: performance.now(),
            },
      );
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', failed);
      res.on('end', () =>
        resolve({
          kind: 'answered',
          path,
          status: res.statusCode ?? 0,
          close: res.headers.connection === 'close',
          body: Buffer.concat(chunks).toString(),
          sentAt,
          at: performance.now(),
        }),
      );
    });
    req.on('error', failed);
    req.end(body);
  });
}

/**
 * Steady keep-alive load: `connections` loops, each sending its next request as soon as the last
 * is answered, alternating client-credentials grants and decisions; a refused connection is tried
 * again shortly. Runs until `stop()`.
 */
function steadyLoad(baseUrl: string, connections: number, token: string) {
  const url = new URL(baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const outcomes: Outcome[] = [];
  let running = true;
  let next = 0;
  const one = (): Promise<Outcome> => {
    const n = next++;
    if (n % 2 === 0) {
      return post(
        agent,
        url,
        '/oauth2/token',
        { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('agent-platform') },
        'grant_type=client_credentials&resource=https%3A%2F%2Fcalendar.example',
      );
    }
    const decision = {
      token,
      action: 'payments:transfer',
      resource: { type: 'Account', id: 'acct-1' },
      context: { amount: 5, currency: 'EUR' },
      action_id: `drain-${n}`,
    };
    return post(
      agent,
      url,
      '/authorize',
      { 'content-type': 'application/json', authorization: basic('payments') },
      JSON.stringify(decision),
    );
  };
  const loops = Array.from({ length: connections }, async () => {
    while (running) {
      const outcome = await one();
      outcomes.push(outcome);
      if (outcome.kind !== 'answered') await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });
  return {
    outcomes,
    async stop(): Promise<void> {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

const payload = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>;

/**
 * Starts Baton with `env`, drives steady keep-alive load at it, sends SIGTERM mid-load, and checks
 * the stop: exit 0 within the drain time, nobody cut off, Connection: close on every answer the
 * drain gave, new connections refused while it drained, the chain valid and every answer in it.
 * `processes` is how many serve (one per worker) and so drain.
 */
async function sigtermUnderLoad(env: Record<string, string>, processes: number): Promise<void> {
  const baton = await startProcess(env, processes);
  const [, token] = await demoChain({ url: baton.url, issuer });
  const load = steadyLoad(baton.url, 4, token);
  while (load.outcomes.filter((o) => o.kind === 'answered').length < 200)
    await new Promise((resolve) => setTimeout(resolve, 20));

  const killedAt = performance.now();
  baton.child.kill('SIGTERM');
  const exit = await Promise.race([
    baton.exited,
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), drainSeconds * 1000 + marginMs + 1000)),
  ]);
  await load.stop();

  expect(exit).toMatchObject({ code: 0, signal: null });
  expect((exit?.at ?? Infinity) - killedAt).toBeLessThan(drainSeconds * 1000 + marginMs);
  const outcomes = load.outcomes;
  // Nobody is cut off: every request was answered in full, or found no server to connect to.
  expect(outcomes.filter((o) => o.kind === 'failed')).toEqual([]);
  const answered = outcomes.filter((o) => o.kind === 'answered');
  expect(answered.filter((o) => o.status !== 200)).toEqual([]);
  const started = baton.logs.filter((l) => l.line.message === 'drain started');
  const finished = baton.logs.filter((l) => l.line.message === 'drain finished');
  expect(started.map((l) => l.line)).toEqual(
    Array.from({ length: processes }, () => expect.objectContaining({ level: 'info', timeout_seconds: drainSeconds })),
  );
  expect(finished.map((l) => l.line)).toEqual(
    Array.from({ length: processes }, () =>
      expect.objectContaining({ level: 'info', abandoned: 0, deadline_hit: false }),
    ),
  );
  // Connection: close comes with the drain, on every answer it gives, and only then: the answers
  // the drains report are exactly those that told the client to close.
  expect(answered.filter((o) => o.at < killedAt && o.close)).toEqual([]);
  const drainAnswers = finished.reduce((sum, l) => sum + (l.line.answered as number), 0);
  expect(answered.filter((o) => o.close).length).toBe(drainAnswers);
  expect(drainAnswers).toBeGreaterThan(0);
  const lastStarted = started.at(-1)?.at ?? Infinity;
  expect(answered.filter((o) => o.sentAt > lastStarted && !o.close)).toEqual([]);
  // It stopped accepting while it still drained.
  const lastFinished = finished.at(-1)?.at ?? -Infinity;
  expect(outcomes.filter((o) => o.kind === 'refused' && o.at < lastFinished).length).toBeGreaterThan(0);

  const database = await baton.openDatabase();
  try {
    const reader = createAuditReader(database.sql, sha256Hex);
    const head = await reader.head();
    expect(await reader.verify(1, head.seq)).toEqual({ valid: true, entries: head.seq });
    const jtis = new Set(
      (await database.sql<{ jti: string }>`SELECT jti FROM audit_log WHERE jti IS NOT NULL`).map((r) => r.jti),
    );
    const actions = new Set(
      (await database.sql<{ action_id: string }>`SELECT action_id FROM audit_log WHERE action_id IS NOT NULL`).map(
        (r) => r.action_id,
      ),
    );
    const grants = answered
      .filter((o) => o.path === '/oauth2/token')
      .map((o) => payload((JSON.parse(o.body) as { access_token: string }).access_token).jti as string);
    const decisions = answered
      .filter((o) => o.path === '/authorize')
      .map((o) => (JSON.parse(o.body) as { action_id: string }).action_id);
    expect(grants.length).toBeGreaterThan(50);
    expect(decisions.length).toBeGreaterThan(50);
    expect(grants.filter((jti) => !jtis.has(jti))).toEqual([]);
    expect(decisions.filter((id) => !actions.has(id))).toEqual([]);
  } finally {
    await database.close();
  }
}

describe('SIGTERM under steady keep-alive load', () => {
  it('stops accepting, answers every request it has with Connection: close, exits 0 well within the drain time, every answer audited', async () => {
    await sigtermUnderLoad({}, 1);
  });

  it.skipIf(testDatabaseUrl === undefined)(
    'does the same with BATON_WORKERS=2: every worker drains and the primary exits 0 within the drain time',
    async () => {
      await sigtermUnderLoad({ BATON_WORKERS: '2' }, 2);
    },
  );
});
