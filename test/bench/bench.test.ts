import { execFileSync, spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseUrl } from '../support/database.js';

// `npm run bench` end to end, as a smoke run (--quick): every part starts, measures and stops,
// and the one table has a row for every measure, the two ratios as the median of their pairs.
// Speeds are not checked: timing is for the benchmarks, never for tests. The bench needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust
// authentication, database `test`), which is what BATON_TEST_DATABASE_URL names in CI; without it
// the test is skipped, as the other PostgreSQL tests are.
const skip = testDatabaseUrl === undefined;

const header = '| measure | embedded | postgres | SPEC target | verdict (postgres) |';
const measures = [
  'token exchange hop 1: exchanges/s (flat out)',
  'token exchange hop 1: p50 / p99 ms (flat out)',
  'token exchange hop 1: p99 ms at 1,000/s (achieved/s)',
  'token exchange hop 2: exchanges/s (flat out)',
  'token exchange hop 2: p50 / p99 ms (flat out)',
  'token exchange hop 2: p99 ms at 1,000/s (achieved/s)',
  'client-credentials grant: grants/s (flat out)',
  'client-credentials grant: p50 / p99 ms (flat out)',
  'token endpoint: Baton CPU µs per request (hop 1 / hop 2 / client credentials)',
  'token endpoint: Baton RSS MiB at the end (flat-out run / 1,000/s run)',
  '/authorize: decisions/s (flat out)',
  '/authorize: p50 / p99 ms (flat out)',
  '/authorize: p99 ms at 2,000/s (achieved/s)',
  '/authorize: decisions/s with 1,000 other tokens revoked (÷ without)',
  '/authorize: decisions/s, a new amount in every request (flat out)',
  '/authorize: Baton CPU µs per decision (flat out: same request / a new amount in each)',
  '/authorize: Baton RSS MiB at the end (peak)',
  'audit: appends/s (group-commit writer, 512 in flight)',
  'audit: verification entries/s (reader.verify over the whole log)',
  'audit: GET /audit/actions/{id} p50 / p99 ms (1 connection)',
  'audit: GET /audit/actions/{id} p99 ms (8 connections)',
  'audit: Baton RSS MiB at the end',
  'in-process floor: exchanges/s on one event loop (µs per exchange)',
  'exchange hop 1 (postgres) ÷ in-process floor',
  'node-oidc-provider client credentials: grants/s, p50 / p99 ms, RSS MiB (peer)',
  'client credentials (postgres) ÷ node-oidc-provider',
];

beforeAll(() => {
  if (skip) return;
  // The bench scripts import from dist/.
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
});

describe.skipIf(skip)('npm run bench', () => {
  it('runs every part with --quick on PostgreSQL and prints one table with a row per measure', async () => {
    // PostgreSQL only: the embedded setup runs the same code and would double the time (PGlite starts slowly).
    const child = spawn(process.execPath, ['bench/run.mjs', '--quick', '--setup', 'postgres'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));

    expect(code, `bench/run.mjs --quick failed; stdout:\n${stdout}\nstderr (tail):\n${stderr.slice(-4000)}`).toBe(0);
    expect(stdout).toMatch(/^node v\d+\.\d+\.\d+, \d+ CPUs .*\nbefore the start: \d+% CPU idle, load average /m);
    const lines = stdout.split('\n');
    expect(lines.filter((line) => line === header)).toHaveLength(1);
    const rows = lines.filter((line) => line.startsWith('| ') && line !== header && !line.startsWith('| --- |'));
    expect(rows.map((row) => row.split(' | ')[0]?.slice(2))).toEqual(measures);
    // Five columns, and a figure for PostgreSQL in every row: all parts ran.
    for (const row of rows) {
      const cells = row.split(' | ');
      expect(cells, row).toHaveLength(5);
      expect(cells[2], row).not.toMatch(/^(failed|not run|-)$/);
    }
    // Each ratio: the median of the pairs' ratios, the least and the greatest, over --quick's 2 pairs.
    const ratioMeasures = [
      'exchange hop 1 (postgres) ÷ in-process floor',
      'client credentials (postgres) ÷ node-oidc-provider',
    ];
    const ratioCells = rows
      .filter((row) => ratioMeasures.some((measure) => row.startsWith(`| ${measure} | `)))
      .map((row) => row.split(' | ')[2]);
    expect(ratioCells).toHaveLength(2);
    for (const cell of ratioCells) expect(cell).toMatch(/^\d+\.\d\d \(\d+\.\d\d–\d+\.\d\d, 2 pairs\)$/);
  }, 600_000);
});
