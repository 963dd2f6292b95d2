import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { generateSigningKeys, importSigningKeys } from '../../src/adapters/signing-keys.js';
import { verifyExport } from '../../src/cli/audit-verify.js';
import { entryHash } from '../../src/core/audit/chain.js';
import { signCheckpoint, type Checkpoint } from '../../src/core/audit/checkpoint.js';
import type { Jwks } from '../../src/core/registry/schema.js';
import { loadConfig } from '../../src/node/config.js';
import { startBaton } from '../../src/node/server.js';
import {
  basic,
  captureLogger,
  demoChain,
  postJson,
  postToken,
  startTestBaton,
  type TestBaton,
} from '../support/baton.js';
import { openTestDatabase } from '../support/database.js';

// Every case tampers with its own log, so each starts a Baton of its own.
const started: TestBaton[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((b) => b.close()));
});
async function fresh(env: Record<string, string> = {}): Promise<TestBaton> {
  const baton = await startTestBaton(env);
  started.push(baton);
  return baton;
}

// One auditor token per Baton: each grant is itself an entry, which would move the head between calls.
const auditors = new WeakMap<TestBaton, Promise<Record<string, string>>>();
function auditor(baton: TestBaton): Promise<Record<string, string>> {
  let headers = auditors.get(baton);
  if (headers === undefined) {
    headers = postToken(
      baton,
      { grant_type: 'client_credentials', scope: 'baton:audit' },
      { authorization: basic('ops-console') },
    ).then((result) => ({ authorization: `Bearer ${result.body.access_token as string}` }));
    auditors.set(baton, headers);
  }
  return headers;
}
async function get(
  baton: TestBaton,
  path: string,
): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const response = await fetch(`${baton.url}${path}`, { headers: await auditor(baton) });
  const text = await response.text();
  return {
    status: response.status,
    text,
    body: (response.headers.get('content-type')?.startsWith('application/json') === true
      ? JSON.parse(text)
      : {}) as Record<string, unknown>,
  };
}
const at = (iat: number) => new Date(iat * 1000).toISOString().replace('.000Z', 'Z');

/** Grants and a decision, then a checkpoint; returns the checkpoint as signed. */
async function activityThenCheckpoint(baton: TestBaton, actionId: string): Promise<Checkpoint & { jws: string }> {
  const [, token] = await demoChain(baton, 'payments:read payments:transfer', 'payments:transfer');
  const decision = await postJson(
    baton,
    '/authorize',
    {
      token,
      action: 'payments:transfer',
      resource: { type: 'Account', id: 'acct-1' },
      context: { amount: 10, currency: 'EUR' },
      action_id: actionId,
    },
    { authorization: basic('payments') },
  );
  expect(decision.body.decision).toBe('allow');
  await baton.checkpoint();
  const { jws } = (await get(baton, '/audit/checkpoint')).body as { jws: string };
  const { seq, hash, iat } = decodeJwt(jws) as { seq: number; hash: string; iat: number };
  return { seq, hash, iat, jws };
}

/**
 * What a superuser can do past the triggers: rewrite one entry's canonical text and recompute its
 * hash, every later hash and the head, so the chain is consistent with itself again.
 */
async function rewriteAndRecompute(baton: TestBaton, seq: number): Promise<void> {
  await baton.database.sql.begin(async (tx) => {
    await tx.script('SET LOCAL session_replication_role = replica');
    const rows = await tx<{
      seq: string | number;
      prev_hash: string;
      canonical: string;
    }>`SELECT seq, prev_hash, canonical FROM audit_log WHERE seq >= ${seq} ORDER BY seq`;
    let prev = rows[0]?.prev_hash as string;
    for (const row of rows) {
      const canonical =
        Number(row.seq) === seq ? row.canonical.replace('"decision":"', '"decision":"x') : row.canonical;
      const hash = entryHash(sha256Hex, Number(row.seq), prev, canonical) as string;
      await tx`UPDATE audit_log SET canonical = ${canonical}, prev_hash = ${prev}, hash = ${hash} WHERE seq = ${row.seq}`;
      prev = hash;
    }
    await tx`UPDATE audit_head SET hash = ${prev} WHERE id = 1`;
  });
}
const asSuperuser = (baton: TestBaton, statement: string) =>
  baton.database.sql.begin(async (tx) => {
    await tx.script(`SET LOCAL session_replication_role = replica; ${statement}`);
  });

const auditKeysOf = async (baton: TestBaton) => (await (await fetch(`${baton.url}/audit/keys`)).json()) as Jwks;
const exportOf = async (baton: TestBaton) => (await get(baton, '/audit/entries?from=1&limit=10000')).text;
const published = (baton: TestBaton) =>
  readdirSync(baton.checkpointDir)
    .filter((n) => n.endsWith('.jws'))
    .map((n) => readFileSync(join(baton.checkpointDir, n), 'utf8').trim());

