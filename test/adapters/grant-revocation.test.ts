import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditWriter } from '../../src/adapters/db/audit-writer.js';
import { createGrantStore } from '../../src/adapters/db/grant-store.js';
import { migrate, migrations } from '../../src/adapters/db/migrations.js';
import { openPglite } from '../../src/adapters/db/pglite.js';
import { cascadeRevocation } from '../../src/adapters/db/revocation-store.js';
import type { Database } from '../../src/adapters/db/sql.js';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { systemClock } from '../../src/adapters/system-clock.js';
import type { GrantDetail, GrantStore, TokenLineage } from '../../src/core/ports.js';
import { openIsolatedPostgres, testDatabaseUrl } from '../support/database.js';

const backends: [string, () => Promise<Database>, boolean][] = [
  ['PGlite (embedded)', () => openPglite(undefined), false],
  [
    'PostgreSQL (BATON_TEST_DATABASE_URL)',
    () => openIsolatedPostgres(testDatabaseUrl as string),
    testDatabaseUrl === undefined,
  ],
];

const detail: GrantDetail = {
  clientId: 'agent-platform',
  user: 'alice',
  agent: 'orchestrator',
  scope: ['payments:read'],
  audience: ['https://payments.example'],
  authorizationDetails: [],
};
const later = () => new Date(Date.now() + 60_000);
let serial = 0;
/** A fresh grant id and its code, saved. */
async function savedGrant(
  grants: GrantStore,
  extra: Partial<GrantDetail> = {},
): Promise<{ grant: string; code: string }> {
  serial += 1;
  const grant = `g-${serial}`;
  await grants.saveCode(
    `code-${grant}`,
    'acme',
    grant,
    { ...detail, ...extra, redirectUri: 'http://localhost:3000/callback', codeChallenge: 'c' },
    later(),
  );
  return { grant, code: `code-${grant}` };
}
const lineage = (grant: string, jti: string, parentJti: string | null = null): TokenLineage => ({
  tenant: 'acme',
  jti,
  parentJti,
  rootGrant: grant,
  subject: 'alice',
  actor: 'orchestrator',
  clientId: 'agent-platform',
  expiresAt: later(),
});

