import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeys } from '../../src/adapters/signing-keys.js';
import { loadConfig } from '../../src/node/config.js';
import { startBaton, type RunningBaton } from '../../src/node/server.js';
import { basic, captureLogger, postToken } from '../support/baton.js';
import { testDatabaseUrl } from '../support/database.js';

const skip = testDatabaseUrl === undefined;
const schema = `baton_outage_${randomUUID().replaceAll('-', '').slice(0, 12)}`;

/** A TCP proxy in front of PostgreSQL that can cut every connection and refuse new ones. */
class Outage {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private down = false;
  port = 0;

  async start(target: URL): Promise<void> {
    this.server = createServer((client) => {
      if (this.down) return client.destroy();
      const upstream = connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server?.address() as { port: number }).port;
  }
  cut(): void {
    this.down = true;
    for (const s of this.sockets) s.destroy();
  }
  restore(): void {
    this.down = false;
  }
  async stop(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

const outage = new Outage();
let baton: RunningBaton;
const logger = captureLogger();

beforeAll(async () => {
  if (skip) return;
  const target = new URL(testDatabaseUrl as string);
  await outage.start(target);
  const proxied = new URL(testDatabaseUrl as string);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(outage.port);
  const config = loadConfig({
    PORT: '0',
    DATABASE_URL: proxied.toString(),
    BATON_DATABASE_SCHEMA: schema,
    BATON_SIGNING_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
    BATON_AUDIT_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
  });
  baton = await startBaton(config, { logger });
});

afterAll(async () => {
  await baton?.close().catch(() => undefined);
  await outage.stop();
  if (!skip) {
    const admin = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {} });
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
});

const issueOne = () =>
  postToken(baton, { grant_type: 'client_credentials', scope: 'baton:audit' }, { authorization: basic('ops-console') });
const ready = async () => (await fetch(`${baton.url}/readyz`)).status;

describe.skipIf(skip)('the database stopped mid-load', () => {
  it('answers 503 and issues nothing meanwhile, then recovers by itself; every issued token is in the log', async () => {
    const issued: string[] = [];
    const statuses: number[] = [];
    let running = true;
    const load = (async () => {
      while (running) {
        const result = await issueOne();
        statuses.push(result.status);
        if (result.status === 200)
          issued.push(JSON.parse(atob((result.body.access_token as string).split('.')[1] as string)).jti as string);
        else
          expect(result.body).toEqual({
            error: 'temporarily_unavailable',
            error_description: 'the service is temporarily unavailable; retry later',
          });
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 300));
    outage.cut();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const duringOutage = statuses.length;
    expect(await ready()).toBe(503);
    const downResult = await issueOne();
    expect({ status: downResult.status, body: downResult.body, retry: downResult.headers.get('retry-after') }).toEqual({
      status: 503,
      body: {
        error: 'temporarily_unavailable',
        error_description: 'the service is temporarily unavailable; retry later',
      },
      retry: '1',
    });
    outage.restore();
    const deadline = Date.now() + 20_000;
    while ((await ready()) !== 200 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await ready()).toBe(200);
    // The load itself recovers: wait until it has been served again.
    const recovered = Date.now() + 20_000;
    while (!statuses.slice(duringOutage).includes(200) && Date.now() < recovered)
      await new Promise((resolve) => setTimeout(resolve, 100));
    running = false;
    await load;

    expect(statuses.slice(duringOutage).includes(200)).toBe(true);
    const db = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {}, connection: { search_path: schema } });
    const logged = new Set((await db`SELECT jti FROM audit_log WHERE jti IS NOT NULL`).map((r) => r.jti as string));
    const seqs = (await db`SELECT seq FROM audit_log ORDER BY seq`).map((r) => Number(r.seq));
    await db.end();
    expect(issued.length).toBeGreaterThan(0);
    expect(issued.filter((jti) => !logged.has(jti))).toEqual([]);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  });
});

describe.skipIf(skip)('least privilege', () => {
  it('leaves the application role unable to update, delete or truncate the log', async () => {
    const role = `baton_app_${randomUUID().replaceAll('-', '').slice(0, 8)}`;
    const admin = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {} });
    await admin.unsafe(`CREATE ROLE ${role} NOLOGIN`);
    try {
      await admin.unsafe(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
      execFileSync(
        'psql',
        [
          testDatabaseUrl as string,
          '-v',
          'ON_ERROR_STOP=1',
          '-v',
          `app=${role}`,
          '-c',
          `SET search_path TO ${schema}`,
          '-f',
          'sql/least-privilege.sql',
        ],
        { stdio: 'pipe' },
      );
      const asApp = (statement: string) =>
        admin.begin(async (tx) => {
          await tx.unsafe(`SET LOCAL search_path TO ${schema}`);
          await tx.unsafe(`SET LOCAL ROLE ${role}`);
          return tx.unsafe(statement);
        });
      for (const statement of ['UPDATE audit_log SET tenant = tenant', 'DELETE FROM audit_log', 'TRUNCATE audit_log']) {
        await expect(asApp(statement)).rejects.toThrow('permission denied for table audit_log');
      }
      expect((await asApp('SELECT count(*)::int AS n FROM audit_log'))[0]?.n).toBeGreaterThan(0);
    } finally {
      await admin.unsafe(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
      await admin.end();
    }
  });
});
