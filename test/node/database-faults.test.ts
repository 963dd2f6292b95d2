import { randomUUID } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeys } from '../../src/adapters/signing-keys.js';
import { mintUserToken } from '../../src/cli/demo-kit.js';
import { loadConfig } from '../../src/node/config.js';
import { startBaton, type RunningBaton } from '../../src/node/server.js';
import { basic, captureLogger, exchangeHop, tokenTypes } from '../support/baton.js';
import { testDatabaseUrl } from '../support/database.js';

const skip = testDatabaseUrl === undefined;
const schema = `baton_faults_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
const issuer = 'http://baton.test';
/** The audit and statement deadline, and what an answer may take beyond it. */
const deadlineMs = 3000;
const marginMs = 1500;

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Bytes are dropped both ways, for good: like a flow whose NAT entry was lost. */
  silent: boolean;
  /** What the server sends is dropped, for good; what the client sends still arrives. */
  deaf: boolean;
}

/**
 * A TCP proxy in front of PostgreSQL. `reset` destroys every connection and refuses new ones;
 * `blackhole` keeps every socket open but drops all bytes both ways, and accepts new connections
 * that then hang. Connections silenced by a blackhole stay silent after it ends. `deafen` is a
 * blackhole that still lets the client's bytes through: statements run, their answers are lost.
 */
class FaultProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<Pair>();
  private readonly hung = new Set<Socket>();
  private mode: 'open' | 'reset' | 'blackhole' = 'open';
  port = 0;

  async start(target: URL): Promise<void> {
    this.server = createServer((client) => {
      client.on('error', () => client.destroy());
      if (this.mode === 'reset') return client.destroy();
      if (this.mode === 'blackhole') {
        this.hung.add(client);
        client.on('data', () => undefined);
        return;
      }
      const upstream = connect(Number(target.port || 5432), target.hostname);
      upstream.on('error', () => upstream.destroy());
      const pair: Pair = { client, upstream, silent: false, deaf: false };
      this.pairs.add(pair);
      client.on('data', (chunk) => pair.silent || upstream.write(chunk));
      upstream.on('data', (chunk) => pair.silent || pair.deaf || client.write(chunk));
      const close = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', close);
      upstream.on('close', close);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server?.address() as { port: number }).port;
  }
  reset(): void {
    this.mode = 'reset';
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
  }
  blackhole(): void {
    this.mode = 'blackhole';
    for (const p of this.pairs) p.silent = true;
  }
  deafen(): void {
    this.mode = 'blackhole';
    for (const p of this.pairs) p.deaf = true;
  }
  restore(): void {
    this.mode = 'open';
  }
  async stop(): Promise<void> {
    this.reset();
    for (const s of this.hung) s.destroy();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

const proxy = new FaultProxy();
const logger = captureLogger();
const batons: RunningBaton[] = [];
let subjectToken = '';

beforeAll(async () => {
  if (skip) return;
  await proxy.start(new URL(testDatabaseUrl as string));
  const proxied = new URL(testDatabaseUrl as string);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  const env = {
    PORT: '0',
    DATABASE_URL: proxied.toString(),
    BATON_DATABASE_SCHEMA: schema,
    BATON_ISSUER: issuer,
    BATON_SIGNING_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
    BATON_AUDIT_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
    BATON_RATE_LIMIT: '0',
  };
  batons.push(await startBaton(loadConfig(env), { logger }));
  batons.push(await startBaton(loadConfig(env), { logger }));
  const first = await exchangeHop(
    { url: (batons[0] as RunningBaton).url, issuer },
    await mintUserToken('alice', { audience: issuer }),
    tokenTypes.jwt,
    'orchestrator',
    { audience: 'payments', scope: 'payments:transfer' },
  );
  expect(first.status).toBe(200);
  subjectToken = first.body.access_token as string;
}, 60_000);

afterAll(async () => {
  await Promise.all(batons.map((b) => b.close().catch(() => undefined)));
  await proxy.stop();
  if (!skip) {
    const admin = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {} });
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
});

interface Answer {
  readonly instance: number;
  readonly kind: 'token' | 'decision';
  readonly requestId: string;
  readonly started: number;
  readonly ms: number;
  readonly status: number;
  readonly retryAfter: string | null;
  readonly body: Record<string, unknown>;
  /** The jti of an issued token, or the action id of a decision. */
  readonly id: string;
}

const answers: Answer[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function call(instance: number, kind: 'token' | 'decision'): Promise<Answer> {
  const baton = batons[instance] as RunningBaton;
  const requestId = randomUUID();
  const actionId = `fault-${randomUUID()}`;
  const started = performance.now();
  const response =
    kind === 'token'
      ? await fetch(`${baton.url}/oauth2/token`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: basic('ops-console'),
            'x-request-id': requestId,
          },
          body: 'grant_type=client_credentials&scope=baton%3Aaudit',
        })
      : await fetch(`${baton.url}/authorize`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: basic('payments'), 'x-request-id': requestId },
          body: JSON.stringify({
            token: subjectToken,
            action: 'payments:transfer',
            resource: { type: 'Account', id: 'acct-1' },
            context: { amount: 5, currency: 'EUR' },
            action_id: actionId,
          }),
        });
  const body = (await response.json()) as Record<string, unknown>;
  const ms = performance.now() - started;
  const id =
    kind === 'decision'
      ? actionId
      : response.status === 200
        ? (JSON.parse(atob((body.access_token as string).split('.')[1] as string)) as { jti: string }).jti
        : '';
  const answer: Answer = {
    instance,
    kind,
    requestId,
    started,
    ms,
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    body,
    id,
  };
  answers.push(answer);
  return answer;
}

const readyz = async (instance: number) => (await fetch(`${(batons[instance] as RunningBaton).url}/readyz`)).status;

/**
 * Runs load (token grants and decisions on both instances), cuts the database for `cutMs`, and
 * restores it; returns what was answered and when, and how long each instance took to recover.
 */
async function underLoad(cut: () => void, cutMs: number) {
  let running = true;
  const mine: Answer[] = [];
  const loops = [0, 1].flatMap((instance) =>
    (['token', 'token', 'decision', 'decision'] as const).map(async (kind) => {
      while (running) mine.push(await call(instance, kind));
    }),
  );
  await sleep(300);
  const cutAt = performance.now();
  cut();
  const readiness: { instance: number; at: number; end: number; status: number }[] = [];
  const polling = (async () => {
    while (performance.now() < cutAt + cutMs) {
      for (const instance of [0, 1]) {
        const at = performance.now();
        const status = await readyz(instance);
        readiness.push({ instance, at, end: performance.now(), status });
      }
      await sleep(100);
    }
  })();
  await sleep(cutMs);
  const restoredAt = performance.now();
  proxy.restore();
  await polling;
  // Each instance: ready again, and serving real requests again, measured from the restore.
  const recovered = await Promise.all(
    [0, 1].map(async (instance) => {
      let ready = Infinity;
      while (performance.now() - restoredAt < 10_000) {
        if ((await readyz(instance)) === 200) {
          ready = performance.now() - restoredAt;
          break;
        }
        await sleep(50);
      }
      let served = Infinity;
      while (performance.now() - restoredAt < 10_000) {
        const first = mine.find((a) => a.instance === instance && a.status === 200 && a.started >= restoredAt);
        if (first !== undefined) {
          served = first.started + first.ms - restoredAt;
          break;
        }
        await sleep(50);
      }
      return { ready, served };
    }),
  );
  running = false;
  await Promise.all(loops);
  return { cutAt, restoredAt, mine, readiness, recovered };
}

describe.skipIf(skip)('database faults under load on two instances', () => {
  const cuts: [string, () => void, number][] = [
    ['a reset of 0.2 s', () => proxy.reset(), 200],
    ['a reset of 1 s', () => proxy.reset(), 1000],
    ['a reset of 10 s', () => proxy.reset(), 10_000],
    ['a silent partition of 10 s', () => proxy.blackhole(), 10_000],
  ];
  it.each(cuts)(
    '%s: only 503 with Retry-After while cut, no slow answer, not ready while the writer cannot commit, back within 3 s',
    async (_, cut, cutMs) => {
      const { cutAt, restoredAt, mine, readiness, recovered } = await underLoad(cut, cutMs);
      // Every answer is a grant or a 503, in time.
      expect(
        mine.filter((a) => a.status !== 200 && a.status !== 503).map((a) => ({ status: a.status, body: a.body })),
      ).toEqual([]);
      expect(
        mine.filter((a) => a.ms > deadlineMs + marginMs).map((a) => ({ kind: a.kind, ms: Math.round(a.ms) })),
      ).toEqual([]);
      for (const a of mine.filter((x) => x.status === 503)) {
        expect({ retryAfter: a.retryAfter, body: a.body }).toEqual({
          retryAfter: '1',
          body: {
            error: 'temporarily_unavailable',
            error_description: 'the service is temporarily unavailable; retry later',
          },
        });
      }
      // Nothing started and answered while the database was away was granted. (During a short
      // cut, requests may wait for the database and be granted once it is back.)
      const whileCut = mine.filter((a) => a.started > cutAt && a.started + a.ms < restoredAt);
      if (cutMs >= 10_000) expect(whileCut.length).toBeGreaterThan(0);
      expect(whileCut.filter((a) => a.status === 200)).toEqual([]);
      // Not ready once the writer had time to find out (the probe's own deadline is 1 s).
      expect(readiness.filter((r) => r.at > cutAt + 1500 && r.end < restoredAt && r.status !== 503)).toEqual([]);
      if (cutMs >= 10_000)
        expect(readiness.filter((r) => r.end < restoredAt && r.status === 503).length).toBeGreaterThan(0);
      for (const { ready, served } of recovered) {
        expect(ready).toBeLessThan(3000);
        expect(served).toBeLessThan(3000);
      }
    },
    60_000,
  );

  it('records a grant committed after its caller was answered 503 as not delivered, and revokes its token', async () => {
    // A grant first, so the writer knows the head and sends the next batch as one statement
    // (after a fault it appends under the head's lock, in a transaction that cannot commit deaf).
    expect((await call(0, 'token')).status).toBe(200);
    // The statement reaches PostgreSQL and commits; its answer never comes back.
    proxy.deafen();
    let lost: Answer;
    try {
      lost = await call(0, 'token');
    } finally {
      proxy.restore();
    }
    expect({ status: lost.status, retryAfter: lost.retryAfter }).toEqual({ status: 503, retryAfter: '1' });
    const started = performance.now();
    while ((await readyz(0)) !== 200 && performance.now() - started < 10_000) await sleep(100);
    const db = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {}, connection: { search_path: schema } });
    try {
      const read = async () =>
        (
          await db<
            { seq: string; type: string; jti: string | null; canonical: string }[]
          >`SELECT seq, type, jti, canonical FROM audit_log ORDER BY seq`
        ).map((r) => ({
          seq: Number(r.seq),
          type: r.type,
          jti: r.jti,
          ...(JSON.parse(r.canonical) as { decision: string; request_id: string | null; reason: string | null }),
        }));
      const claim = (await read()).find((e) => e.request_id === lost.requestId);
      expect(claim).toMatchObject({ type: 'token.client_credentials', decision: 'granted' });
      // The writer settles the lost batch (readiness waits for that) and then appends its notice.
      const naming = async () =>
        (await read()).filter(
          (e) =>
            e.type === 'audit.undelivered' &&
            e.seq > (claim?.seq ?? 0) &&
            new RegExp(`\\b${claim?.seq}\\b`).test(e.reason ?? ''),
        );
      await expect.poll(async () => (await naming()).length, { timeout: 5000 }).toBe(1);
      expect((await naming())[0]?.reason).toBe(
        `answer not delivered: the caller was answered 503 before entries ${claim?.seq} committed; tokens revoked: ${claim?.jti}`,
      );
      expect((await db<{ jti: string }[]>`SELECT jti FROM revocations WHERE jti = ${claim?.jti ?? ''}`).length).toBe(1);
    } finally {
      await db.end();
    }
  }, 30_000);

  it('left every answered token and decision in the log, and no entry claiming an answer that was 503', async () => {
    const db = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {}, connection: { search_path: schema } });
    try {
      const rows = await db<
        { seq: string; type: string; jti: string | null; action_id: string | null; canonical: string }[]
      >`SELECT seq, type, jti, action_id, canonical FROM audit_log ORDER BY seq`;
      expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((_, i) => i + 1));
      const entries = rows.map((r) => ({
        seq: Number(r.seq),
        type: r.type,
        jti: r.jti,
        action_id: r.action_id,
        ...(JSON.parse(r.canonical) as { decision: string; request_id: string | null; reason: string | null }),
      }));
      const granted = answers.filter((a) => a.status === 200);
      expect(granted.length).toBeGreaterThan(100);
      const jtis = new Set(
        entries.filter((e) => e.type === 'token.client_credentials' && e.decision === 'granted').map((e) => e.jti),
      );
      const actions = new Set(entries.filter((e) => e.type === 'decision').map((e) => e.action_id));
      expect(granted.filter((a) => !(a.kind === 'token' ? jtis.has(a.id) : actions.has(a.id)))).toEqual([]);
      // An entry claiming a grant or an allow for a request answered 503 must be named by a later
      // "not delivered" entry (and its token revoked).
      const refusedIds = new Set(answers.filter((a) => a.status === 503).map((a) => a.requestId));
      const notDelivered = entries.filter((e) => e.type === 'audit.undelivered');
      const named = new Set(
        notDelivered.flatMap((e) =>
          [...(/entries ([\d, ]+) committed/.exec(e.reason ?? '')?.[1] ?? '').matchAll(/\d+/g)].map((m) =>
            Number(m[0]),
          ),
        ),
      );
      const claims = entries.filter(
        (e) =>
          e.request_id !== null && refusedIds.has(e.request_id) && (e.decision === 'granted' || e.decision === 'allow'),
      );
      expect(claims.filter((e) => !named.has(e.seq) || !notDelivered.some((n) => n.seq > e.seq))).toEqual([]);
      const revoked = new Set((await db<{ jti: string }[]>`SELECT jti FROM revocations`).map((r) => r.jti));
      expect(claims.filter((e) => e.jti !== null && e.type.startsWith('token.') && !revoked.has(e.jti))).toEqual([]);
    } finally {
      await db.end();
    }
  });
});
