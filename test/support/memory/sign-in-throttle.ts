import { isUserKey, signInPolicy } from '../../../src/core/code-flow/sign-in-throttle.js';
import type { SignInThrottle, ThrottleKey } from '../../../src/core/ports.js';
import type { MemoryState } from './state.js';

/**
 * The sign-in throttle in memory, counting as the SQL upsert does: an attempt on an unlocked key
 * is counted (from one again after a quiet window), and one past the allowance locks the key for
 * a time that doubles per attempt, up to the cap; an attempt on a locked key gets its lock's end.
 */
export function memorySignInThrottle(state: MemoryState): SignInThrottle {
  const countOne = (key: ThrottleKey, now: Date): Date | undefined => {
    const row = state.signInAttempts.get(key.key);
    if (row === undefined) {
      state.signInAttempts.set(key.key, { attempts: 1, lastAttempt: now, lockedUntil: undefined });
      return undefined;
    }
    if (row.lockedUntil !== undefined && row.lockedUntil > now) return row.lockedUntil;
    const recent = row.lastAttempt.getTime() >= now.getTime() - signInPolicy.windowSeconds * 1000;
    const { firstLockSeconds, maxLockSeconds } = signInPolicy;
    const lockSeconds = Math.min(maxLockSeconds, firstLockSeconds * 2 ** Math.min(20, row.attempts - key.allowance));
    row.lockedUntil =
      recent && row.attempts + 1 > key.allowance ? new Date(now.getTime() + lockSeconds * 1000) : undefined;
    row.attempts = recent ? row.attempts + 1 : 1;
    row.lastAttempt = now;
    return undefined;
  };
  return {
    async attempt(keys, now) {
      for (const key of keys) {
        const until = countOne(key, now);
        if (until !== undefined) return until;
      }
      return undefined;
    },
    async succeeded(keys) {
      for (const key of keys) {
        const row = state.signInAttempts.get(key.key);
        if (isUserKey(key)) state.signInAttempts.delete(key.key);
        else if (row !== undefined) row.attempts = Math.max(row.attempts - 1, 0);
      }
    },
  };
}
