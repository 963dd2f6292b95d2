import { scrypt, timingSafeEqual } from 'node:crypto';
import type { Authenticator } from '../core/ports.js';
import { userKey, type Registry } from '../core/registry/registry.js';

function scryptAsync(
  password: string,
  salt: Buffer,
  length: number,
  cost: { N: number; r: number; p: number },
): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, length, { ...cost, maxmem: 256 * cost.N * cost.r }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

// A fixed hash to spend the same time on unknown users as on known ones.
const decoy = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

/** Password sign-in against the registry's built-in users (scrypt hashes). */
export function passwordAuthenticator(registry: () => Registry): Authenticator {
  return {
    fields: [
      { name: 'username', label: 'User name', type: 'text', autocomplete: 'username' },
      { name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password' },
    ],
    async authenticate(tenant, input) {
      const username = input.username ?? '';
      const password = input.password ?? '';
      if (username.length > 256 || password.length > 1024) return undefined;
      const user = registry().users.get(userKey(tenant, username));
      const [, n, r, p, salt, hash] = (user?.passwordScrypt ?? decoy).split('$');
      const expected = Buffer.from(hash ?? '', 'base64url');
      const actual = await scryptAsync(password, Buffer.from(salt ?? '', 'base64url'), expected.length || 32, {
        N: Number(n),
        r: Number(r),
        p: Number(p),
      });
      return user !== undefined && actual.length === expected.length && timingSafeEqual(actual, expected)
        ? user.sub
        : undefined;
    },
  };
}
