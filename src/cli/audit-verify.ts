import { chainCheck, type ChainLine } from '../core/audit/chain.js';
import type { Sha256 } from '../core/sha256.js';
import {
  contradiction,
  describeCheckpoint,
  verifyCheckpoint,
  type Checkpoint,
  type SignedCheckpoint,
} from '../core/audit/checkpoint.js';
import { importPublicJwks } from '../core/tokens/jwks.js';
import type { Jwks } from '../core/registry/schema.js';

export interface ExportVerdict {
  readonly ok: boolean;
  readonly message: string;
  /** The newest valid checkpoint seen (for a witness to remember), when the export verifies. */
  readonly newest?: SignedCheckpoint;
}

export interface ExportSources {
  /** Checkpoints from elsewhere than the export (a published checkpoint directory), as JWS. */
  readonly checkpoints?: readonly string[];
  /** The newest checkpoint a witness saw before: none may be older, none of its size may differ. */
  readonly witness?: Checkpoint;
}

/** How a checkpoint was checked: against the entry it names, or (that entry not in the export) by its signature only. */
function checkpointSummary(checked: number, signatureOnly: number): string {
  const valid = `${checked} checkpoints valid`;
  return signatureOnly === 0
    ? valid
    : `${valid}, ${signatureOnly} signature only (the entry named is not in the export)`;
}

/** Lines checked together: the hash check runs a page at a time rather than awaiting each line. */
const pageSize = 1000;

/**
 * The lines of a text given whole or in chunks of any size (a file stream), a batch at a time and
 * without holding the text whole.
 */
async function* textLines(source: string | AsyncIterable<string>): AsyncGenerator<string[]> {
  let rest = '';
  for await (const chunk of typeof source === 'string' ? [source] : source) {
    const text = rest + chunk;
    let batch: string[] = [];
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      batch.push(text.slice(start, end));
      start = end + 1;
      if (batch.length === pageSize) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
    rest = text.slice(start);
  }
  if (rest !== '') yield [rest];
}

/**
 * Each entry's hash by sequence number, 32 bytes apiece, so a checkpoint that follows its entry
 * (as in an export) can be held against it without keeping every line.
 */
function hashIndex() {
  const perBlock = 1 << 16;
  const blocks: Buffer[] = [];
  /** Hashes that are not 64 lowercase hex digits (a redacted line's hash is checked for linkage only) are kept as they are. */
  const unusual = new Map<number, string>();
  let first: number | undefined;
  return {
    set(seq: number, hash: string): void {
      if (!/^[0-9a-f]{64}$/.test(hash)) {
        unusual.set(seq, hash);
        return;
      }
      first ??= seq;
      const index = seq - first;
      const block = Math.floor(index / perBlock);
      while (blocks.length <= block) blocks.push(Buffer.alloc(perBlock * 32));
      (blocks[block] as Buffer).write(hash, (index % perBlock) * 32, 32, 'hex');
    },
    /** The hash recorded for `seq`, or undefined if the export has no such entry. */
    get(seq: number, last: number): string | undefined {
      const kept = unusual.get(seq);
      if (kept !== undefined) return kept;
      if (first === undefined || seq < first || seq > last) return undefined;
      const index = seq - first;
      const block = blocks[Math.floor(index / perBlock)] as Buffer;
      return block.toString('hex', (index % perBlock) * 32, (index % perBlock) * 32 + 32);
    },
  };
}

/**
 * Verifies an export from `GET /audit/entries` offline, reading it line by line (a file stream,
 * or a string): every whole entry re-canonicalized (RFC 8785) and re-hashed, every line linked to
 * the one before in sequence order with no gap, and every checkpoint (the export's own and those
 * from `sources`) checked against the audit keys and against the entry it names when the export
 * holds that entry (the others are reported as "signature only"). A rewrite whose later hashes were
 * all recomputed contradicts the first checkpoint after it. With a witness, a checkpoint sequence
 * that goes backwards (nothing as new as what was seen) or forks is refused.
 */
