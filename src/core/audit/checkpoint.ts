import { jwtVerify } from 'jose';
import { contradictsCheckpoint } from './chain.js';
import { signJwt } from '../tokens/jwt.js';
import type { KeyResolver, SigningKeys, AuditQueries } from '../ports.js';

const checkpointType = 'baton-checkpoint+jwt';

/** A signed statement of the log's size and head hash at a moment. */
export interface Checkpoint {
  readonly seq: number;
  readonly hash: string;
  readonly iat: number;
}

/** A checkpoint with the JWS that states it. */
export interface SignedCheckpoint extends Checkpoint {
  readonly jws: string;
}

/**
 * Signs a checkpoint (JWS, `typ: baton-checkpoint+jwt`, `kid` in the header) with the current
 * audit key: a key of its own, so that whoever holds a token signing key cannot vouch for a log.
 */
export async function signCheckpoint(
  auditKeys: SigningKeys,
  issuer: string,
  head: { seq: number; hash: string },
  now: Date,
): Promise<string> {
  return signJwt(auditKeys, checkpointType, {
    seq: head.seq,
    hash: head.hash,
    iss: issuer,
    iat: Math.floor(now.getTime() / 1000),
  });
}

/** Verifies a checkpoint's signature against the audit keys; returns what it states. */
export async function verifyCheckpoint(resolve: KeyResolver, jws: string, issuer?: string): Promise<Checkpoint> {
  const { payload } = await jwtVerify(jws, resolve, {
    typ: checkpointType,
    algorithms: ['EdDSA', 'ES256'],
    ...(issuer === undefined ? {} : { issuer }),
  });
  if (
    !Number.isSafeInteger(payload.seq) ||
    (payload.seq as number) < 1 ||
    typeof payload.hash !== 'string' ||
    typeof payload.iat !== 'number'
  )
    throw new Error('checkpoint lacks seq, hash or iat');
  return { seq: payload.seq as number, hash: payload.hash, iat: payload.iat };
}

/** When a checkpoint was signed (RFC 3339, to the second as `iat` states it). */
export function signedAt(checkpoint: Checkpoint): string {
  return new Date(checkpoint.iat * 1000).toISOString().replace('.000Z', 'Z');
}

/** How a report names a checkpoint. */
export function describeCheckpoint(checkpoint: Checkpoint): string {
  return `checkpoint ${checkpoint.seq} signed at ${signedAt(checkpoint)}`;
}

/** Why entries up to a contradicted checkpoint are not what it vouched for: the rewrite lies after the last checkpoint that still holds. */
export function contradiction(checkpoint: Checkpoint, lastHeld: number): string {
  const where =
    lastHeld + 1 === checkpoint.seq
      ? `at entry ${checkpoint.seq}`
      : `at an entry from ${lastHeld + 1} to ${checkpoint.seq}`;
  return `does not match ${describeCheckpoint(checkpoint)}: the log was rewritten after it was signed, ${where}`;
}

/** How many verified checkpoints a process keeps (two weeks of one a minute; about 7 MB). */
const verifiedKept = 20_000;
const verifiedByWitness = new WeakMap<CheckpointWitness, Map<string, Checkpoint>>();

/** The checkpoint signatures a witness's keys have verified, so a stored checkpoint is checked once, not at every verification. */
function verifiedBy(witness: CheckpointWitness): Map<string, Checkpoint> {
  let verified = verifiedByWitness.get(witness);
  if (verified === undefined) {
    verified = new Map();
    verifiedByWitness.set(witness, verified);
  }
  return verified;
}

/** `verifyCheckpoint`, remembering each JWS that verified (exactly as it was, the whole text being the key). */
async function verifyRemembered(
  verified: Map<string, Checkpoint>,
  resolve: KeyResolver,
  jws: string,
  issuer: string,
): Promise<Checkpoint> {
  const known = verified.get(jws);
  if (known !== undefined) return known;
  const checkpoint = await verifyCheckpoint(resolve, jws, issuer);
  if (verified.size >= verifiedKept) verified.delete(verified.keys().next().value as string);
  verified.set(jws, checkpoint);
  return checkpoint;
}

/** The checkpoints a verifier can reach besides the database's, and the keys that sign them. */
export interface CheckpointWitness {
  /** The audit keys' public half. */
  readonly resolve: KeyResolver;
  readonly publicJwks: { readonly keys: readonly Record<string, unknown>[] };
  /** Checkpoints known outside the database (the latest this instance signed or saw, the published directory's latest). */
  witnessed(): Promise<readonly Checkpoint[]>;
  /** Notes a checkpoint found valid and consistent with the log, so that losing it later is noticed. */
  remember(checkpoint: Checkpoint): void;
}

/** A checkpoint as a report names it. */
export interface CheckpointSummary {
  readonly seq: number;
  readonly hash: string;
  readonly signed_at: string;
}

