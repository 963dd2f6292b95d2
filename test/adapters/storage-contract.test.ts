import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlStorage } from '../../src/adapters/context.js';
import { createAuditReader } from '../../src/adapters/db/audit-reader.js';
import { createAuditWriter } from '../../src/adapters/db/audit-writer.js';
import { migrate } from '../../src/adapters/db/migrations.js';
import { openPglite } from '../../src/adapters/db/pglite.js';
import { createRevocations } from '../../src/adapters/db/revocation-store.js';
import type { Database } from '../../src/adapters/db/sql.js';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { systemClock } from '../../src/adapters/system-clock.js';
import { genesisHash } from '../../src/core/audit/chain.js';
import { signInPolicy } from '../../src/core/code-flow/sign-in-throttle.js';
import type { GrantDetail, TokenLineage } from '../../src/core/ports.js';
import { openIsolatedPostgres, testDatabaseUrl } from '../support/database.js';
import { memoryStorage, type MemoryStorage } from '../support/memory/storage.js';

// The in-memory storage the memory Baton runs on answers every call as the SQL adapters do: the
// same cases, with the same expected answers, on PGlite, PostgreSQL and in memory.
type Ports = Omit<MemoryStorage, 'state'>;
interface Backend {
  readonly ports: Ports;
  close(): Promise<void>;
}

