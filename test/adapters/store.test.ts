import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, migrations } from '../../src/adapters/db/migrations.js';
import { openPglite } from '../../src/adapters/db/pglite.js';
import type { Database } from '../../src/adapters/db/sql.js';
import { createAuditReader } from '../../src/adapters/db/audit-reader.js';
import { createAuditWriter, unrecordable } from '../../src/adapters/db/audit-writer.js';
import { createSqlStore, purgeUsedAssertions } from '../../src/adapters/db/sql-store.js';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { systemClock } from '../../src/adapters/system-clock.js';
import type { AuditEvent, AuditRecord } from '../../src/core/audit/chain.js';
import { OAuthError, StorageUnavailableError } from '../../src/core/errors.js';
import type { Store, TokenLineage } from '../../src/core/ports.js';
import { openIsolatedPostgres, testDatabaseUrl } from '../support/database.js';

const backends: [string, () => Promise<Database>, boolean][] = [
  ['PGlite (embedded)', () => openPglite(undefined), false],
  [
    'PostgreSQL (BATON_TEST_DATABASE_URL)',
    () => openIsolatedPostgres(testDatabaseUrl as string),
    testDatabaseUrl === undefined,
  ],
];

describe.each(backends)('store on %s', (_name, open, skip) => {
  let db: Database;
  let store: Store;
  beforeAll(async () => {
    if (skip) return;
    db = await open();
    expect(await migrate(db.sql)).toEqual(migrations.map((m) => m.version));
    store = createSqlStore(db.sql);
  });
  afterAll(async () => {
    await db?.close();
  });

  it.skipIf(skip)('migrates once, also when run again or concurrently', async () => {
    expect(await Promise.all([migrate(db.sql), migrate(db.sql)])).toEqual([[], []]);
    const rows = await db.sql<{ version: number }>`SELECT version FROM baton_migrations ORDER BY version`;
    expect(rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
  });

  it.skipIf(skip)('accepts an assertion id once per issuer and tenant', async () => {
    const use = { tenant: 'acme', issuer: 'orchestrator', jti: 'j-1', expiresAt: new Date(Date.now() + 60_000) };
    expect(await store.consumeAssertion(use)).toBe(true);
    expect(await store.consumeAssertion(use)).toBe(false);
    expect(await store.consumeAssertion({ ...use, issuer: 'payments-subagent' })).toBe(true);
    expect(await store.consumeAssertion({ ...use, tenant: 'globex' })).toBe(true);
  });

  it.skipIf(skip)('purges the ids of assertions expired before a time; the others still refuse a replay', async () => {
    const expired = {
      tenant: 'acme',
      issuer: 'orchestrator',
      jti: 'old-1',
      expiresAt: new Date(Date.now() - 3_600_000),
    };
    const live = { tenant: 'acme', issuer: 'orchestrator', jti: 'live-1', expiresAt: new Date(Date.now() + 60_000) };
    expect([await store.consumeAssertion(expired), await store.consumeAssertion(live)]).toEqual([true, true]);
    expect(await purgeUsedAssertions(db.sql, new Date(Date.now() - 60_000))).toBe(1);
    expect(await purgeUsedAssertions(db.sql, new Date(Date.now() - 60_000))).toBe(0);
    expect(await store.consumeAssertion(live)).toBe(false);
    expect(await store.consumeAssertion(expired)).toBe(true);
  });

  it.skipIf(skip)('lets exactly one of many concurrent uses of an assertion id through', async () => {
    const use = { tenant: 'acme', issuer: 'orchestrator', jti: 'race', expiresAt: new Date(Date.now() + 60_000) };
    const results = await Promise.all(Array.from({ length: 20 }, () => store.consumeAssertion(use)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it.skipIf(skip)('records and finds token lineage, scoped by tenant', async () => {
    const root = {
      tenant: 'acme',
      jti: 't-root',
      parentJti: null,
      rootGrant: 't-root',
      subject: 'alice',
      actor: 'orchestrator',
      clientId: 'agent-platform',
      expiresAt: new Date('2030-01-01T00:00:00Z'),
    };
    const child = { ...root, jti: 't-child', parentJti: 't-root', actor: 'payments-subagent' };
    const audit = createAuditWriter(db.sql, { sha256: sha256Hex, clock: systemClock });
    await audit.append({ tenant: 'acme', type: 'token.exchange', decision: 'granted', jti: root.jti }, root);
    await audit.append({ tenant: 'acme', type: 'token.exchange', decision: 'granted', jti: child.jti }, child);
    expect(await store.findToken('acme', 't-root')).toEqual(root);
    expect(await store.findToken('acme', 't-child')).toEqual(child);
    expect(await store.findToken('globex', 't-root')).toBeUndefined();
    expect(await store.findToken('acme', 'missing')).toBeUndefined();
  });

  it.skipIf(skip)('reports a database that is gone as StorageUnavailableError', async () => {
    const gone = await open();
    await migrate(gone.sql);
    await gone.close();
    const orphan = createSqlStore(gone.sql);
    await expect(orphan.findToken('acme', 'x')).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(
      orphan.consumeAssertion({ tenant: 'acme', issuer: 'a', jti: 'j', expiresAt: new Date() }),
    ).rejects.toBeInstanceOf(StorageUnavailableError);
  });

  it.skipIf(skip)(
    'appends concurrent entries to one chain with contiguous sequence numbers, and verifies it',
    async () => {
      const audit = createAuditWriter(db.sql, { sha256: sha256Hex, clock: systemClock, maxBatch: 7 });
      const before = await createAuditReader(db.sql, sha256Hex).head();
      const records = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          audit.append({
            tenant: i % 2 === 0 ? 'acme' : 'globex',
            type: 'decision',
            decision: 'allow',
            action_id: `a-${i}`,
          }),
        ),
      );
      expect(records.map((r) => r.seq).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 50 }, (_, i) => before.seq + i + 1),
      );
      const reader = createAuditReader(db.sql, sha256Hex);
      expect(await reader.verify(1, before.seq + 50)).toEqual({ valid: true, entries: before.seq + 50 });
      const lines = await reader.exportLines('acme', before.seq + 1, 4);
      expect(lines.map((l) => ('redacted' in l ? 'redacted' : JSON.parse(l.canonical as string).tenant))).toEqual([
        'acme',
        'redacted',
        'acme',
        'redacted',
      ]);
    },
  );

  it.skipIf(skip)(
    'keeps one contiguous chain when two writers (two instances) append at once, each chaining ahead on a head the other moves',
    async () => {
      const reader = createAuditReader(db.sql, sha256Hex);
      const before = await reader.head();
      const writers = [
        createAuditWriter(db.sql, { sha256: sha256Hex, clock: systemClock, maxBatch: 5 }),
        createAuditWriter(db.sql, { sha256: sha256Hex, clock: systemClock, maxBatch: 5 }),
      ];
      const rounds = await Promise.all(
        writers.map(async (writer, w) => {
          const seqs: number[] = [];
          for (let round = 0; round < 4; round++) {
            const records = await Promise.all(
              Array.from({ length: 12 }, (_, i) =>
                writer.append({
                  tenant: 'acme',
                  type: 'decision',
                  decision: 'allow',
                  action_id: `w${w}-${round}-${i}`,
                }),
              ),
            );
            seqs.push(...records.map((r) => r.seq));
          }
          return seqs;
        }),
      );
      // Each writer's entries keep the order they were appended in.
      for (const seqs of rounds) expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(rounds.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 96 }, (_, i) => before.seq + i + 1));
      expect(await reader.verify(1, before.seq + 96)).toEqual({ valid: true, entries: before.seq + 96 });
    },
  );

  it.skipIf(skip)(
    'writes a batch only on the head it was chained on, and only if it continues the chain exactly',
    async () => {
      const reader = createAuditReader(db.sql, sha256Hex);
      const head = await reader.head();
      const row = (seq: number, prev: string, hash: string) => ({
        seq,
        tenant: 'acme',
        type: 'decision',
        action_id: null,
        jti: null,
        root_grant: null,
        recorded_at: '2026-11-24T00:00:00.000Z',
        canonical: '{}',
        prev_hash: prev,
        hash,
      });
      const call = (after: { seq: number; hash: string }, last: { seq: number; hash: string }, rows: object[]) =>
        db.sql<{
          appended: boolean;
          head_seq: string | number;
          head_hash: string;
        }>`SELECT appended, head_seq, head_hash FROM baton_audit_append(${after.seq}, ${after.hash}, ${last.seq}, ${last.hash}, ${JSON.stringify(rows)}, ${null})`;
      const stale = { seq: head.seq - 1, hash: 'a'.repeat(64) };
      const [moved] = await call(stale, { seq: head.seq, hash: 'b'.repeat(64) }, [
        row(head.seq, stale.hash, 'b'.repeat(64)),
      ]);
      expect({ appended: moved?.appended, seq: Number(moved?.head_seq), hash: moved?.head_hash }).toEqual({
        appended: false,
        seq: head.seq,
        hash: head.hash,
      });
      const next = head.seq + 1;
      const refusals = [
        [
          { seq: next + 1, hash: 'c'.repeat(64) },
          [row(next, head.hash, 'b'.repeat(64)), row(next + 2, 'b'.repeat(64), 'c'.repeat(64))],
        ], // a gap
        [{ seq: next, hash: 'b'.repeat(64) }, [row(next, 'f'.repeat(64), 'b'.repeat(64))]], // not linked to the head
        [{ seq: next, hash: 'c'.repeat(64) }, [row(next, head.hash, 'b'.repeat(64))]], // ends on another hash
        [{ seq: next + 1, hash: 'b'.repeat(64) }, [row(next, head.hash, 'b'.repeat(64))]], // fewer entries than it claims
      ] as const;
      for (const [last, rows] of refusals)
        await expect(call(head, last, [...rows])).rejects.toThrow(
          `audit batch does not continue the chain from ${head.seq} to ${last.seq}`,
        );
      expect(await reader.head()).toEqual(head);
      expect(
        Number(
          (await db.sql<{ n: string | number }>`SELECT count(*) AS n FROM audit_log WHERE seq > ${head.seq}`)[0]?.n,
        ),
      ).toBe(0);
    },
  );

  it.skipIf(skip)(
    'verifies a log longer than a page, reading ahead, and names a changed entry in a later page',
    async () => {
      const audit = createAuditWriter(db.sql, { sha256: sha256Hex, clock: systemClock });
      // Pages hold 5,000 entries: this log spans three.
      await Promise.all(
        Array.from({ length: 10_500 }, (_, i) =>
          audit.append({ tenant: 'acme', type: 'decision', decision: 'allow', action_id: `p-${i}` }),
        ),
      );
      const reader = createAuditReader(db.sql, sha256Hex);
      const head = await reader.head();
      expect(await reader.verify(1, head.seq)).toEqual({ valid: true, entries: head.seq });
      expect(await reader.verify(head.seq - 10_400, head.seq + 10)).toEqual({ valid: true, entries: 10_401 });
      const target = head.seq - 100;
      await db.sql.begin(async (tx) => {
        await tx.script('SET LOCAL session_replication_role = replica');
        await tx`UPDATE audit_log SET canonical = replace(canonical, '"allow"', '"deny"') WHERE seq = ${target}`;
      });
      expect(await reader.verify(1, head.seq)).toEqual({
        valid: false,
        entries: target - 1,
        seq: target,
        reason: 'hash does not match its content',
      });
    },
  );

  it.skipIf(skip)('recomputes in the database the very hash Baton chained, non-ASCII text included', async () => {
    const audit = createAuditWriter(db.sql, { sha256: sha256Hex, clock: systemClock });
    const reasons = ['transfer 50 € to Zoë', '東京 office, 🚀 launch', 'tab\tand\nnewline "quoted" \\ back'];
    await Promise.all(
      reasons.map((reason, i) =>
        audit.append({ tenant: 'acme', type: 'decision', decision: 'allow', action_id: `u-${i}`, reason }),
      ),
    );
    const reader = createAuditReader(db.sql, sha256Hex);
    const head = await reader.head();
    expect(await reader.verify(head.seq - 2, head.seq)).toEqual({ valid: true, entries: 3 });
    await db.sql.begin(async (tx) => {
      await tx.script('SET LOCAL session_replication_role = replica');
      await tx`UPDATE audit_log SET canonical = replace(canonical, 'Zoë', 'Zoe') WHERE seq = ${head.seq - 2}`;
    });
    expect(await reader.verify(head.seq - 2, head.seq)).toEqual({
      valid: false,
      entries: 0,
      seq: head.seq - 2,
      reason: 'hash does not match its content',
    });
  });

  const lineageOf = (jti: string, subject = 'alice') => ({
    tenant: 'acme',
    jti,
    parentJti: null,
    rootGrant: jti,
    subject,
    actor: 'orchestrator',
    clientId: 'agent-platform',
    expiresAt: new Date('2030-01-01T00:00:00Z'),
  });

  it.skipIf(skip)(
    'refuses an entry whose columns cannot hold its text to its own caller alone; the callers it was appended with commit',
    async () => {
      const audit = createAuditWriter(db.sql, { sha256: sha256Hex, clock: systemClock });
      const reader = createAuditReader(db.sql, sha256Hex);
      const before = await reader.head();
      const granted = { type: 'token.exchange', decision: 'granted', user: 'alice' } as const;
      const bad: [string, AuditEvent, TokenLineage | undefined, string][] = [
        [
          'a NUL in a jti',
          { tenant: 'acme', ...granted, jti: 'j\u0000' },
          undefined,
          'audit entry.jti contains a NUL character',
        ],
        [
          'an unpaired surrogate in a root grant',
          { tenant: 'globex', ...granted, root_grant: 'g\uD800' },
          undefined,
          'audit entry.root_grant contains an unpaired UTF-16 surrogate',
        ],
        [
          'a NUL in an action id',
          { tenant: 'acme', type: 'decision', decision: 'allow', action_id: '\u0000' },
          undefined,
          'audit entry.action_id contains a NUL character',
        ],
        [
          'a NUL in a lineage subject',
          { tenant: 'acme', ...granted, jti: 'bad-subject-1' },
          lineageOf('bad-subject-1', 'al\u0000ice'),
          'audit lineage.subject contains a NUL character',
        ],
        [
          'an unpaired surrogate in a lineage subject',
          { tenant: 'acme', ...granted, jti: 'bad-subject-2' },
          lineageOf('bad-subject-2', 'al\uDC00ice'),
          'audit lineage.subject contains an unpaired UTF-16 surrogate',
        ],
      ];
      // Appended in one turn, the bad ones between good ones of both tenants: one batch for all.
      const appends = Array.from({ length: 30 }, (_, i) => {
        const good = audit.append(
          { tenant: i % 2 === 0 ? 'acme' : 'globex', ...granted, jti: `batch-good-${i}` },
          i % 2 === 0 ? lineageOf(`batch-good-${i}`) : undefined,
        );
        const [name, event, lineage, detail] = bad[i % 10] ?? [];
        return name === undefined
          ? [good]
          : [
              good,
              audit
                .append(event as AuditEvent, lineage)
                .then(
                  () => 'committed',
                  (error: unknown) =>
                    error instanceof OAuthError
                      ? `${error.code}: ${error.description} (${error.detail ?? ''})`
                      : String(error),
                )
                .then((outcome) => ({ name, outcome, expected: `invalid_request: ${unrecordable} (${detail})` })),
            ];
      });
      const settled = await Promise.all(appends.flat());
      const refusals = settled.filter((r): r is { name: string; outcome: string; expected: string } => 'name' in r);
      expect(refusals.map((r) => r.outcome)).toEqual(refusals.map((r) => r.expected));
      const records = settled.filter((r): r is AuditRecord => 'seq' in r);
      expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 30 }, (_, i) => before.seq + i + 1));
      expect(await store.findToken('acme', 'batch-good-28')).toEqual(lineageOf('batch-good-28'));
      expect(await store.findToken('acme', 'bad-subject-1')).toBeUndefined();
      expect(await reader.verify(before.seq + 1, before.seq + 30)).toEqual({ valid: true, entries: 30 });
    },
  );

  it.skipIf(skip)(
    'keeps text outside the columns in the entry, escaped as RFC 8785 writes it, and verifies it',
    async () => {
      const audit = createAuditWriter(db.sql, { sha256: sha256Hex, clock: systemClock });
      const record = await audit.append({
        tenant: 'acme',
        type: 'token.request',
        decision: 'refused',
        reason: 'invalid_client: client authentication failed (unknown client a\u0000\uD800)',
      });
      const [row] = await db.sql<{ canonical: string }>`SELECT canonical FROM audit_log WHERE seq = ${record.seq}`;
      expect(row?.canonical).toContain('(unknown client a\\u0000\\ud800)');
      expect(await createAuditReader(db.sql, sha256Hex).verify(record.seq, record.seq)).toEqual({
        valid: true,
        entries: 1,
      });
    },
  );

  it.skipIf(skip)(
    'commits the rest of a batch the database refuses for one row, entry by entry and in order; only that entry fails',
    async () => {
      const audit = createAuditWriter(db.sql, { sha256: sha256Hex, clock: systemClock });
      const reader = createAuditReader(db.sql, sha256Hex);
      const before = await reader.head();
      // The second lineage row repeats a token id (the database's primary key refuses it): a
      // failure no check before the database foresees.
      const outcomes = await Promise.all(
        Array.from({ length: 24 }, (_, i) => {
          const jti = i === 17 ? 'twice' : i === 5 ? 'twice' : `isolated-${i}`;
          return audit
            .append(
              { tenant: i % 2 === 0 ? 'acme' : 'globex', type: 'token.exchange', decision: 'granted', jti },
              lineageOf(jti),
            )
            .then(
              (r) => r.seq,
              (error: unknown) => (error instanceof StorageUnavailableError ? 'unavailable' : String(error)),
            );
        }),
      );
      expect(outcomes).toEqual(
        Array.from({ length: 24 }, (_, i) => (i === 17 ? 'unavailable' : before.seq + 1 + i - (i > 17 ? 1 : 0))),
      );
      expect(await reader.verify(before.seq + 1, before.seq + 23)).toEqual({ valid: true, entries: 23 });
      expect(await reader.head()).toEqual({ seq: before.seq + 23, hash: expect.any(String) });
    },
  );

  it.skipIf(skip)('refuses UPDATE, DELETE and TRUNCATE on the log', async () => {
    await expect(db.sql`UPDATE audit_log SET tenant = 'x' WHERE seq = 1`).rejects.toThrow(
      'audit_log is append-only: UPDATE refused',
    );
    await expect(db.sql`DELETE FROM audit_log WHERE seq = 1`).rejects.toThrow(
      'audit_log is append-only: DELETE refused',
    );
    await expect(db.sql.script('TRUNCATE audit_log')).rejects.toThrow('audit_log is append-only: TRUNCATE refused');
  });

  it.skipIf(skip)('finds a row changed by a superuser at its sequence number, and a deleted row as a gap', async () => {
    const reader = createAuditReader(db.sql, sha256Hex);
    const head = await reader.head();
    // A superuser can switch triggers off; verification still catches the change.
    await db.sql.begin(async (tx) => {
      await tx.script('SET LOCAL session_replication_role = replica');
      await tx`UPDATE audit_log SET canonical = replace(canonical, '"allow"', '"deny"') WHERE seq = 3`;
    });
    expect(await reader.verify(1, head.seq)).toEqual({
      valid: false,
      entries: 2,
      seq: 3,
      reason: 'hash does not match its content',
    });
    await db.sql.begin(async (tx) => {
      await tx.script('SET LOCAL session_replication_role = replica');
      await tx`DELETE FROM audit_log WHERE seq = 5`;
    });
    expect(await reader.verify(4, head.seq)).toEqual({
      valid: false,
      entries: 1,
      seq: 5,
      reason: `entries 5–5 are missing`,
    });
  });
});