const summary = (c: Checkpoint): CheckpointSummary => ({ seq: c.seq, hash: c.hash, signed_at: signedAt(c) });

/** The verdict on a range of the log held against every checkpoint within reach. */
export type AnchoredVerdict =
  | {
      readonly valid: true;
      readonly entries: number;
      readonly checkpoints: number;
      readonly checkpoint: CheckpointSummary | null;
      readonly report: string;
    }
  | {
      readonly valid: false;
      readonly entries: number;
      readonly seq: number;
      readonly reason: string;
      readonly checkpoint?: CheckpointSummary;
    };

/**
 * Verifies entries `from`–`to` against the chain and against every checkpoint within reach: each
 * one stored in the database (its signature checked with the audit keys), and those known outside
 * it, which must still be in the database (a checkpoint that disappears, or a sequence that goes
 * backwards, is tampering) and must not vouch for more entries than the log holds. A rewrite whose
 * later hashes were all recomputed contradicts the first checkpoint at or after it.
 */
export async function verifyAgainstCheckpoints(
  queries: AuditQueries,
  witness: CheckpointWitness | undefined,
  issuer: string,
  range: { from: number; to: number; head: number },
): Promise<AnchoredVerdict> {
  const { from, to, head } = range;
  if (witness === undefined) {
    const verdict = await queries.verify(from, to);
    return verdict.valid
      ? {
          ...verdict,
          checkpoints: 0,
          checkpoint: null,
          report: 'no audit key is configured here: checked against the chain alone',
        }
      : verdict;
  }
  const stored = new Map<number, Checkpoint>();
  const verified = verifiedBy(witness);
  for (const row of await queries.checkpointsFrom(1)) {
    let checkpoint: Checkpoint;
    try {
      checkpoint = await verifyRemembered(verified, witness.resolve, row.jws, issuer);
    } catch (error) {
      return {
        valid: false,
        entries: 0,
        seq: row.seq,
        reason: `checkpoint ${row.seq} in the database does not verify with the audit keys (${error instanceof Error ? error.message : String(error)})`,
      };
    }
    if (checkpoint.seq !== row.seq || checkpoint.hash !== row.hash)
      return {
        valid: false,
        entries: 0,
        seq: row.seq,
        reason: `checkpoint ${row.seq} in the database is stored under a size or hash other than the one it was signed for`,
        checkpoint: summary(checkpoint),
      };
    stored.set(checkpoint.seq, checkpoint);
  }
  const latestStored = Math.max(0, ...stored.keys());
  for (const seen of await witness.witnessed()) {
    const kept = stored.get(seen.seq);
    if (kept === undefined) {
      return {
        valid: false,
        entries: 0,
        seq: seen.seq,
        reason: `${describeCheckpoint(seen)} is missing from the database, whose latest checkpoint is ${latestStored === 0 ? 'none' : latestStored}: checkpoints were deleted or rolled back`,
        checkpoint: summary(seen),
      };
    }
    if (kept.hash !== seen.hash)
      return {
        valid: false,
        entries: 0,
        seq: seen.seq,
        reason: `checkpoint ${seen.seq} in the database states another head hash than ${describeCheckpoint(seen)}`,
        checkpoint: summary(seen),
      };
  }
  const newest = stored.get(latestStored);
  if (newest !== undefined && newest.seq > head) {
    return {
      valid: false,
      entries: 0,
      seq: head + 1,
      reason: `entries ${head + 1}–${newest.seq} are missing: ${describeCheckpoint(newest)} vouches for ${newest.seq} entries, the log ends at ${head}`,
      checkpoint: summary(newest),
    };
  }
  const inRange = [...stored.values()].filter((c) => c.seq >= from && c.seq <= to).sort((a, b) => a.seq - b.seq);
  const verdict = await queries.verify(from, to, new Map(inRange.map((c) => [c.seq, c.hash])));
  if (!verdict.valid) {
    const broken = stored.get(verdict.seq);
    if (verdict.reason !== contradictsCheckpoint || broken === undefined) return verdict;
    const lastHeld = Math.max(from - 1, ...inRange.filter((c) => c.seq < broken.seq).map((c) => c.seq));
    return { ...verdict, reason: contradiction(broken, lastHeld), checkpoint: summary(broken) };
  }
  const anchor = inRange.at(-1);
  if (newest !== undefined) witness.remember(newest);
  if (anchor === undefined)
    return {
      ...verdict,
      checkpoints: 0,
      checkpoint: null,
      report: `no checkpoint names an entry from ${from} to ${to}: checked against the chain alone`,
    };
  const after =
    anchor.seq < to ? `; entries ${anchor.seq + 1}–${to} follow it and are not yet covered by a checkpoint` : '';
  return {
    ...verdict,
    checkpoints: inRange.length,
    checkpoint: summary(anchor),
    report: `consistent with ${describeCheckpoint(anchor)}${after}`,
  };
}
