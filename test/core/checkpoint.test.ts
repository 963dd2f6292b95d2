import { describe, expect, it } from 'vitest';
import { generateSigningKeys, importSigningKeys } from '../../src/adapters/signing-keys.js';
import type { StoredCheckpoint } from '../../src/core/audit/chain.js';
import {
  signCheckpoint,
  verifyAgainstCheckpoints,
  type Checkpoint,
  type CheckpointWitness,
} from '../../src/core/audit/checkpoint.js';
import type { KeyResolver, AuditQueries } from '../../src/core/ports.js';

const issuer = 'https://baton.example';

/** The part of the audit reader that verification against checkpoints reads, over fixed rows. */
function queriesOver(checkpoints: StoredCheckpoint[], head: number): AuditQueries {
  const unused = () => Promise.reject(new Error('not read by verification'));
  return {
    checkpointsFrom: async (from) => checkpoints.filter((c) => c.seq >= from),
    verify: async (from, to) => ({ valid: true, entries: to - from + 1 }),
    head: async () => ({ seq: head, hash: 'h' }),
    actionTrail: unused,
    gaps: unused,
    exportLines: unused,
    search: unused,
    latestCheckpoint: unused,
  } as AuditQueries;
}

async function setUp() {
  const keys = await importSigningKeys(await generateSigningKeys('EdDSA'));
  let resolved = 0;
  const resolve: KeyResolver = (header) => {
    resolved += 1;
    return keys.resolve(header);
  };
  const witness: CheckpointWitness = {
    resolve,
    publicJwks: keys.publicJwks,
    witnessed: async () => [],
    remember: (_: Checkpoint) => undefined,
  };
  const rows = await Promise.all(
    [10, 20, 30].map(async (seq) => ({
      seq,
      hash: `hash-${seq}`,
      jws: await signCheckpoint(keys, issuer, { seq, hash: `hash-${seq}` }, new Date(1_700_000_000_000 + seq * 60_000)),
    })),
  );
  return { witness, rows, resolved: () => resolved };
}

describe('verification against stored checkpoints', () => {
  it('checks each stored checkpoint signature once per process, not at every verification', async () => {
    const { witness, rows, resolved } = await setUp();
    const queries = queriesOver(rows, 35);
    const first = await verifyAgainstCheckpoints(queries, witness, issuer, { from: 1, to: 35, head: 35 });
    expect(first).toMatchObject({ valid: true, checkpoints: 3, checkpoint: { seq: 30, hash: 'hash-30' } });
    expect(resolved()).toBe(3);
    expect(await verifyAgainstCheckpoints(queries, witness, issuer, { from: 1, to: 35, head: 35 })).toEqual(first);
    expect(resolved()).toBe(3);
  });

  it('still checks a stored checkpoint whose text changed since it verified', async () => {
    const { witness, rows, resolved } = await setUp();
    await verifyAgainstCheckpoints(queriesOver(rows, 35), witness, issuer, { from: 1, to: 35, head: 35 });
    const [a, b, c] = rows as [StoredCheckpoint, StoredCheckpoint, StoredCheckpoint];
    // The second checkpoint's signature, under the first one's statement.
    const forged = { ...a, jws: `${a.jws.slice(0, a.jws.lastIndexOf('.'))}${b.jws.slice(b.jws.lastIndexOf('.'))}` };
    const verdict = await verifyAgainstCheckpoints(queriesOver([forged, b, c], 35), witness, issuer, {
      from: 1,
      to: 35,
      head: 35,
    });
    expect(verdict).toEqual({
      valid: false,
      entries: 0,
      seq: 10,
      reason: 'checkpoint 10 in the database does not verify with the audit keys (signature verification failed)',
    });
    expect(resolved()).toBe(4);
  });
});
