import { base64url } from 'jose';
import { hexToBytes, type Sha256 } from './sha256.js';

// Random bytes are drawn from the system's CSPRNG 4 KiB at a time and each used once: one call
// per identifier cost more than the rest of minting its token's claims.
const randomPool = new Uint8Array(4096);
let randomUsed = randomPool.length;

/** A fresh unguessable identifier (128 bits, base64url). */
export function randomId(): string {
  if (randomUsed + 16 > randomPool.length) {
    crypto.getRandomValues(randomPool);
    randomUsed = 0;
  }
  randomUsed += 16;
  return base64url.encode(randomPool.subarray(randomUsed - 16, randomUsed));
}

/** BASE64URL(SHA-256(text)): PKCE S256, and how codes, refresh tokens and remembered tokens are kept. */
export function sha256Base64url(sha256: Sha256, text: string): string {
  return base64url.encode(hexToBytes(sha256(text)));
}

/** A fresh 256-bit secret for codes, refresh tokens and CSRF tokens. */
export function secret(): string {
  return `${randomId()}${randomId()}`;
}
