import { createHash } from 'node:crypto';

/** SHA-256 hex with Node's native hash: synchronous and far cheaper per entry than Web Crypto. */
export const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