describe('verification anchored to signed checkpoints', () => {
  it('reports a valid log as consistent with its latest checkpoint, by API and CLI', async () => {
    const baton = await fresh();
    await activityThenCheckpoint(baton, 'anchored-1');
    const latest = await activityThenCheckpoint(baton, 'anchored-2');
    const head = (await get(baton, '/audit/verify')).body.to as number;
    const after =
      head > latest.seq ? `; entries ${latest.seq + 1}–${head} follow it and are not yet covered by a checkpoint` : '';
    expect(await get(baton, '/audit/verify')).toMatchObject({
      status: 200,
      body: {
        from: 1,
        to: head,
        valid: true,
        entries: head,
        checkpoints: 2,
        checkpoint: { seq: latest.seq, hash: latest.hash, signed_at: at(latest.iat) },
        report: `consistent with checkpoint ${latest.seq} signed at ${at(latest.iat)}${after}`,
      },
    });
    const verdict = await verifyExport(await exportOf(baton), await auditKeysOf(baton), sha256Hex, {
      checkpoints: published(baton),
    });
    expect(verdict.ok).toBe(true);
    expect(verdict.message).toMatch(
      new RegExp(`, 2 checkpoints valid; consistent with checkpoint ${latest.seq} signed at ${at(latest.iat)}$`),
    );
    expect(verdict.newest).toEqual(latest);
  });

  it('finds a rewrite whose later hashes and head were recomputed: it contradicts the first checkpoint after it', async () => {
    const baton = await fresh();
    const first = await activityThenCheckpoint(baton, 'rewrite-1');
    const second = await activityThenCheckpoint(baton, 'rewrite-2');
    const target = first.seq + 2;
    await rewriteAndRecompute(baton, target);

    // The chain alone is consistent again: only the checkpoint can tell.
    const body = (await get(baton, '/audit/verify')).body;
    expect(body).toEqual({
      from: 1,
      to: body.to,
      valid: false,
      entries: second.seq - 1,
      seq: second.seq,
      reason: `does not match checkpoint ${second.seq} signed at ${at(second.iat)}: the log was rewritten after it was signed, at an entry from ${first.seq + 1} to ${second.seq}`,
      checkpoint: { seq: second.seq, hash: second.hash, signed_at: at(second.iat) },
    });
    // A range that ends before the rewrite is still consistent with the checkpoint inside it.
    expect((await get(baton, `/audit/verify?to=${first.seq}`)).body).toMatchObject({
      valid: true,
      report: `consistent with checkpoint ${first.seq} signed at ${at(first.iat)}`,
    });

    const message = `entry ${second.seq}: does not match checkpoint ${second.seq} signed at ${at(second.iat)}: the log was rewritten after it was signed, at an entry from ${first.seq + 1} to ${second.seq}`;
    expect(await verifyExport(await exportOf(baton), await auditKeysOf(baton), sha256Hex)).toEqual({
      ok: false,
      message,
    });
    // And the checkpoint signer refuses to vouch for the rewritten log.
    await demoChain(baton);
    await baton.checkpoint();
    expect((await get(baton, '/audit/checkpoint')).body.seq).toBe(second.seq);
    expect(
      baton.logger.lines
        .filter((l) => l.message === 'audit log is inconsistent; checkpoint not signed')
        .map((l) => l.fields),
    ).toEqual([{ seq: second.seq, detail: 'does not match the signed checkpoint' }]);
  });

  it('finds a rewrite whose later checkpoints were deleted too: by the service that signed them, the published directory and the witness', async () => {
    const baton = await fresh();
    const first = await activityThenCheckpoint(baton, 'deleted-1');
    const second = await activityThenCheckpoint(baton, 'deleted-2');
    const kept = published(baton);
    await rewriteAndRecompute(baton, first.seq + 1);
    await asSuperuser(baton, `DELETE FROM audit_checkpoints WHERE seq > ${first.seq}`);

    expect(await get(baton, '/audit/verify')).toMatchObject({
      status: 200,
      body: {
        valid: false,
        entries: 0,
        seq: second.seq,
        reason: `checkpoint ${second.seq} signed at ${at(second.iat)} is missing from the database, whose latest checkpoint is ${first.seq}: checkpoints were deleted or rolled back`,
        checkpoint: { seq: second.seq, hash: second.hash, signed_at: at(second.iat) },
      },
    });

    // The export now embeds only the checkpoint before the rewrite: alone, it passes.
    const exported = await exportOf(baton);
    const keys = await auditKeysOf(baton);
    expect((await verifyExport(exported, keys, sha256Hex)).ok).toBe(true);
    // The published checkpoints are still there to contradict it.
    expect(await verifyExport(exported, keys, sha256Hex, { checkpoints: kept })).toEqual({
      ok: false,
      message: `entry ${second.seq}: does not match checkpoint ${second.seq} signed at ${at(second.iat)}: the log was rewritten after it was signed, at an entry from ${first.seq + 1} to ${second.seq}`,
    });
    // A witness that saw the later checkpoint refuses an export whose checkpoints went back.
    expect(await verifyExport(exported, keys, sha256Hex, { witness: second })).toEqual({
      ok: false,
      message: `checkpoints went backwards: checkpoint ${second.seq} signed at ${at(second.iat)} was seen before, but the newest here is checkpoint ${first.seq}`,
    });
  });

  it('says so when the database checkpoints were rolled back, even to a Baton that signed none of them (it reads the published directory)', async () => {
    const baton = await fresh();
    const signed = await activityThenCheckpoint(baton, 'rolled-back-1');
    const other = await fresh({
      BATON_CHECKPOINT_DIR: baton.checkpointDir,
      BATON_AUDIT_KEYS: JSON.stringify(baton.auditJwks),
      BATON_ISSUER: baton.issuer,
    });
    // `other` has a database of its own, without the checkpoint the directory holds.
    await demoChain(other);
    expect((await get(other, '/audit/verify')).body).toMatchObject({
      valid: false,
      seq: signed.seq,
      reason: `checkpoint ${signed.seq} signed at ${at(signed.iat)} is missing from the database, whose latest checkpoint is none: checkpoints were deleted or rolled back`,
    });
    await other.checkpoint();
    expect((await get(other, '/audit/checkpoint')).status).toBe(404);
    expect(
      other.logger.lines
        .filter(
          (l) =>
            l.message ===
            'audit checkpoints went backwards: the database lacks one signed before; checkpoint not signed',
        )
        .map((l) => l.fields),
    ).toEqual([
      {
        seq: signed.seq,
        detail: `checkpoint ${signed.seq} signed at ${at(signed.iat)}; the database's latest is none`,
      },
    ]);
  });

  it('finds entries deleted after a checkpoint that vouched for them', async () => {
    const baton = await fresh();
    const signed = await activityThenCheckpoint(baton, 'truncated-1');
    const [row] = await baton.database.sql<{ hash: string }>`SELECT hash FROM audit_log WHERE seq = ${signed.seq - 2}`;
    await asSuperuser(
      baton,
      `DELETE FROM audit_log WHERE seq > ${signed.seq - 2}; UPDATE audit_head SET seq = ${signed.seq - 2}, hash = '${row?.hash ?? ''}' WHERE id = 1`,
    );
    expect((await get(baton, '/audit/verify')).body).toEqual({
      from: 1,
      to: signed.seq - 2,
      valid: false,
      entries: 0,
      seq: signed.seq - 1,
      reason: `entries ${signed.seq - 1}–${signed.seq} are missing: checkpoint ${signed.seq} signed at ${at(signed.iat)} vouches for ${signed.seq} entries, the log ends at ${signed.seq - 2}`,
      checkpoint: { seq: signed.seq, hash: signed.hash, signed_at: at(signed.iat) },
    });
  });

  it('refuses a checkpoint in the database that the audit key did not sign', async () => {
    const baton = await fresh();
    const signed = await activityThenCheckpoint(baton, 'forged-1');
    await demoChain(baton);
    const head = (await get(baton, '/audit/verify')).body.to as number;
    const [row] = await baton.database.sql<{ hash: string }>`SELECT hash FROM audit_log WHERE seq = ${head}`;
    // Signed with the token signing key: a valid signature, but not by a key that vouches for logs.
    const forged = await signCheckpoint(
      await importSigningKeys(baton.signingJwks),
      baton.issuer,
      { seq: head, hash: row?.hash ?? '' },
      new Date(),
    );
    await baton.database
      .sql`INSERT INTO audit_checkpoints (seq, hash, signed_at, jws) VALUES (${head}, ${row?.hash ?? ''}, now(), ${forged})`;
    expect((await get(baton, '/audit/verify')).body).toEqual({
      from: 1,
      to: head,
      valid: false,
      entries: 0,
      seq: head,
      reason: `checkpoint ${head} in the database does not verify with the audit keys (no applicable key found in the JSON Web Key Set)`,
    });
    expect(signed.seq).toBeLessThan(head);
  });
});

