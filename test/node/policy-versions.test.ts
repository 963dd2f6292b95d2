import { createHash, randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/adapters/db/migrations.js';
import { sqlPolicyStore } from '../../src/adapters/db/policy-store.js';
import { openPglite } from '../../src/adapters/db/pglite.js';
import { openPostgres } from '../../src/adapters/db/postgres.js';
import type { Database } from '../../src/adapters/db/sql.js';
import { generateSigningKeys } from '../../src/adapters/signing-keys.js';
import { policySetCanonical } from '../../src/core/decisions/policy-set.js';
import type { NewPolicyVersion } from '../../src/core/ports.js';
import { loadConfig } from '../../src/node/config.js';
import { startBaton, type RunningBaton } from '../../src/node/server.js';
import { basic, bearerOf, captureLogger, demoChain, postJson, type CapturedLogger } from '../support/baton.js';
import { testDatabaseUrl } from '../support/database.js';
import { folderDigest, shippedDigest } from '../support/policy-digest.js';

const skip = testDatabaseUrl === undefined;
const shippedIds = [
  'delegate-within-tenant',
  'max-chain-depth',
  'transfer-up-to-100',
  'transfer-in-account-currency',
  'read-payments',
  'read-calendar',
];
const schema = `baton_test_${randomUUID().replaceAll('-', '')}`;

afterAll(async () => {
  if (skip) return;
  const admin = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {} });
  await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}_store" CASCADE`);
  await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
});

const set = (n: number, by = 'test'): NewPolicyVersion => ({
  files: { [`p${n}.cedar`]: `// ${n}\n`, 'x.cedarschema': 'entity User;' },
  digest: `d${n}`,
  policyIds: [`policy-${n}`],
  createdBy: by,
});

const backends: [string, () => Promise<Database>][] = [
  ['PGlite', () => openPglite(undefined)],
  ...(skip
    ? []
    : ([['PostgreSQL', () => openPostgres(testDatabaseUrl as string, { schema: `${schema}_store`, max: 8 })]] as [
        string,
        () => Promise<Database>,
      ][])),
];

describe.each(backends)('policy versions in %s', (_name, open) => {
  let db: Database;
  beforeAll(async () => {
    db = await open();
    await migrate(db.sql);
  });
  afterAll(async () => {
    await db?.close();
  });

  it('is seeded once by instances starting together, and keeps the first seed', async () => {
    const store = sqlPolicyStore(db.sql);
    expect(await store.active()).toBeUndefined();
    const seeded = await Promise.all([1, 2, 3, 4, 5].map((n) => sqlPolicyStore(db.sql).seed(set(n, `seed-${n}`))));
    expect(new Set(seeded.map((v) => v.digest)).size).toBe(1);
    expect(seeded.every((v) => v.version === 1 && v.active)).toBe(true);
    expect((await store.list()).length).toBe(1);
    expect((await store.seed(set(9))).digest).toBe(seeded[0]?.digest);
  });

  it('stores a new digest as the next version and activates it; the active digest stores nothing', async () => {
    const store = sqlPolicyStore(db.sql);
    const first = (await store.active())?.digest as string;
    const stored = await store.store(set(10, 'ops'));
    expect({ from: stored.from?.version, to: stored.to.version, changed: stored.changed }).toEqual({
      from: 1,
      to: 2,
      changed: true,
    });
    const again = await store.store(set(10, 'ops'));
    expect({ to: again.to.version, changed: again.changed }).toEqual({ to: 2, changed: false });
    expect((await store.list()).map((v) => [v.version, v.digest, v.active, v.createdBy, v.policyIds])).toEqual([
      [2, 'd10', true, 'ops', ['policy-10']],
      [1, first, false, expect.stringMatching(/^seed-/), [expect.stringMatching(/^policy-/)]],
    ]);
  });

  it('numbers versions stored concurrently one after the other', async () => {
    const store = sqlPolicyStore(db.sql);
    const results = await Promise.all([20, 21, 22, 23].map((n) => store.store(set(n))));
    expect(results.map((r) => r.to.version).sort()).toEqual([3, 4, 5, 6]);
    // Each one saw the one before it as active: the chain of from → to has no fork.
    const froms = results.map((r) => r.from?.version).sort();
    expect(froms).toEqual([2, 3, 4, 5]);
  });

  it('activates a stored version, and nothing for an unknown one', async () => {
    const store = sqlPolicyStore(db.sql);
    const rolled = await store.activate(2);
    expect({ from: rolled?.from?.version, to: rolled?.to.version, digest: rolled?.to.digest }).toEqual({
      from: 6,
      to: 2,
      digest: 'd10',
    });
    expect((await store.active())?.version).toBe(2);
    expect(await store.activate(99)).toBeUndefined();
    expect(await store.activate(Number.MAX_SAFE_INTEGER)).toBeUndefined();
    expect(await store.get(99)).toBeUndefined();
    expect((await store.active())?.version).toBe(2);
  });

  it('keeps every file exactly, whatever its name or text, and its digest recomputes from what is stored', async () => {
    const store = sqlPolicyStore(db.sql);
    const odd = Object.create(null) as Record<string, string>;
    odd.__proto__ = 'a NUL \u0000 and an unpaired \ud800 surrogate';
    Object.assign(odd, { constructor: 'x' });
    odd['é.cedar'] = '😀\r\n';
    odd['entities.json'] = '[]';
    const digest = createHash('sha256').update(policySetCanonical(odd), 'utf8').digest('hex');
    const { to } = await store.store({ files: odd, digest, policyIds: [], createdBy: 'ops' });
    const read = await store.get(to.version);
    expect(Object.entries(read?.files ?? {})).toEqual(Object.entries(odd).sort(([a], [b]) => (a < b ? -1 : 1)));
    const [row] = await db.sql<{ ok: boolean }>`
      SELECT encode(sha256(convert_to(files, 'UTF8')), 'hex') = digest AS ok FROM policy_versions WHERE version = ${to.version}`;
    expect(row?.ok).toBe(true);
  });
});

