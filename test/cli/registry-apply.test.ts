import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/adapters/db/sql.js';
import { applyRegistryCommand } from '../../src/cli/registry-apply.js';
import { RegistryError } from '../../src/core/registry/compile.js';
import { openTestDatabase } from '../support/database.js';

const issuer = 'http://baton.test';
let db: Database;
const dir = mkdtempSync(join(tmpdir(), 'baton-registry-apply-'));
beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(async () => {
  await db?.close();
});

/** Runs the command, returning its lines. */
async function apply(file: string, dryRun = false): Promise<{ lines: string[]; version: number; changed: boolean }> {
  const lines: string[] = [];
  const result = await applyRegistryCommand(db, file, { issuer, dryRun, write: (line) => lines.push(line) });
  return { lines, ...result };
}

const versions = async () =>
  (await db.sql<{ version: number }>`SELECT version::int AS version FROM registry_documents ORDER BY version`).map(
    (r) => r.version,
  );

describe('baton registry apply', () => {
  it('applies a file to an empty store, showing every entity added', async () => {
    const { lines, version, changed } = await apply('policies/registry.json');
    expect({ version, changed }).toEqual({ version: 1, changed: true });
    expect(lines).toContain('+ tenants/acme');
    expect(lines).toContain('+ agents/orchestrator');
    expect(lines).toContain('+ users/acme/alice');
    expect(lines.at(-1)).toBe('applied as version 1');
  });

  it('says so and writes no version when the same file is applied again', async () => {
    expect(await apply('policies/registry.json')).toEqual({
      lines: ['no changes (version 1)'],
      version: 1,
      changed: false,
    });
    expect(await versions()).toEqual([1]);
  });

  it('shows a diff without writing on --dry-run, then applies it as one version, audited', async () => {
    const doc = JSON.parse(readFileSync('policies/registry.json', 'utf8')) as Record<
      string,
      { [k: string]: unknown }[]
    >;
    doc.resource_servers = (doc.resource_servers ?? []).filter((rs) => rs.id !== 'calendar');
    const orchestrator = (doc.agents ?? []).find((a) => a.id === 'orchestrator') as Record<string, unknown>;
    orchestrator.name = 'Renamed Orchestrator';
    orchestrator.scope = ['payments:read'];
    const file = join(dir, 'changed.json');
    writeFileSync(file, JSON.stringify(doc));
    const expected = ['~ agents/orchestrator: name, scope', '- resource_servers/calendar'];
    expect(await apply(file, true)).toEqual({
      lines: [...expected, 'dry run: 2 changes not applied (version 1)'],
      version: 1,
      changed: false,
    });
    expect(await versions()).toEqual([1]);
    expect(await apply(file)).toEqual({ lines: [...expected, 'applied as version 2'], version: 2, changed: true });
    expect(await versions()).toEqual([1, 2]);
    const [entry] = await db.sql<{ canonical: string }>`
      SELECT canonical FROM audit_log WHERE type = 'registry.reload' ORDER BY seq DESC LIMIT 1`;
    expect(JSON.parse(entry?.canonical ?? '{}')).toMatchObject({
      tenant: '*',
      type: 'registry.reload',
      decision: 'applied',
      client: 'baton registry apply',
      reason: `${file}: version 2: ~ agents/orchestrator: name, scope; - resource_servers/calendar`,
    });
    expect(await apply(file, true)).toEqual({ lines: ['no changes (version 2)'], version: 2, changed: false });
  });

  it('refuses an invalid file naming the file and path, and writes nothing', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{"tenants": []}');
    const refused = await apply(file).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RegistryError);
    expect((refused as RegistryError).message).toBe(
      `invalid registry ${file}:\n  ${file}: /tenants: Too small: expected array to have >=1 items`,
    );
    expect(await versions()).toEqual([1, 2]);
  });
});