async function onSql(open: () => Promise<Database>): Promise<Backend> {
  const database = await open();
  await migrate(database.sql);
  const revocations = await createRevocations(database.sql, {
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  const audit = createAuditWriter(database.sql, { sha256: sha256Hex, clock: systemClock });
  return {
    ports: {
      ...sqlStorage(database.sql, systemClock),
      revocations,
      audit,
      queries: createAuditReader(database.sql, sha256Hex),
    },
    async close() {
      revocations.stop();
      await audit.drain();
      await audit.close();
      await database.close();
    },
  };
}

const backends: [string, () => Promise<Backend>, boolean][] = [
  ['PGlite', () => onSql(() => openPglite(undefined)), false],
  [
    'PostgreSQL (BATON_TEST_DATABASE_URL)',
    () => onSql(() => openIsolatedPostgres(testDatabaseUrl as string)),
    testDatabaseUrl === undefined,
  ],
  ['memory', async () => ({ ports: memoryStorage(systemClock), close: async () => undefined }), false],
];

const inAMinute = () => new Date(Date.now() + 60_000);
const aMinuteAgo = () => new Date(Date.now() - 60_000);
const detail = (user = 'alice', agent: string | null = 'orchestrator'): GrantDetail => ({
  clientId: 'agent-platform',
  user,
  agent,
  scope: ['payments:read'],
  audience: ['https://payments.example'],
  authorizationDetails: [],
});
const token = (jti: string, extra: Partial<TokenLineage> = {}): TokenLineage => ({
  tenant: 'acme',
  jti,
  parentJti: null,
  rootGrant: jti,
  subject: 'alice',
  actor: 'orchestrator',
  clientId: 'agent-platform',
  expiresAt: inAMinute(),
  ...extra,
});
/** Polls until `check` holds (revocations reach an SQL adapter's memory within a second), or a second has passed. */
async function within(check: () => boolean | Promise<boolean>): Promise<boolean> {
  for (const started = Date.now(); Date.now() - started < 1500; await new Promise((resolve) => setTimeout(resolve, 50)))
    if (await check()) return true;
  return check();
}

describe.each(backends)('storage on %s', (_name, open, skip) => {
  let backend: Backend;
  let ports: Ports;
  beforeAll(async () => {
    if (skip) return;
    backend = await open();
    ports = backend.ports;
  });
  afterAll(async () => {
    await backend?.close();
  });
  /** Writes tokens' lineage as the token endpoint does: each with its audit entry. */
  const issue = async (...tokens: TokenLineage[]) => {
    for (const t of tokens)
      await ports.audit.append(
        {
          tenant: t.tenant,
          type: 'token.exchange',
          decision: 'granted',
          jti: t.jti,
          parent_jti: t.parentJti,
          root_grant: t.rootGrant,
        },
        t,
      );
  };
  const revokedOf = (jtis: readonly string[]) =>
    Promise.all(jtis.map((jti) => ports.revocations.isRevoked('acme', jti)));

  it.skipIf(skip)('takes an assertion id once per tenant and issuer', async () => {
    const use = { tenant: 'acme', issuer: 'orchestrator', jti: 'contract-assertion', expiresAt: inAMinute() };
    expect([
      await ports.store.consumeAssertion(use),
      await ports.store.consumeAssertion(use),
      await ports.store.consumeAssertion({ ...use, issuer: 'payments-subagent' }),
      await ports.store.consumeAssertion({ ...use, tenant: 'globex' }),
    ]).toEqual([true, false, true, true]);
  });

  it.skipIf(skip)('finds the lineage the audit log wrote with its entry, in its tenant only', async () => {
    const root = token('lineage-root');
    const child = token('lineage-child', { parentJti: root.jti, rootGrant: root.jti, actor: 'payments-subagent' });
    await issue(root, child);
    expect([
      await ports.store.findToken('acme', root.jti),
      await ports.store.findToken('acme', child.jti),
      await ports.store.findToken('globex', root.jti),
      await ports.store.findToken('acme', 'lineage-none'),
    ]).toEqual([root, child, undefined, undefined]);
  });

  it.skipIf(skip)(
    'redeems a code once, a replay is reused, an expired one is expired and then reused, an unknown one unknown',
    async () => {
      await ports.grants.saveCode('code-once', 'acme', 'grant-once', detail(), inAMinute());
      await ports.grants.saveCode('code-expired', 'acme', 'grant-expired', detail(), aMinuteAgo());
      expect(await ports.grants.redeemCode('code-once')).toEqual({
        status: 'ok',
        tenant: 'acme',
        grantId: 'grant-once',
        detail: detail(),
        expiresAt: expect.any(Date),
      });
      expect([
        await ports.grants.redeemCode('code-once'),
        await ports.grants.redeemCode('code-expired'),
        await ports.grants.redeemCode('code-expired'),
        await ports.grants.redeemCode('code-none'),
      ]).toEqual([
        { status: 'reused', tenant: 'acme', grantId: 'grant-once' },
        { status: 'expired' },
        { status: 'reused', tenant: 'acme', grantId: 'grant-expired' },
        { status: 'unknown' },
      ]);
    },
  );

  it.skipIf(skip)('redeems a refresh token once and finds it, used or not', async () => {
    await ports.grants.saveCode('code-family', 'acme', 'family', detail(), inAMinute());
    await ports.grants.saveRefresh('refresh-1', 'acme', 'family', detail(), inAMinute());
    expect(await ports.grants.redeemRefresh('refresh-1')).toMatchObject({
      status: 'ok',
      tenant: 'acme',
      grantId: 'family',
      detail: detail(),
    });
    expect([
      await ports.grants.redeemRefresh('refresh-1'),
      await ports.grants.findRefresh('refresh-1'),
      await ports.grants.findRefresh('refresh-none'),
    ]).toEqual([
      { status: 'reused', tenant: 'acme', grantId: 'family' },
      { tenant: 'acme', grantId: 'family', clientId: 'agent-platform' },
      undefined,
    ]);
  });

  it.skipIf(skip)(
    'revokes a grant as a whole: its unused code and refresh tokens, and its tokens issued before and after',
    async () => {
      await ports.grants.saveCode('code-whole', 'acme', 'whole', detail(), inAMinute());
      await ports.grants.saveRefresh('refresh-whole-used', 'acme', 'whole', detail(), inAMinute());
      await ports.grants.redeemRefresh('refresh-whole-used');
      await issue(
        token('whole-1', { rootGrant: 'whole' }),
        token('whole-2', { parentJti: 'whole-1', rootGrant: 'whole' }),
      );
      expect(new Set(await ports.revocations.revoke('acme', { kind: 'grant', grant: 'whole' }))).toEqual(
        new Set(['whole-1', 'whole-2']),
      );
      await ports.grants.saveRefresh('refresh-whole-later', 'acme', 'whole', detail(), inAMinute());
      await issue(token('whole-later', { rootGrant: 'whole' }));
      expect([
        await ports.grants.redeemCode('code-whole'),
        await ports.grants.redeemRefresh('refresh-whole-later'),
        await ports.grants.redeemRefresh('refresh-whole-used'),
      ]).toEqual([
        { status: 'revoked', tenant: 'acme', grantId: 'whole' },
        { status: 'revoked', tenant: 'acme', grantId: 'whole' },
        { status: 'reused', tenant: 'acme', grantId: 'whole' },
      ]);
      expect(await within(async () => (await revokedOf(['whole-1', 'whole-2', 'whole-later'])).every(Boolean))).toBe(
        true,
      );
    },
  );

  it.skipIf(skip)(
    'revokes a token and everything derived from it, transitively, once; not its parent or a sibling, nor an expired one',
    async () => {
      await issue(
        token('tree-root'),
        token('tree-a', { parentJti: 'tree-root', rootGrant: 'tree-root' }),
        token('tree-b', { parentJti: 'tree-root', rootGrant: 'tree-root' }),
        token('tree-a1', { parentJti: 'tree-a', rootGrant: 'tree-root' }),
        token('tree-a2', { parentJti: 'tree-a', rootGrant: 'tree-root', expiresAt: aMinuteAgo() }),
        token('tree-a21', { parentJti: 'tree-a2', rootGrant: 'tree-root' }),
      );
      expect(new Set(await ports.revocations.revoke('acme', { kind: 'token', jti: 'tree-a' }))).toEqual(
        new Set(['tree-a', 'tree-a1', 'tree-a21']),
      );
      expect(await ports.revocations.revoke('acme', { kind: 'token', jti: 'tree-a' })).toEqual([]);
      expect(await ports.revocations.revoke('globex', { kind: 'token', jti: 'tree-b' })).toEqual([]);
      expect(await revokedOf(['tree-root', 'tree-a', 'tree-b', 'tree-a1', 'tree-a2', 'tree-a21'])).toEqual([
        false,
        true,
        false,
        true,
        false,
        true,
      ]);
    },
  );

  it.skipIf(skip)(
    "revokes everything an agent holds or acts in, and a user's tokens, with their code-flow grants",
    async () => {
      await ports.grants.saveCode('code-kill-agent', 'acme', 'kill-agent', detail('dave', 'kill-bot'), inAMinute());
      await ports.grants.saveCode('code-kill-user', 'acme', 'kill-user', detail('erin', null), inAMinute());
      await ports.grants.saveCode(
        'code-kill-other',
        'acme',
        'kill-other',
        detail('frank', 'orchestrator'),
        inAMinute(),
      );
      await issue(
        token('kill-acts', { actor: 'kill-bot', subject: 'dave' }),
        token('kill-holds', { actor: null, subject: 'kill-bot' }),
        token('kill-erin', { subject: 'erin' }),
        token('kill-frank', { subject: 'frank' }),
      );
      expect(new Set(await ports.revocations.revoke('acme', { kind: 'agent', agent: 'kill-bot' }))).toEqual(
        new Set(['kill-acts', 'kill-holds']),
      );
      expect(await ports.revocations.revoke('acme', { kind: 'user', user: 'erin' })).toEqual(['kill-erin']);
      expect([
        (await ports.grants.redeemCode('code-kill-agent')).status,
        (await ports.grants.redeemCode('code-kill-user')).status,
        (await ports.grants.redeemCode('code-kill-other')).status,
      ]).toEqual(['revoked', 'revoked', 'ok']);
      expect(await revokedOf(['kill-frank'])).toEqual([false]);
    },
  );

  it.skipIf(skip)('chains entries on the head, verifies them, and shows another tenant only their hashes', async () => {
    const before = await ports.queries.head();
    const records = [];
    for (const [i, tenant] of ['acme', 'globex', 'acme'].entries())
      records.push(await ports.audit.append({ tenant, type: 'decision', decision: 'allow', action_id: `chain-${i}` }));
    expect(records.map((r) => [r.seq, r.prev_hash])).toEqual([
      [before.seq + 1, before.hash],
      [before.seq + 2, records[0]?.hash],
      [before.seq + 3, records[1]?.hash],
    ]);
    expect(await ports.queries.head()).toEqual({ seq: before.seq + 3, hash: records[2]?.hash });
    expect([
      await ports.queries.verify(1, before.seq + 3),
      await ports.queries.verify(before.seq + 2, before.seq + 100),
      await ports.queries.gaps(10),
    ]).toEqual([{ valid: true, entries: before.seq + 3 }, { valid: true, entries: 2 }, []]);
    expect(
      await ports.queries.verify(before.seq + 2, before.seq + 3, new Map([[before.seq + 2, genesisHash]])),
    ).toEqual({ valid: false, entries: 0, seq: before.seq + 2, reason: 'does not match the signed checkpoint' });
    const lines = await ports.queries.exportLines('acme', before.seq + 1, 2);
    expect(lines).toEqual([
      {
        seq: before.seq + 1,
        prev_hash: before.hash,
        hash: records[0]?.hash,
        canonical: expect.stringContaining('"action_id":"chain-0"'),
      },
      { seq: before.seq + 2, prev_hash: records[0]?.hash, hash: records[1]?.hash, redacted: true },
    ]);
  });

  it.skipIf(skip)(
    "traces an action to every hop behind it and the consent of its grant, in the action's tenant",
    async () => {
      await ports.grants.saveCode('code-trail', 'acme', 'trail-grant', detail(), inAMinute());
      const consent = await ports.audit.append({
        tenant: 'acme',
        type: 'authorization.consent',
        decision: 'granted',
        root_grant: 'trail-grant',
      });
      await issue(
        token('trail-1', { rootGrant: 'trail-grant' }),
        token('trail-2', { parentJti: 'trail-1', rootGrant: 'trail-grant' }),
      );
      await ports.audit.append({
        tenant: 'acme',
        type: 'decision',
        decision: 'allow',
        action_id: 'unrelated',
        jti: 'trail-1',
      });
      const decision = await ports.audit.append({
        tenant: 'acme',
        type: 'decision',
        decision: 'allow',
        action_id: 'trail',
        jti: 'trail-2',
      });
      const trail = await ports.queries.actionTrail('acme', 'trail');
      expect({
        gaps: trail.gaps,
        entries: trail.entries.map((e) => [e.seq, (e.entry as { type: string }).type, e.verified]),
      }).toEqual({
        gaps: [],
        entries: [
          [consent.seq, 'authorization.consent', true],
          [consent.seq + 1, 'token.exchange', true],
          [consent.seq + 2, 'token.exchange', true],
          [decision.seq, 'decision', true],
        ],
      });
      expect(await ports.queries.actionTrail('globex', 'trail')).toEqual({ entries: [], gaps: [] });
    },
  );

  it.skipIf(skip)('keeps one checkpoint per size', async () => {
    const { seq, hash } = await ports.queries.head();
    expect([
      await ports.queries.saveCheckpoint(seq, hash, 'jws-1', new Date()),
      await ports.queries.saveCheckpoint(seq, hash, 'jws-2', new Date()),
    ]).toEqual([true, false]);
    expect([
      await ports.queries.latestCheckpoint(),
      await ports.queries.checkpointsFrom(seq),
      await ports.queries.checkpointsFrom(seq + 1),
    ]).toEqual([{ seq, hash, jws: 'jws-1' }, [{ seq, hash, jws: 'jws-1' }], []]);
  });

  it.skipIf(skip)(
    'throttles sign-in: the attempt past the allowance locks, each one after a lock doubles it, a success clears the user, a quiet window forgets',
    async () => {
      const user = { key: 'user:contract', allowance: 2 };
      const address = { key: 'address:contract', allowance: 5 };
      const start = Date.now();
      const at = (seconds: number) => new Date(start + seconds * 1000);
      const attempts = [];
      for (const seconds of [0, 1, 2, 3])
        attempts.push(await ports.signInThrottle.attempt([address, user], at(seconds)));
      // The third attempt locked the user for 30 s; while locked, an attempt is not counted.
      expect(attempts).toEqual([undefined, undefined, undefined, at(32)]);
      expect([
        await ports.signInThrottle.attempt([address, user], at(32)),
        await ports.signInThrottle.attempt([address, user], at(33)),
      ]).toEqual([undefined, at(92)]);
      await ports.signInThrottle.succeeded([address, user]);
      expect([
        await ports.signInThrottle.attempt([user], at(93)),
        await ports.signInThrottle.attempt([user], at(94)),
        await ports.signInThrottle.attempt([user], at(95)),
      ]).toEqual([undefined, undefined, undefined]);
      expect(await ports.signInThrottle.attempt([user], at(96))).toEqual(at(125));
      // The address counted 6 attempts and gave one back: one more locks it, then it refuses.
      expect([
        await ports.signInThrottle.attempt([address], at(96)),
        await ports.signInThrottle.attempt([address], at(97)),
      ]).toEqual([undefined, at(126)]);
      expect(await ports.signInThrottle.attempt([user], at(125 + signInPolicy.windowSeconds + 1))).toBeUndefined();
    },
  );
});
