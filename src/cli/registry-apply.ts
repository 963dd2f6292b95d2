import { createAuditWriter } from '../adapters/db/audit-writer.js';
import { migrate } from '../adapters/db/migrations.js';
import { createSqlRegistryStore } from '../adapters/db/registry-store.js';
import type { Database } from '../adapters/db/sql.js';
import { sha256Hex } from '../adapters/node-hash.js';
import { systemClock } from '../adapters/system-clock.js';
import { changeLine, registryDiff } from '../core/registry/diff.js';
import { keepRuntimeState } from '../core/registry/sub-agents.js';
import { applyRegistryFile, readRegistryFile } from '../node/registry-and-policies.js';

export interface ApplyOptions {
  /** Baton's issuer, which the registry is compiled against. */
  readonly issuer: string;
  /** Show the diff only; write nothing. */
  readonly dryRun: boolean;
  readonly write: (line: string) => void;
}

/**
 * `baton registry apply <file>`: validates the file, shows what it changes against the stored
 * registry (entities added, changed with the members that differ, removed) and applies it as one
 * edit, audited as a registry reload by "baton registry apply". The same file applied again
 * changes nothing and writes no version. Returns the version in force and whether this wrote it.
 */
export async function applyRegistryCommand(
  database: Database,
  file: string,
  options: ApplyOptions,
): Promise<{ version: number; changed: boolean }> {
  await migrate(database.sql);
  const store = createSqlRegistryStore(database.sql, { issuer: options.issuer, clock: systemClock });
  if (options.dryRun) {
    const document = await readRegistryFile(file, options.issuer);
    const stored = await store.read();
    const changes = registryDiff(stored.document, keepRuntimeState(stored.document, document));
    changes.forEach((c) => options.write(changeLine(c)));
    options.write(
      changes.length === 0
        ? `no changes (version ${stored.version})`
        : `dry run: ${changes.length} change${changes.length === 1 ? '' : 's'} not applied (version ${stored.version})`,
    );
    return { version: stored.version, changed: false };
  }
  const by = 'baton registry apply';
  const result = await applyRegistryFile(store, file, options.issuer, by);
  if (!result.changed) {
    options.write(`no changes (version ${result.version})`);
    return { version: result.version, changed: false };
  }
  const lines = result.changes.map(changeLine);
  lines.forEach((line) => options.write(line));
  const audit = createAuditWriter(database.sql, { sha256: sha256Hex, clock: systemClock });
  try {
    await audit.append({
      tenant: '*',
      type: 'registry.reload',
      decision: 'applied',
      client: by,
      reason: `${file}: version ${result.version}: ${lines.join('; ') || 'reordered'}`,
    });
  } finally {
    await audit.drain();
    await audit.close();
  }
  options.write(`applied as version ${result.version}`);
  return { version: result.version, changed: true };
}
