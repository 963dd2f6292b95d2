import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What must never appear in a log: tokens (JWTs), demo secrets and passwords, OAuth secrets by name. */
const forbidden: readonly [string, RegExp][] = [
  ['a JWT', /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}/],
  ['a client secret', /demo-only-/],
  ['a password', /alice-demo-password/],
  [
    'a secret parameter',
    /"(code|code_verifier|refresh_token|access_token|client_secret|password|client_assertion|subject_token|actor_token)"\s*:/,
  ],
];

/** Gives every test worker a folder to write what Baton logged, and scans all of it at the end. */
export function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'baton-test-logs-'));
  process.env.BATON_TEST_LOG_DIR = dir;
  return () => {
    const files = readdirSync(dir);
    const problems: string[] = [];
    let lines = 0;
    for (const file of files) {
      for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
        if (line === '') continue;
        lines += 1;
        for (const [what, pattern] of forbidden)
          if (pattern.test(line)) problems.push(`${what} in ${file}: ${line.slice(0, 200)}`);
      }
    }
    rmSync(dir, { recursive: true, force: true });
    if (problems.length > 0)
      throw new Error(`secrets reached the logs (${lines} lines scanned):\n${problems.join('\n')}`);
  };
}