export async function verifyExport(
  source: string | AsyncIterable<string>,
  jwks: Jwks,
  sha256: Sha256,
  sources: ExportSources = {},
): Promise<ExportVerdict> {
  const check = chainCheck(sha256);
  const checkpoints: string[] = [];
  const hashes = hashIndex();
  let page: ChainLine[] = [];
  let whole = 0;
  let first = 0;
  let last = 0;
  let number = 0;
  const flush = (): ExportVerdict | undefined => {
    const lines = page;
    page = [];
    if (!check.add(lines)) {
      const verdict = check.verdict();
      return verdict.valid ? undefined : { ok: false, message: `entry ${verdict.seq}: ${verdict.reason}` };
    }
    for (const l of lines) hashes.set(l.seq, l.hash);
    return undefined;
  };
  for await (const batch of textLines(source)) {
    for (const raw of batch) {
      number += 1;
      if (raw.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch {
        return { ok: false, message: `line ${number}: not valid JSON` };
      }
      const record = (value ?? {}) as Record<string, unknown>;
      if (typeof record.checkpoint === 'string') checkpoints.push(record.checkpoint);
      else if (
        typeof record.seq === 'number' &&
        typeof record.prev_hash === 'string' &&
        typeof record.hash === 'string'
      ) {
        page.push({
          seq: record.seq,
          prev_hash: record.prev_hash,
          hash: record.hash,
          ...(typeof record.canonical === 'string' ? { canonical: record.canonical } : {}),
        });
        if (typeof record.canonical === 'string') whole += 1;
        if (first === 0) first = record.seq;
        last = record.seq;
      } else return { ok: false, message: `line ${number}: neither an entry nor a checkpoint` };
    }
    if (page.length >= pageSize) {
      const failed = flush();
      if (failed !== undefined) return failed;
    }
  }
  const failed = flush();
  if (failed !== undefined) return failed;
  const verdict = check.verdict();
  if (verdict.entries === 0) return { ok: false, message: 'the export holds no entries' };
  const resolve = await importPublicJwks(jwks);
  const bySeq = new Map<number, SignedCheckpoint>();
  for (const jws of [...checkpoints, ...(sources.checkpoints ?? [])]) {
    let checkpoint;
    try {
      checkpoint = await verifyCheckpoint(resolve, jws);
    } catch (error) {
      return {
        ok: false,
        message: `checkpoint: signature does not verify (${error instanceof Error ? error.message : String(error)})`,
      };
    }
    const other = bySeq.get(checkpoint.seq);
    if (other !== undefined && other.hash !== checkpoint.hash)
      return {
        ok: false,
        message: `checkpoint ${checkpoint.seq}: two signed checkpoints of this size state different head hashes`,
      };
    if (other === undefined) bySeq.set(checkpoint.seq, { ...checkpoint, jws });
  }
  const { witness } = sources;
  const newest = [...bySeq.values()].reduce<SignedCheckpoint | undefined>(
    (a, b) => (a === undefined || b.seq > a.seq ? b : a),
    undefined,
  );
  if (witness !== undefined) {
    if (newest === undefined || newest.seq < witness.seq) {
      return {
        ok: false,
        message: `checkpoints went backwards: ${describeCheckpoint(witness)} was seen before, but the newest here is ${newest === undefined ? 'none' : `checkpoint ${newest.seq}`}`,
      };
    }
    const same = bySeq.get(witness.seq);
    if (same !== undefined && same.hash !== witness.hash)
      return {
        ok: false,
        message: `checkpoint ${witness.seq}: differs from ${describeCheckpoint(witness)}, seen before`,
      };
  }
  // The witness's checkpoint vouches for its entry as any other does.
  const anchors: Checkpoint[] = [
    ...bySeq.values(),
    ...(witness === undefined || bySeq.has(witness.seq) ? [] : [witness]),
  ].sort((a, b) => a.seq - b.seq);
  let signatureOnly = 0;
  let held: Checkpoint | undefined;
  for (const checkpoint of anchors) {
    // Only a checkpoint held against an entry of the export vouches for it; one naming an entry
    // outside it (before `from`, or appended after the export was read) is checked by signature alone.
    const hash = hashes.get(checkpoint.seq, last);
    if (hash === undefined) signatureOnly += 1;
    else if (hash !== checkpoint.hash)
      return { ok: false, message: `entry ${checkpoint.seq}: ${contradiction(checkpoint, held?.seq ?? first - 1)}` };
    else held = checkpoint;
  }
  const consistent = held === undefined ? '' : `; consistent with ${describeCheckpoint(held)}`;
  return {
    ok: true,
    message: `${verdict.entries} entries valid (${whole} whole, ${verdict.entries - whole} redacted), ${checkpointSummary(anchors.length - signatureOnly, signatureOnly)}${consistent}`,
    ...(newest === undefined ? {} : { newest }),
  };
}