describe('the offline witness', () => {
  it('refuses a checkpoint sequence that goes backwards, or a different checkpoint of a size it saw', async () => {
    const baton = await fresh();
    const first = await activityThenCheckpoint(baton, 'witness-1');
    const exported = await exportOf(baton);
    const keys = await auditKeysOf(baton);
    const ahead: Checkpoint = { seq: first.seq + 5, hash: first.hash, iat: first.iat };
    expect(await verifyExport(exported, keys, sha256Hex, { witness: ahead })).toEqual({
      ok: false,
      message: `checkpoints went backwards: checkpoint ${first.seq + 5} signed at ${at(first.iat)} was seen before, but the newest here is checkpoint ${first.seq}`,
    });
    const fork: Checkpoint = { seq: first.seq, hash: 'f'.repeat(64), iat: first.iat };
    expect(await verifyExport(exported, keys, sha256Hex, { witness: fork })).toEqual({
      ok: false,
      message: `checkpoint ${first.seq}: differs from checkpoint ${first.seq} signed at ${at(first.iat)}, seen before`,
    });
    // The one it saw, or an older one, is fine, and the newest is handed back to be remembered.
    const second = await activityThenCheckpoint(baton, 'witness-2');
    const later = await verifyExport(await exportOf(baton), keys, sha256Hex, { witness: first });
    expect({ ok: later.ok, newest: later.newest }).toEqual({ ok: true, newest: second });
  });
});