describe.skipIf(skip)('one policy version on three instances', () => {
  const policyDir = mkdtempSync(join(tmpdir(), 'baton-policies-'));
  cpSync('policies', policyDir, { recursive: true });
  const issuer = 'http://baton.test';
  const databases: Database[] = [];
  let a: RunningBaton;
  let b: RunningBaton;
  /** An instance whose database cannot LISTEN (a pooler in transaction mode): it follows by its poll alone. */
  let c: RunningBaton;

  let start: (listen?: boolean, logger?: CapturedLogger) => Promise<RunningBaton>;

  beforeAll(async () => {
    const signing = JSON.stringify(await generateSigningKeys('EdDSA'));
    const audit = JSON.stringify(await generateSigningKeys('EdDSA'));
    start = async (listen = true, logger = captureLogger()) => {
      const opened = await openPostgres(testDatabaseUrl as string, { schema, max: 4 });
      databases.push(opened);
      const database: Database = listen
        ? opened
        : { ...opened, listen: () => Promise.reject(new Error('LISTEN is not supported here')) };
      const config = loadConfig({
        PORT: '0',
        BATON_ISSUER: issuer,
        BATON_SIGNING_KEYS: signing,
        BATON_AUDIT_KEYS: audit,
        BATON_CHECKPOINT_DIR: mkdtempSync(join(tmpdir(), 'baton-checkpoints-')),
        BATON_POLICY_DIR: policyDir,
      });
      return startBaton(config, { database, logger });
    };
    // Started together: one seeds the store from the folder, the others load that version.
    [a, b, c] = await Promise.all([start(), start(), start(false)]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), c?.close()]);
    await Promise.all(databases.map((d) => d.close()));
  });

  const at = (baton: RunningBaton) => ({ url: baton.url, issuer });
  const transfer = (baton: RunningBaton, token: string, amount: number) =>
    postJson(
      at(baton),
      '/authorize',
      {
        token,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount, currency: 'EUR' },
      },
      { authorization: basic('payments') },
    );
  /** Milliseconds until `baton` decides `amount` as `decision`; fails past the deadline. */
  async function until(baton: RunningBaton, token: string, amount: number, decision: string, ms = 1000) {
    const started = performance.now();
    for (;;) {
      const answer = await transfer(baton, token, amount);
      const elapsed = performance.now() - started;
      if (answer.body.decision === decision) return elapsed;
      if (elapsed > ms) throw new Error(`still ${String(answer.body.decision)} after ${Math.round(elapsed)} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  const sql = () => (databases[0] as Database).sql;
  const digestsOfDecisions = async (after: number) =>
    (
      await sql()<{ canonical: string }>`
        SELECT canonical FROM audit_log WHERE seq > ${after} AND type = 'decision' ORDER BY seq`
    ).map((r) => (JSON.parse(r.canonical) as { policy_digest: string }).policy_digest);
  const head = async () =>
    Number((await sql()<{ seq: string }>`SELECT coalesce(max(seq), 0) AS seq FROM audit_log`)[0]?.seq);

  it('starts every instance on the one seeded version', async () => {
    expect([a, b, c].map((x) => [x.policies().version, x.policies().digest])).toEqual([
      [1, shippedDigest],
      [1, shippedDigest],
      [1, shippedDigest],
    ]);
    expect((await sql()<{ n: string }>`SELECT count(*) AS n FROM policy_versions`)[0]?.n).toBe('1');
  });

  it('puts a reload on one instance in force on the other within 1 s, and a rollback on the other back on the first', async () => {
    const [, token] = await demoChain(at(a));
    expect((await transfer(b, token, 150)).body.decision).toBe('deny');
    writeFileSync(
      join(policyDir, 'payments.cedar'),
      '@id("transfer-up-to-200")\npermit (principal, action == Action::"payments:transfer", resource is Account)\nwhen { context has amount && context.amount.lessThanOrEqual(decimal("200.0")) };\n',
    );
    const before = await head();
    const reloaded = await postJson(
      at(a),
      '/admin/policies/reload',
      {},
      await bearerOf(at(a), 'ops-console', 'baton:admin'),
    );
    const newDigest = folderDigest(policyDir);
    expect({ status: reloaded.status, body: reloaded.body }).toEqual({
      status: 200,
      body: {
        status: 'reloaded',
        version: 2,
        digest: newDigest,
        policies: ['delegate-within-tenant', 'max-chain-depth', 'transfer-up-to-200'],
        previous: { version: 1, digest: shippedDigest },
      },
    });
    // The reloading instance at once; the other within a second.
    expect((await transfer(a, token, 150)).body.decision).toBe('allow');
    const reloadMs = await until(b, token, 150, 'allow');
    await until(c, token, 150, 'allow');
    expect(b.policies().digest).toBe(newDigest);
    expect(await digestsOfDecisions(before)).toEqual(expect.arrayContaining([newDigest]));
    expect((await digestsOfDecisions(before))?.at(-1)).toBe(newDigest);

    const rolled = await postJson(
      at(b),
      '/admin/policies/rollback',
      { version: 1 },
      await bearerOf(at(b), 'ops-console', 'baton:admin'),
    );
    expect({ status: rolled.status, body: rolled.body }).toEqual({
      status: 200,
      body: {
        status: 'rolled back',
        version: 1,
        digest: shippedDigest,
        policies: shippedIds,
        previous: { version: 2, digest: newDigest },
      },
    });
    expect((await transfer(b, token, 150)).body.decision).toBe('deny');
    const rollbackMs = await until(a, token, 150, 'deny');
    await until(c, token, 150, 'deny');
    expect((await digestsOfDecisions(before))?.at(-1)).toBe(shippedDigest);
    // For the record (the assertion is the 1 s deadline above).
    console.info(
      `policy change in force on the other instance after ${Math.round(reloadMs)} ms (reload), ${Math.round(rollbackMs)} ms (rollback)`,
    );

    const listed = await fetch(`${b.url}/admin/policies/versions`, {
      headers: await bearerOf(at(b), 'ops-console', 'baton:admin'),
    });
    const body = (await listed.json()) as { versions: Record<string, unknown>[] };
    expect(body.versions.map((v) => [v.version, v.digest, v.active, v.created_by])).toEqual([
      [2, newDigest, false, 'ops-console'],
      [1, shippedDigest, true, `seed:${policyDir}`],
    ]);

    const reasons = (
      await sql()<{ canonical: string }>`
        SELECT canonical FROM audit_log WHERE seq > ${before} AND type IN ('policy.reload', 'policy.rollback') ORDER BY seq`
    ).map((r) => JSON.parse(r.canonical) as Record<string, unknown>);
    expect(reasons?.map((e) => [e.type, e.decision, e.tenant, e.client, e.policy_digest, e.reason])).toEqual([
      [
        'policy.reload',
        'applied',
        '*',
        'ops-console',
        newDigest,
        `${policyDir}: version 2 (${newDigest}) from version 1 (${shippedDigest}): delegate-within-tenant, max-chain-depth, transfer-up-to-200`,
      ],
      [
        'policy.rollback',
        'applied',
        '*',
        'ops-console',
        shippedDigest,
        `version 1 (${shippedDigest}) from version 2 (${newDigest}): ${shippedIds.join(', ')}`,
      ],
    ]);
  }, 30_000);

  it('puts each of 10 activations in force on the other two instances within 1 s (one by notification, one by its poll)', async () => {
    const [, token] = await demoChain(at(a));
    const admin = await bearerOf(at(a), 'ops-console', 'baton:admin');
    const times: Record<'notified' | 'polled', number[]> = { notified: [], polled: [] };
    for (let i = 0; i < 10; i++) {
      const version = i % 2 === 0 ? 2 : 1;
      const answer = await postJson(at(a), '/admin/policies/rollback', { version }, admin);
      expect(answer.status).toBe(200);
      const decision = version === 2 ? 'allow' : 'deny';
      const [notified, polled] = await Promise.all([until(b, token, 150, decision), until(c, token, 150, decision)]);
      times.notified.push(notified);
      times.polled.push(polled);
    }
    const summary = (ms: number[]) => {
      const sorted = [...ms].sort((x, y) => x - y);
      return `median ${Math.round(sorted[4] ?? 0)} ms, max ${Math.round(sorted[9] ?? 0)} ms`;
    };
    console.info(`in force on another instance: LISTEN ${summary(times.notified)}; poll only ${summary(times.polled)}`);
  }, 60_000);

  it('starts a new instance on the active version, warning that the folder differs from it', async () => {
    const logger = captureLogger();
    const d = await start(true, logger);
    try {
      const active = a.policies();
      expect([d.policies().version, d.policies().digest]).toEqual([active.version, active.digest]);
      expect(logger.lines.filter((l) => l.message.startsWith('the policy folder differs'))).toEqual([
        {
          level: 'warn',
          message: 'the policy folder differs from the active policy version, which stays in force',
          fields: {
            policy_dir: policyDir,
            version: active.version,
            digest: active.digest,
            folder_digest: folderDigest(policyDir),
            detail: 'reload (SIGHUP or POST /admin/policies/reload) to activate the folder for every instance',
          },
        },
      ]);
      expect(active.digest).not.toBe(folderDigest(policyDir));
    } finally {
      await d.close();
    }
  }, 30_000);

  it('refuses to roll back to a stored version this Baton does not accept, audited, the set in force everywhere unchanged', async () => {
    // As an older Baton might have stored it: a policy this one's strict validation refuses.
    const files = {
      'baton.cedarschema': readFileSync(join('policies', 'baton.cedarschema'), 'utf8'),
      'old.cedar':
        '@id("old")\npermit (principal, action == Action::"payments:transfer", resource)\nwhen { context.nonsense };\n',
    };
    const canonical = policySetCanonical(files);
    const digest = createHash('sha256').update(canonical).digest('hex');
    const [row] = await sql()<{ version: string }>`
      INSERT INTO policy_versions (version, digest, files, policy_ids, created_by)
      SELECT max(version) + 1, ${digest}, ${canonical}, ${['old']}, 'older-baton' FROM policy_versions
      RETURNING version`;
    const version = Number(row?.version);
    const inForce = a.policies().digest;
    const before = await head();
    const refused = await postJson(
      at(a),
      '/admin/policies/rollback',
      { version },
      await bearerOf(at(a), 'ops-console', 'baton:admin'),
    );
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_request');
    expect(refused.body.error_description).toMatch(
      new RegExp(
        `^the policy version was refused; the running set stays: invalid policy set:\\n {2}policy version ${version}/old\\.cedar:3: .*nonsense`,
      ),
    );
    const entries = (
      await sql()<{ canonical: string }>`
        SELECT canonical FROM audit_log WHERE seq > ${before} AND type = 'policy.rollback' ORDER BY seq`
    ).map((r) => JSON.parse(r.canonical) as Record<string, unknown>);
    expect(entries.map((e) => [e.decision, e.policy_digest])).toEqual([['refused', inForce]]);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect([a, b, c].map((x) => x.policies().digest)).toEqual([inForce, inForce, inForce]);
  }, 30_000);
});
