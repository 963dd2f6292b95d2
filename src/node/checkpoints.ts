import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  describeCheckpoint,
  signCheckpoint,
  verifyCheckpoint,
  type Checkpoint,
  type CheckpointWitness,
} from '../core/audit/checkpoint.js';
import type { Clock, Logger, SigningKeys, AuditQueries } from '../core/ports.js';
import type { SaveCheckpoint } from '../adapters/db/audit-reader.js';

export interface CheckpointOptions {
  readonly queries: AuditQueries & { saveCheckpoint: SaveCheckpoint };
  /** The audit keys: they sign checkpoints and nothing else. */
  readonly keys: SigningKeys;
  readonly issuer: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly intervalSeconds: number;
  /** Where each checkpoint is also published, outside the database; none if undefined. */
  readonly directory: string | undefined;
}

/** A published checkpoint's file name: its size, zero-padded so names sort as sizes do. */
const fileName = (seq: number): string => `${String(seq).padStart(16, '0')}.jws`;
const checkpointFile = /^\d{16}\.jws$/;
/** The audit keys' public half, beside the checkpoints they sign. */
const auditKeysFile = 'audit-keys.json';

/** Writes a file whole or not at all: a reader never sees half a checkpoint. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const temporary = `${file}.${randomUUID()}.tmp`;
  await writeFile(temporary, text, { mode: 0o644 });
  await rename(temporary, file);
}

/** The newest checkpoint in a published directory that verifies with the audit keys (files that do not verify vouch for nothing). */
async function latestPublished(
  directory: string,
  resolve: SigningKeys['resolve'],
  issuer?: string,
): Promise<(Checkpoint & { jws: string }) | undefined> {
  let names: string[];
  try {
    names = (await readdir(directory)).filter((n) => checkpointFile.test(n)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  for (const name of names.reverse()) {
    const jws = (await readFile(join(directory, name), 'utf8')).trim();
    try {
      return { ...(await verifyCheckpoint(resolve, jws, issuer)), jws };
    } catch {
      // A forged or damaged file: the one before it is the newest that vouches for anything.
    }
  }
  return undefined;
}

/**
 * Signs the log's head at a fixed cadence with the audit key, stores the checkpoint in the database
 * and publishes it in the checkpoint directory. Before signing, the entries since the last
 * checkpoint are verified against it, and the database's checkpoints against the newest this
 * instance knows (signed or seen here, or published): a log that contradicts them, or checkpoints
 * that went backwards, are reported and not signed. Several instances may race: one checkpoint per
 * sequence number stays, published by the instance that stored it.
 */
export async function startCheckpoints(
  options: CheckpointOptions,
): Promise<{ now(): Promise<void>; stop(): void; witness: CheckpointWitness }> {
  const { queries, logger, keys, directory, issuer } = options;
  let known: Checkpoint | undefined;
  const remember = (checkpoint: Checkpoint): void => {
    if (known === undefined || checkpoint.seq > known.seq) known = checkpoint;
  };
  if (directory !== undefined) {
    await mkdir(directory, { recursive: true });
    await writeAtomically(join(directory, auditKeysFile), `${JSON.stringify(keys.publicJwks, null, 2)}\n`);
  }
  const witness: CheckpointWitness = {
    resolve: keys.resolve,
    publicJwks: keys.publicJwks,
    async witnessed() {
      const published = directory === undefined ? undefined : await latestPublished(directory, keys.resolve, issuer);
      if (published !== undefined) remember(published);
      return known === undefined ? [] : [known];
    },
    remember,
  };

  async function now(): Promise<void> {
    const [seen] = await witness.witnessed();
    const head = await queries.head();
    const stored = await queries.latestCheckpoint();
    let last: Checkpoint | undefined;
    if (stored !== undefined) {
      try {
        last = await verifyCheckpoint(keys.resolve, stored.jws, issuer);
      } catch (error) {
        logger.error(
          'the latest audit checkpoint in the database does not verify with the audit keys; checkpoint not signed',
          { seq: stored.seq, detail: error instanceof Error ? error.message : String(error) },
        );
        return;
      }
    }
    if (
      seen !== undefined &&
      (last === undefined || last.seq < seen.seq || (last.seq === seen.seq && last.hash !== seen.hash))
    ) {
      logger.error('audit checkpoints went backwards: the database lacks one signed before; checkpoint not signed', {
        seq: seen.seq,
        detail: `${describeCheckpoint(seen)}; the database's latest is ${last === undefined ? 'none' : last.seq}`,
      });
      return;
    }
    if (last !== undefined && last.seq > head.seq) {
      logger.error('the audit log is shorter than its latest checkpoint; checkpoint not signed', {
        seq: last.seq,
        detail: `the log ends at ${head.seq}`,
      });
      return;
    }
    if (head.seq === 0 || (last !== undefined && last.seq >= head.seq)) return;
    const verdict =
      last === undefined
        ? await queries.verify(1, head.seq)
        : await queries.verify(last.seq, head.seq, new Map([[last.seq, last.hash]]));
    if (!verdict.valid) {
      logger.error('audit log is inconsistent; checkpoint not signed', { seq: verdict.seq, detail: verdict.reason });
      return;
    }
    const signedAt = new Date(options.clock.now());
    const jws = await signCheckpoint(keys, issuer, head, signedAt);
    if (!(await queries.saveCheckpoint(head.seq, head.hash, jws, signedAt))) return;
    remember({ seq: head.seq, hash: head.hash, iat: Math.floor(signedAt.getTime() / 1000) });
    if (directory !== undefined) await writeAtomically(join(directory, fileName(head.seq)), `${jws}\n`);
  }
  const timer = setInterval(() => {
    now().catch((error: unknown) =>
      logger.warn('checkpoint failed; will retry', { detail: error instanceof Error ? error.message : String(error) }),
    );
  }, options.intervalSeconds * 1000);
  timer.unref();
  return { now, stop: () => clearInterval(timer), witness };
}
