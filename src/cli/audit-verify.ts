import { chainCheck, type ChainLine, type Sha256Hex } from '../core/audit.js';
import { verifyCheckpoint } from '../core/checkpoint.js';
import { importPublicJwks } from '../core/jwks.js';
import type { Jwks } from '../core/registry-schema.js';

export interface ExportVerdict {
  readonly ok: boolean;
  readonly message: string;
}

/** How a checkpoint was checked: against the entry it names, or (that entry not in the export) by its signature only. */
function checkpointSummary(checked: number, signatureOnly: number): string {
  const valid = `${checked} checkpoints valid`;
  return signatureOnly === 0 ? valid : `${valid}, ${signatureOnly} signature only (the entry named is not in the export)`;
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
 * the one before in sequence order with no gap, and every checkpoint's signature checked against
 * Baton's public keys and against the entry it names when the export holds that entry (the others
 * are reported as "signature only").
 */
export async function verifyExport(source: string | AsyncIterable<string>, jwks: Jwks, sha256: Sha256Hex): Promise<ExportVerdict> {
  const check = chainCheck(sha256);
  const checkpoints: string[] = [];
  const hashes = hashIndex();
  let page: ChainLine[] = [];
  let whole = 0;
  let last = 0;
  let number = 0;
  const flush = async (): Promise<ExportVerdict | undefined> => {
    const lines = page;
    page = [];
    if (!(await check.add(lines))) {
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
      else if (typeof record.seq === 'number' && typeof record.prev_hash === 'string' && typeof record.hash === 'string') {
        page.push({ seq: record.seq, prev_hash: record.prev_hash, hash: record.hash, ...(typeof record.canonical === 'string' ? { canonical: record.canonical } : {}) });
        if (typeof record.canonical === 'string') whole += 1;
        last = record.seq;
      } else return { ok: false, message: `line ${number}: neither an entry nor a checkpoint` };
    }
    if (page.length >= pageSize) {
      const failed = await flush();
      if (failed !== undefined) return failed;
    }
  }
  const failed = await flush();
  if (failed !== undefined) return failed;
  const verdict = check.verdict();
  if (verdict.entries === 0) return { ok: false, message: 'the export holds no entries' };
  const resolve = await importPublicJwks(jwks);
  let signatureOnly = 0;
  for (const jws of checkpoints) {
    let checkpoint;
    try {
      checkpoint = await verifyCheckpoint(resolve, jws);
    } catch (error) {
      return { ok: false, message: `checkpoint: signature does not verify (${error instanceof Error ? error.message : String(error)})` };
    }
    // Only a checkpoint held against an entry of the export vouches for it; one naming an entry
    // outside it (before `from`, or appended after the export was read) is checked by signature alone.
    const hash = hashes.get(checkpoint.seq, last);
    if (hash === undefined) signatureOnly += 1;
    else if (hash !== checkpoint.hash) return { ok: false, message: `entry ${checkpoint.seq}: does not match the signed checkpoint` };
  }
  return { ok: true, message: `${verdict.entries} entries valid (${whole} whole, ${verdict.entries - whole} redacted), ${checkpointSummary(checkpoints.length - signatureOnly, signatureOnly)}` };
}
