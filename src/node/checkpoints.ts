import type { AuditQueries } from '../core/audit.js';
import { signCheckpoint } from '../core/checkpoint.js';
import type { Clock, Logger, SigningKeys } from '../core/ports.js';

export interface CheckpointOptions {
  readonly queries: AuditQueries & { saveCheckpoint(seq: number, hash: string, jws: string, signedAt: Date): Promise<void> };
  readonly keys: SigningKeys;
  readonly issuer: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly intervalSeconds: number;
}

/**
 * Signs the log's head at a fixed cadence. Before signing, the entries since the last checkpoint
 * are verified against it, so consecutive checkpoints are consistent; an inconsistent log is
 * reported and not signed. Several instances may race: one checkpoint per sequence number stays.
 */
export function startCheckpoints(options: CheckpointOptions): { now(): Promise<void>; stop(): void } {
  const { queries, logger } = options;
  async function now(): Promise<void> {
    const head = await queries.head();
    const last = await queries.latestCheckpoint();
    if (head.seq === 0 || (last !== undefined && last.seq >= head.seq)) return;
    const verdict = await queries.verify((last?.seq ?? 0) + 1, head.seq);
    if (!verdict.valid) {
      logger.error('audit log is inconsistent; checkpoint not signed', { seq: verdict.seq, detail: verdict.reason });
      return;
    }
    const signedAt = new Date(options.clock.now());
    const jws = await signCheckpoint(options.keys, options.issuer, head, signedAt);
    await queries.saveCheckpoint(head.seq, head.hash, jws, signedAt);
  }
  const timer = setInterval(() => {
    now().catch((error: unknown) => logger.warn('checkpoint failed; will retry', { detail: error instanceof Error ? error.message : String(error) }));
  }, options.intervalSeconds * 1000);
  timer.unref();
  return { now, stop: () => clearInterval(timer) };
}