describe.each(backends)('grants revoked as a whole, on %s', (_name, open, skip) => {
  let db: Database;
  let grants: GrantStore;
  const revoked = async (jti: string) =>
    (await db.sql`SELECT 1 FROM revocations WHERE tenant = 'acme' AND jti = ${jti}`).length === 1;
  beforeAll(async () => {
    if (skip) return;
    db = await open();
    await migrate(db.sql);
    grants = createGrantStore(db.sql, () => Date.now());
  });
  afterAll(async () => {
    await db?.close();
  });

  it.skipIf(skip)(
    'revokes a token whose lineage is written after its grant was revoked, and what is exchanged from it',
    async () => {
      const { grant } = await savedGrant(grants);
      const audit = createAuditWriter(db.sql, { sha256: sha256Hex, clock: systemClock });
      await audit.append(
        { tenant: 'acme', type: 'token.authorization_code', decision: 'granted', jti: `${grant}-before` },
        lineage(grant, `${grant}-before`),
      );
      expect((await cascadeRevocation(db.sql, 'acme', { kind: 'grant', grant })).revoked).toEqual([`${grant}-before`]);
      // The winner of a redemption race commits its token after the replay revoked the grant.
      await audit.append(
        { tenant: 'acme', type: 'token.authorization_code', decision: 'granted', jti: `${grant}-after` },
        lineage(grant, `${grant}-after`),
      );
      await audit.append(
        { tenant: 'acme', type: 'token.exchange', decision: 'granted', jti: `${grant}-child` },
        lineage(grant, `${grant}-child`, `${grant}-after`),
      );
      expect([
        await revoked(`${grant}-before`),
        await revoked(`${grant}-after`),
        await revoked(`${grant}-child`),
      ]).toEqual([true, true, true]);
      // A token of another grant, in the same batch, is untouched.
      const other = await savedGrant(grants);
      await Promise.all([
        audit.append(
          { tenant: 'acme', type: 'token.refresh', decision: 'granted', jti: `${grant}-late` },
          lineage(grant, `${grant}-late`),
        ),
        audit.append(
          { tenant: 'acme', type: 'token.refresh', decision: 'granted', jti: `${other.grant}-live` },
          lineage(other.grant, `${other.grant}-live`),
        ),
        audit.append(
          { tenant: 'acme', type: 'token.exchange', decision: 'granted', jti: 'no-grant' },
          { ...lineage('no-grant', 'no-grant') },
        ),
      ]);
      expect([await revoked(`${grant}-late`), await revoked(`${other.grant}-live`), await revoked('no-grant')]).toEqual(
        [true, false, false],
      );
    },
  );

  it.skipIf(skip)(
    "revokes a client's tokens, what derives from them, and its grants; another client's stay",
    async () => {
      const audit = createAuditWriter(db.sql, { sha256: sha256Hex, clock: systemClock });
      const mine = await savedGrant(grants, { clientId: 'agent-console' });
      const theirs = await savedGrant(grants);
      const issued = (grant: string, jti: string, clientId: string, parentJti: string | null = null) =>
        audit.append(
          { tenant: 'acme', type: 'token.exchange', decision: 'granted', jti },
          { ...lineage(grant, jti, parentJti), clientId },
        );
      await issued(mine.grant, 'console-1', 'agent-console');
      // Derived from the client's token by another client: it goes with its parent.
      await issued(mine.grant, 'console-child', 'agent-platform', 'console-1');
      await issued(theirs.grant, 'platform-1', 'agent-platform');
      const { revoked: newly } = await cascadeRevocation(db.sql, 'acme', { kind: 'client', client: 'agent-console' });
      expect([...newly].sort()).toEqual(['console-1', 'console-child']);
      expect(await revoked('platform-1')).toBe(false);
      expect(await grants.redeemCode(mine.code)).toEqual({ status: 'revoked', tenant: 'acme', grantId: mine.grant });
      expect((await grants.redeemCode(theirs.code)).status).toBe('ok');
    },
  );

  it.skipIf(skip)(
    'refuses the code and every refresh token of a revoked grant, saved before or after the revocation',
    async () => {
      const { grant, code } = await savedGrant(grants);
      await grants.saveRefresh('r-before', 'acme', grant, detail, later());
      await cascadeRevocation(db.sql, 'acme', { kind: 'grant', grant });
      await grants.saveRefresh('r-after', 'acme', grant, detail, later());
      expect(await grants.redeemCode(code)).toEqual({ status: 'revoked', tenant: 'acme', grantId: grant });
      expect(await grants.redeemRefresh('r-before')).toEqual({ status: 'revoked', tenant: 'acme', grantId: grant });
      expect(await grants.redeemRefresh('r-after')).toEqual({ status: 'revoked', tenant: 'acme', grantId: grant });
      expect(await grants.findRefresh('r-after')).toEqual({
        tenant: 'acme',
        grantId: grant,
        clientId: 'agent-platform',
      });
      expect(await grants.findRefresh('unknown')).toBeUndefined();
    },
  );

  it.skipIf(skip)(
    'lets one of many concurrent redemptions of a code or refresh token through; the others see a replay',
    async () => {
      const { grant, code } = await savedGrant(grants);
      const codes = await Promise.all(Array.from({ length: 20 }, () => grants.redeemCode(code)));
      expect(codes.filter((r) => r.status === 'ok')).toHaveLength(1);
      expect(codes.filter((r) => r.status === 'reused')).toHaveLength(19);
      await grants.saveRefresh('r-race', 'acme', grant, detail, later());
      const refreshes = await Promise.all(Array.from({ length: 20 }, () => grants.redeemRefresh('r-race')));
      expect(refreshes.map((r) => r.status).sort()).toEqual(['ok', ...Array.from({ length: 19 }, () => 'reused')]);
    },
  );

  it.skipIf(skip)('revokes the grants of a user, and of the agent consented to, with their codes', async () => {
    const alices = await savedGrant(grants, { user: 'alice-kill' });
    const bobs = await savedGrant(grants, { user: 'bob-kill', agent: 'payments-subagent' });
    const untouched = await savedGrant(grants, { user: 'carol-kill', agent: 'orchestrator' });
    await cascadeRevocation(db.sql, 'acme', { kind: 'user', user: 'alice-kill' });
    await cascadeRevocation(db.sql, 'acme', { kind: 'agent', agent: 'payments-subagent' });
    expect((await grants.redeemCode(alices.code)).status).toBe('revoked');
    expect((await grants.redeemCode(bobs.code)).status).toBe('revoked');
    expect((await grants.redeemCode(untouched.code)).status).toBe('ok');
  });

  it.skipIf(skip || _name.startsWith('PGlite'))(
    'revokes a token whose lineage commits while the cascade waits for it',
    async () => {
      const { grant } = await savedGrant(grants);
      let commit!: () => void;
      const writerMayCommit = new Promise<void>((resolve) => (commit = resolve));
      let written!: () => void;
      const lineageWritten = new Promise<void>((resolve) => (written = resolve));
      // A lineage write in flight (its audit batch not yet committed) holds its grant's share lock.
      const writer = db.sql.begin(async (tx) => {
        await tx`INSERT INTO tokens (tenant, jti, parent_jti, root_grant, subject, actor, client_id, expires_at) VALUES ('acme', ${`${grant}-inflight`}, null, ${grant}, 'alice', 'orchestrator', 'agent-platform', ${later()})`;
        written();
        await writerMayCommit;
      });
      await lineageWritten;
      const revocation = cascadeRevocation(db.sql, 'acme', { kind: 'grant', grant });
      const first = await Promise.race([
        revocation.then(() => 'revocation finished'),
        new Promise((resolve) => setTimeout(() => resolve('revocation waits'), 300)),
      ]);
      expect(first).toBe('revocation waits');
      commit();
      await writer;
      expect((await revocation).revoked).toEqual([`${grant}-inflight`]);
    },
  );

  it.skipIf(skip || _name.startsWith('PGlite'))(
    'revokes a token whose lineage is written while a revocation of its grant is uncommitted',
    async () => {
      const { grant } = await savedGrant(grants);
      const audit = createAuditWriter(db.sql, { sha256: sha256Hex, clock: systemClock });
      let commit!: () => void;
      const revokerMayCommit = new Promise<void>((resolve) => (commit = resolve));
      let locked!: () => void;
      const rowLocked = new Promise<void>((resolve) => (locked = resolve));
      // The revocation's first step: the grant's row marked revoked, not yet committed.
      const revoker = db.sql.begin(async (tx) => {
        await tx`UPDATE grants SET revoked_at = now() WHERE tenant = 'acme' AND grant_id = ${grant}`;
        locked();
        await revokerMayCommit;
      });
      await rowLocked;
      const append = audit.append(
        { tenant: 'acme', type: 'token.refresh', decision: 'granted', jti: `${grant}-waiting` },
        lineage(grant, `${grant}-waiting`),
      );
      const first = await Promise.race([
        append.then(() => 'append finished'),
        new Promise((resolve) => setTimeout(() => resolve('append waits'), 300)),
      ]);
      expect(first).toBe('append waits');
      commit();
      await revoker;
      await append;
      expect(await revoked(`${grant}-waiting`)).toBe(true);
    },
  );
});