describe('the dedicated audit key', () => {
  it.each([
    ['the token signing key itself', (jwks: string) => jwks],
    [
      'a set sharing one key with it',
      (jwks: string) => JSON.stringify({ keys: [(JSON.parse(jwks) as { keys: unknown[] }).keys[1]] }),
    ],
  ])('is refused at start when it is %s', async (_name, audit) => {
    const signing = JSON.stringify(await generateSigningKeys('EdDSA'));
    const { keys } = JSON.parse(signing) as { keys: { kid: string }[] };
    const shared = audit(signing) === signing ? keys[0]?.kid : keys[1]?.kid;
    const database = await openTestDatabase();
    try {
      const config = loadConfig({ PORT: '0', BATON_SIGNING_KEYS: signing, BATON_AUDIT_KEYS: audit(signing) });
      await expect(startBaton(config, { database, logger: captureLogger() })).rejects.toThrow(
        `audit key ${shared} is also a token signing key (${shared}): checkpoints must be signed with a key of their own`,
      );
    } finally {
      await database.close();
    }
  });

  it('is required with DATABASE_URL', async () => {
    const config = loadConfig({
      PORT: '0',
      DATABASE_URL: 'postgres://127.0.0.1:1/none',
      BATON_SIGNING_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
    });
    await expect(startBaton(config, { logger: captureLogger() })).rejects.toThrow(
      'BATON_AUDIT_KEYS or BATON_AUDIT_KEYS_FILE is required with DATABASE_URL: audit checkpoints are signed with a key of their own, shared by the instances',
    );
  });
});

describe('an action whose entries were deleted', () => {
  it('shows the gap in its trail, not a 404', async () => {
    const baton = await fresh();
    await activityThenCheckpoint(baton, 'gap-1');
    const trail = (await get(baton, '/audit/actions/gap-1')).body as { entries: { seq: number }[] };
    const [root, hop, decision] = trail.entries.map((e) => e.seq) as [number, number, number];
    // A hop behind the action is deleted: the entry after it no longer links.
    await asSuperuser(baton, `DELETE FROM audit_log WHERE seq = ${hop}`);
    const broken = await get(baton, '/audit/actions/gap-1');
    expect(broken.status).toBe(200);
    expect({
      verified: broken.body.verified,
      gaps: broken.body.gaps,
      entries: (broken.body.entries as { seq: number; verified: boolean }[]).map((e) => [e.seq, e.verified]),
    }).toEqual({
      verified: false,
      gaps: [{ from: hop, to: hop }],
      entries: [
        [root, true],
        [decision, hop + 1 === decision ? false : true],
      ],
    });
    // The decision itself is deleted: nothing of the action remains, and the log says where it is broken.
    await asSuperuser(baton, `DELETE FROM audit_log WHERE seq = ${decision}`);
    const gaps =
      decision === hop + 1
        ? [{ from: hop, to: decision }]
        : [
            { from: hop, to: hop },
            { from: decision, to: decision },
          ];
    const named = gaps.map((g) => (g.from === g.to ? `${g.from}` : `${g.from}–${g.to}`)).join(', ');
    expect(await get(baton, '/audit/actions/gap-1')).toMatchObject({
      status: 200,
      body: {
        action_id: 'gap-1',
        verified: false,
        reason: `no entry of this action remains in your tenant, and the log is missing entries ${named}: the chain is broken there, and the action may have been among them`,
        entries: [],
        gaps,
      },
    });
    expect((await get(baton, '/audit/verify')).body).toMatchObject({
      valid: false,
      seq: hop,
      reason: `entries ${hop}–${gaps[0]?.to ?? hop} are missing`,
    });
  });

  it('is still a 404 for an action that never was, in a log without gaps', async () => {
    const baton = await fresh();
    await demoChain(baton);
    expect(await get(baton, '/audit/actions/never-was')).toMatchObject({
      status: 404,
      body: { error: 'not_found', error_description: 'no such action in your tenant' },
    });
  });
});
