import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { hexToBytes } from '../../src/core/sha256.js';
import { sha256Base64url } from '../../src/core/secrets.js';

describe('one SHA-256 port, hex', () => {
  it.each(['', 'abc', 'a code verifier', 'é😀 in UTF-8'])('gives the bytes of the digest of %j', (text) => {
    const digest = createHash('sha256').update(text, 'utf8').digest();
    expect(sha256Hex(text)).toBe(digest.toString('hex'));
    expect(hexToBytes(sha256Hex(text))).toEqual(new Uint8Array(digest));
    expect(sha256Base64url(sha256Hex, text)).toBe(digest.toString('base64url'));
  });

  it('reads every byte value', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(hexToBytes(Buffer.from(all).toString('hex'))).toEqual(all);
  });
});
