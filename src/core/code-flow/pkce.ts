import { OAuthError } from '../errors.js';
import type { Sha256 } from '../sha256.js';
import { sha256Base64url } from '../secrets.js';

const verifierPattern = /^[A-Za-z0-9._~-]{43,128}$/;

/** Checks a PKCE verifier against the S256 challenge of the code. */
export function verifyPkce(sha256: Sha256, verifier: string | undefined, challenge: string | undefined): void {
  if (verifier === undefined) throw new OAuthError('invalid_request', 'code_verifier is required');
  if (!verifierPattern.test(verifier)) throw new OAuthError('invalid_grant', 'code_verifier is malformed');
  if (challenge === undefined || sha256Base64url(sha256, verifier) !== challenge)
    throw new OAuthError('invalid_grant', 'code_verifier does not match the code_challenge');
}
