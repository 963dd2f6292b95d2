import { OAuthError } from './errors.js';

export type AuthorizationDetail = Readonly<Record<string, unknown>> & { readonly type: string };

/** Parses the RFC 9396 `authorization_details` parameter: a JSON array of objects with a string `type`. */
export function parseAuthorizationDetails(raw: string | undefined, maxEntries: number): AuthorizationDetail[] | undefined {
  if (raw === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new OAuthError('invalid_authorization_details', 'authorization_details is not valid JSON');
  }
  if (!Array.isArray(value)) throw new OAuthError('invalid_authorization_details', 'authorization_details must be a JSON array');
  if (value.length > maxEntries) throw new OAuthError('invalid_authorization_details', `authorization_details has more than ${maxEntries} entries`);
  value.forEach((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new OAuthError('invalid_authorization_details', `authorization_details[${i}] must be an object`);
    }
    if (typeof (entry as { type?: unknown }).type !== 'string') {
      throw new OAuthError('invalid_authorization_details', `authorization_details[${i}] lacks a string "type"`);
    }
  });
  return value as AuthorizationDetail[];
}

/** Reads the `authorization_details` claim of a verified token (absent means none). */
export function authorizationDetailsClaim(value: unknown, param: string): AuthorizationDetail[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((e) => typeof e === 'object' && e !== null && typeof (e as { type?: unknown }).type === 'string')) {
    throw new OAuthError('invalid_request', `${param} has a malformed authorization_details claim`);
  }
  return value as AuthorizationDetail[];
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * Grants requested details only when each entry equals one the subject holds; without a
 * request the subject's details carry over unchanged, so a hop never drops a narrowing entry.
 */
export function attenuateAuthorizationDetails(requested: AuthorizationDetail[] | undefined, held: readonly AuthorizationDetail[]): AuthorizationDetail[] {
  if (requested === undefined) return [...held];
  requested.forEach((entry, i) => {
    if (!held.some((h) => deepEqual(h, entry))) {
      throw new OAuthError('invalid_authorization_details', `authorization_details[${i}] is not covered by the subject token`);
    }
  });
  if (held.length > 0 && requested.length === 0) {
    throw new OAuthError('invalid_authorization_details', 'authorization_details may not be dropped from a token that carries them');
  }
  return requested;
}