describe('migration 9 on a database that already holds codes and refresh tokens', () => {
  it('makes a grant of every code, revoked where its refresh-token family was', async () => {
    const db = await openPglite(undefined);
    try {
      await db.sql.script(
        'CREATE TABLE baton_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      for (const m of migrations.filter((m) => m.version < 9)) {
        await db.sql.script(m.sql);
        await db.sql`INSERT INTO baton_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      }
      const stored = (agent: string | null) => JSON.stringify({ ...detail, agent });
      await db.sql`INSERT INTO authorization_codes (code_hash, tenant, grant_id, detail, expires_at, used_at) VALUES ('c1', 'acme', 'old-live', ${stored('orchestrator')}, now(), now()), ('c2', 'acme', 'old-revoked', ${stored(null)}, now(), now())`;
      await db.sql`INSERT INTO refresh_tokens (token_hash, tenant, family, detail, expires_at, revoked_at) VALUES ('r1', 'acme', 'old-live', ${stored('orchestrator')}, ${later()}, null), ('r2', 'acme', 'old-revoked', ${stored(null)}, ${later()}, now())`;
      expect(await migrate(db.sql)).toEqual(migrations.filter((m) => m.version >= 9).map((m) => m.version));
      const rows = await db.sql<{
        grant_id: string;
        client_id: string;
        subject: string;
        agent: string | null;
        revoked: boolean;
      }>`SELECT grant_id, client_id, subject, agent, revoked_at IS NOT NULL AS revoked FROM grants ORDER BY grant_id`;
      expect(rows).toEqual([
        { grant_id: 'old-live', client_id: 'agent-platform', subject: 'alice', agent: 'orchestrator', revoked: false },
        { grant_id: 'old-revoked', client_id: 'agent-platform', subject: 'alice', agent: null, revoked: true },
      ]);
      const grants = createGrantStore(db.sql, () => Date.now());
      expect((await grants.redeemRefresh('r1')).status).toBe('ok');
      expect((await grants.redeemRefresh('r2')).status).toBe('revoked');
    } finally {
      await db.close();
    }
  });
});
