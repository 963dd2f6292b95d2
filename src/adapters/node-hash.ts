import { createHash } from 'node:crypto';

/** SHA-256 hex with Node's native hash: synchronous and far cheaper per entry than Web Crypto. */
export const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** SHA-256 bytes of UTF-8 text, synchronously (core's `Sha256` port). */
export const sha256Digest = (text: string): Uint8Array => createHash('sha256').update(text, 'utf8').digest();
