import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A policy folder's digest computed as the README tells an operator to, independently of Baton's
 * code: SHA-256 of the JSON object {file name: text} of its .cedar, .cedarschema and entities.json
 * files, members sorted, no whitespace (RFC 8785 for these names and texts).
 */
export function folderDigest(dir: string): string {
  const names = readdirSync(dir)
    .filter((n) => n.endsWith('.cedar') || n.endsWith('.cedarschema') || n === 'entities.json')
    .sort();
  const json = JSON.stringify(Object.fromEntries(names.map((n) => [n, readFileSync(join(dir, n), 'utf8')])));
  return createHash('sha256').update(json, 'utf8').digest('hex');
}

/** The digest of the shipped policy set (policies/). */
export const shippedDigest = folderDigest('policies');
