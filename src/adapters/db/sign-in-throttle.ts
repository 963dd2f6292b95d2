import { withinDeadline } from './deadline.js';
import { isUserKey, signInPolicy } from '../../core/code-flow/sign-in-throttle.js';
import type { Sql } from './sql.js';
import type { SignInThrottle, ThrottleKey } from '../../core/ports.js';

/**
 * The sign-in throttle over SQL, shared by every instance: one row per key. An attempt is counted,
 * and the lock it earns taken, in one upsert: concurrent upserts of a key wait for each other and
 * see the lock the one before took.
 */
export function createSignInThrottle(sql: Sql, deadlineMs = 3000): SignInThrottle {
  const countOne = async (key: ThrottleKey, now: Date): Promise<Date | undefined> => {
    const forgetBefore = new Date(now.getTime() - signInPolicy.windowSeconds * 1000);
    const { firstLockSeconds, maxLockSeconds } = signInPolicy;
    const [counted] = await sql<{ attempts: number }>`
      INSERT INTO sign_in_attempts AS a (key, attempts, last_attempt) VALUES (${key.key}, 1, ${now})
      ON CONFLICT (key) DO UPDATE SET
        attempts = CASE WHEN a.last_attempt < ${forgetBefore} THEN 1 ELSE a.attempts + 1 END,
        last_attempt = ${now},
        locked_until = CASE
          WHEN a.last_attempt >= ${forgetBefore} AND a.attempts + 1 > ${key.allowance}
          THEN ${now}::timestamptz + make_interval(secs => least(${maxLockSeconds}::float8, ${firstLockSeconds}::float8 * power(2, least(20, a.attempts - ${key.allowance}))))
        END
      WHERE a.locked_until IS NULL OR a.locked_until <= ${now}
      RETURNING attempts`;
    if (counted !== undefined) return undefined;
    const [locked] = await sql<{
      locked_until: Date;
    }>`SELECT locked_until FROM sign_in_attempts WHERE key = ${key.key}`;
    return locked?.locked_until ?? undefined;
  };
  return {
    async attempt(keys, now) {
      return withinDeadline(
        (async () => {
          for (const key of keys) {
            const until = await countOne(key, now);
            if (until !== undefined) return until;
          }
          return undefined;
        })(),
        deadlineMs,
      );
    },
    async succeeded(keys) {
      await withinDeadline(
        Promise.all(
          keys.map((key) =>
            isUserKey(key)
              ? sql`DELETE FROM sign_in_attempts WHERE key = ${key.key}`
              : sql`UPDATE sign_in_attempts SET attempts = greatest(attempts - 1, 0) WHERE key = ${key.key}`,
          ),
        ),
        deadlineMs,
      );
    },
  };
}
