import { verifyChain, type ChainLine, type Sha256Hex } from '../core/audit.js';
import { verifyCheckpoint } from '../core/checkpoint.js';
import { importPublicJwks } from '../core/jwks.js';
import type { Jwks } from '../core/registry-schema.js';

export interface ExportVerdict {
  readonly ok: boolean;
  readonly message: string;
}

/**
 * Verifies an export from `GET /audit/entries` offline: every whole entry re-canonicalized
 * (RFC 8785) and re-hashed, every line linked to the one before with no gap, and every
 * checkpoint's signature checked against Baton's public keys and against the entry it names.
 */
export async function verifyExport(text: string, jwks: Jwks, sha256: Sha256Hex): Promise<ExportVerdict> {
  const lines: ChainLine[] = [];
  const checkpoints: string[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    if (raw.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      return { ok: false, message: `line ${index + 1}: not valid JSON` };
    }
    const record = value as Record<string, unknown>;
    if (typeof record.checkpoint === 'string') checkpoints.push(record.checkpoint);
    else if (typeof record.seq === 'number' && typeof record.prev_hash === 'string' && typeof record.hash === 'string') {
      lines.push({ seq: record.seq, prev_hash: record.prev_hash, hash: record.hash, ...(typeof record.canonical === 'string' ? { canonical: record.canonical } : {}) });
    } else return { ok: false, message: `line ${index + 1}: neither an entry nor a checkpoint` };
  }
  if (lines.length === 0) return { ok: false, message: 'the export holds no entries' };
  lines.sort((a, b) => a.seq - b.seq);
  const verdict = await verifyChain(sha256, lines);
  if (!verdict.valid) return { ok: false, message: `entry ${verdict.seq}: ${verdict.reason}` };
  const resolve = await importPublicJwks(jwks);
  const bySeq = new Map(lines.map((l) => [l.seq, l.hash]));
  for (const jws of checkpoints) {
    let checkpoint;
    try {
      checkpoint = await verifyCheckpoint(resolve, jws);
    } catch (error) {
      return { ok: false, message: `checkpoint: signature does not verify (${error instanceof Error ? error.message : String(error)})` };
    }
    const hash = bySeq.get(checkpoint.seq);
    if (hash !== undefined && hash !== checkpoint.hash) return { ok: false, message: `entry ${checkpoint.seq}: does not match the signed checkpoint` };
  }
  const whole = lines.filter((l) => l.canonical !== undefined).length;
  return { ok: true, message: `${verdict.entries} entries valid (${whole} whole, ${verdict.entries - whole} redacted), ${checkpoints.length} checkpoints valid` };
}
