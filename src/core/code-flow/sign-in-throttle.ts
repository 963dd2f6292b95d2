import type { Sha256 } from '../sha256.js';
import type { ThrottleKey } from '../ports.js';
import { sha256Base64url } from '../secrets.js';

/**
 * Password sign-in throttling, per user of a tenant and per client address. Each key may fail a
 * number of attempts; every attempt past that allowance locks the key for a time that doubles
 * with each such attempt, up to a cap, so that at most one password is tried per lock. The lock is
 * taken when the attempt is counted, before the password is checked, so attempts sent side by side
 * (to one instance or several) cannot slip past it. A successful sign-in clears the user's count
 * and takes its attempt back from the address's. A key with no attempt for a window is forgotten.
 */
export const signInPolicy = {
  /** Attempts a user may fail within the window before the user is locked. */
  perUser: 5,
  /** Attempts one address may fail within the window (across users) before it is locked. */
  perAddress: 20,
  /** A key's count is forgotten once it has seen no attempt for this long. */
  windowSeconds: 60 * 60,
  /** The first lock; each further attempt doubles it. */
  firstLockSeconds: 30,
  maxLockSeconds: 15 * 60,
} as const;

/**
 * The throttle keys of one sign-in attempt, in the order they are counted. Keys are hashes, so any text the form carries can be
 * stored and no user name is kept in clear.
 */
export function signInKeys(
  sha256: Sha256,
  tenant: string,
  username: string,
  address: string | undefined,
): ThrottleKey[] {
  const user: ThrottleKey = {
    key: `user:${sha256Base64url(sha256, JSON.stringify([tenant, username]))}`,
    allowance: signInPolicy.perUser,
  };
  // The address comes first: an attempt refused for its address is not counted against the user.
  return address === undefined
    ? [user]
    : [{ key: `address:${sha256Base64url(sha256, address)}`, allowance: signInPolicy.perAddress }, user];
}

/** Whether a key's attempt resets its account: a user key forgets its failures, an address only this attempt. */
export function isUserKey(key: ThrottleKey): boolean {
  return key.key.startsWith('user:');
}
