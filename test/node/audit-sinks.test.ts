import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/adapters/db/sql.js';
import { generateSigningKeys } from '../../src/adapters/signing-keys.js';
import { loadConfig } from '../../src/node/config.js';
import { startBaton, type RunningBaton } from '../../src/node/server.js';
import { basic, bearerOf, captureLogger, postToken, type Target } from '../support/baton.js';
import { openTestDatabase } from '../support/database.js';
import { ocsfErrors } from '../support/ocsf.js';

interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly events: { metadata: { sequence: number; uid: string } }[];
}

/** A local HTTP sink that records what it accepts; while `failing`, it answers 503 and records nothing. */
function localSink() {
  const state = { failing: false, refused: 0, batches: [] as Received[] };
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      if (state.failing) {
        state.refused += 1;
        response.writeHead(503).end('down');
        return;
      }
      const events = body
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Received['events'][number]);
      state.batches.push({ headers: request.headers, events });
      response.writeHead(200).end('ok');
    });
  });
  return {
    state,
    sequences: () => state.batches.flatMap((b) => b.events.map((e) => e.metadata.sequence)),
    async listen(): Promise<string> {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const address = server.address() as { port: number };
      return `http://127.0.0.1:${address.port}/ingest`;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const sink = localSink();
let sinkUrl: string;
let database: Database;
const instances: RunningBaton[] = [];

async function startInstance(keys: string): Promise<RunningBaton> {
  const config = loadConfig({
    PORT: '0',
    BATON_SIGNING_KEYS: keys,
    BATON_AUDIT_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
    BATON_CHECKPOINT_DIR: mkdtempSync(join(tmpdir(), 'baton-checkpoints-')),
    BATON_RATE_LIMIT: '0',
    BATON_AUDIT_SINK_INTERVAL_MS: '100',
    BATON_AUDIT_SINK_BACKOFF_MS: '100',
    BATON_AUDIT_SINK_MAX_BACKOFF_MS: '400',
    BATON_AUDIT_SINK_LEASE_MS: '5000',
  });
  return startBaton(config, { database, logger: captureLogger() });
}

beforeAll(async () => {
  sinkUrl = await sink.listen();
  database = await openTestDatabase();
  const keys = JSON.stringify(await generateSigningKeys('EdDSA'));
  // One after the other: the first seeds the registry the others read.
  for (let i = 0; i < 3; i += 1) instances.push(await startInstance(keys));
}, 60_000);
afterAll(async () => {
  for (const instance of instances) await instance.close();
  await database?.close();
  await sink.close();
});

const first = (): RunningBaton => instances[0] as RunningBaton;
const send = async (target: Target, method: string, path: string, body: unknown, headers: Record<string, string>) => {
  const response = await fetch(`${target.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : (JSON.parse(text) as unknown) };
};

/** The sequence numbers of every entry the acme auditor can export (its tenant's and deployment-wide ones). */
async function acmeSequences(): Promise<number[]> {
  const auditor = await bearerOf(first(), 'ops-console', 'baton:audit');
  const response = await fetch(`${first().url}/audit/entries?format=ocsf&limit=10000`, { headers: auditor });
  return (await response.text())
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { metadata: { sequence: number } }).metadata.sequence);
}

async function until(condition: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Issues `n` client-credentials tokens, spread over the instances. */
async function issue(n: number): Promise<void> {
  for (let i = 0; i < n; i += 1) {
    const result = await postToken(
      instances[i % instances.length] as RunningBaton,
      { grant_type: 'client_credentials', scope: 'baton:audit' },
      { authorization: basic('ops-console') },
    );
    expect(result.status).toBe(200);
  }
}

async function metric(instance: RunningBaton, name: string): Promise<number> {
  const response = await fetch(`${instance.url}/metrics`, { headers: { authorization: basic('ops-console') } });
  const line = (await response.text()).split('\n').find((l) => l.startsWith(`${name}{sink="acme/siem"}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

describe('audit sinks', () => {
  it('are configured per tenant by an operator, never showing the credential, and refuse what cannot be delivered safely', async () => {
    const admin = await bearerOf(first(), 'ops-console', 'baton:admin');
    expect(
      await send(first(), 'PUT', '/admin/audit-sinks/siem', { kind: 'webhook', url: 'http://example.com/x' }, admin),
    ).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'url must be an https URL (http only to localhost)' },
    });
    expect(
      await send(first(), 'PUT', '/admin/audit-sinks/siem', { kind: 'splunk', url: 'https://splunk.example' }, admin),
    ).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'credential is required for splunk (the HEC token)' },
    });
    expect(await send(first(), 'PUT', '/admin/audit-sinks/bad%20id', { kind: 'webhook', url: sinkUrl }, admin)).toEqual(
      {
        status: 400,
        body: { error: 'invalid_request', error_description: 'sink id must be 1–64 letters, digits, ".", "_" or "-"' },
      },
    );
    const created = await send(
      first(),
      'PUT',
      '/admin/audit-sinks/siem',
      { kind: 'webhook', url: sinkUrl, credential: 'sink-secret', batch_size: 5 },
      admin,
    );
    expect(created).toEqual({
      status: 201,
      body: {
        id: 'siem',
        kind: 'webhook',
        url: sinkUrl,
        credential: 'set',
        batch_size: 5,
        delivered_seq: 0,
        failures: 0,
        last_error: null,
      },
    });
    expect(
      (
        await send(
          first(),
          'GET',
          '/admin/audit-sinks',
          undefined,
          await bearerOf(first(), 'ops-console', 'baton:audit'),
        )
      ).status,
    ).toBe(403);
  });

  it('delivers every entry of the tenant once, in order, from one instance of three', async () => {
    await issue(12);
    const expected = await acmeSequences();
    await until(() => sink.sequences().length >= expected.length);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const delivered = sink.sequences();
    // Every entry once (no instance delivered what another did), in sequence order.
    expect(delivered.slice(0, expected.length)).toEqual(expected);
    expect(new Set(delivered).size).toBe(delivered.length);
    const [batch] = sink.state.batches;
    expect(batch?.headers.authorization).toBe('Bearer sink-secret');
    expect(batch?.headers['content-type']).toBe('application/x-ndjson');
    for (const b of sink.state.batches) {
      expect(b.events.length).toBeLessThanOrEqual(5);
      for (const event of b.events) expect(ocsfErrors(event as unknown as Record<string, unknown>)).toEqual([]);
    }
  });

  it(
    'loses nothing while the sink is down for 30 s, and delivers in order once it recovers',
    { timeout: 120_000 },
    async () => {
      sink.state.failing = true;
      // Down for thirty seconds (retried every 100–400 ms meanwhile) while Baton keeps issuing.
      const downUntil = Date.now() + 30_000;
      while (Date.now() < downUntil) {
        await issue(3);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      expect(sink.state.refused).toBeGreaterThanOrEqual(3);
      const failures = (await Promise.all(instances.map((i) => metric(i, 'baton_audit_sink_failures_total')))).reduce(
        (a, b) => a + b,
      );
      expect(failures).toBeGreaterThanOrEqual(3);
      const lag = Math.max(...(await Promise.all(instances.map((i) => metric(i, 'baton_audit_sink_lag_seconds')))));
      expect(lag).toBeGreaterThan(0);
      sink.state.failing = false;
      const expected = await acmeSequences();
      await until(() => sink.sequences().length >= expected.length);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const delivered = sink.sequences();
      expect(delivered).toEqual(expected);
      const retries = (await Promise.all(instances.map((i) => metric(i, 'baton_audit_sink_retries_total')))).reduce(
        (a, b) => a + b,
      );
      expect(retries).toBeGreaterThanOrEqual(1);
      const admin = await bearerOf(first(), 'ops-console', 'baton:admin');
      const listed = await send(first(), 'GET', '/admin/audit-sinks', undefined, admin);
      expect(listed.body).toMatchObject({ items: [{ id: 'siem', failures: 0, last_error: null }] });
      expect(
        ((listed.body as { items: { delivered_seq: number }[] }).items[0]?.delivered_seq ?? 0) >=
          (expected.at(-1) as number),
      ).toBe(true);
    },
  );

  it('goes on from the cursor on another instance when the lease holders stop', async () => {
    // Two of three stop (one of them held the lease, or none did): the last one takes over.
    const stopping = instances.splice(0, 2);
    await Promise.all(stopping.map((i) => i.close()));
    await issue(7);
    const expected = await acmeSequences();
    await until(() => sink.sequences().length >= expected.length);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sink.sequences()).toEqual(expected);
  });

  it('is removed by the operator, audited', async () => {
    const admin = await bearerOf(first(), 'ops-console', 'baton:admin');
    expect(await send(first(), 'DELETE', '/admin/audit-sinks/siem', undefined, admin)).toEqual({
      status: 204,
      body: null,
    });
    expect(await send(first(), 'DELETE', '/admin/audit-sinks/siem', undefined, admin)).toEqual({
      status: 404,
      body: { error: 'not_found', error_description: 'no audit sink "siem" in your tenant' },
    });
    const auditor = await bearerOf(first(), 'ops-console', 'baton:audit');
    const text = await (await fetch(`${first().url}/audit/entries?limit=10000`, { headers: auditor })).text();
    const reasons = text
      .split('\n')
      .filter((l) => l.includes('"canonical"'))
      .map(
        (l) =>
          JSON.parse((JSON.parse(l) as { canonical: string }).canonical) as {
            type: string;
            decision: string;
            reason: string;
          },
      )
      .filter((e) => e.type === 'registry.change')
      .map((e) => [e.decision, e.reason]);
    expect(reasons).toContainEqual(['applied', `created audit sink "siem" (webhook ${sinkUrl})`]);
    expect(reasons).toContainEqual(['applied', 'removed audit sink "siem"']);
    expect(reasons).toContainEqual([
      'refused',
      'audit sink "siem": invalid_request: url must be an https URL (http only to localhost)',
    ]);
  });
});
