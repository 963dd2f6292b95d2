import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The demo registry document, parsed, for a test to change. */
export type RegistryDocument = Record<string, unknown> & {
  tenants: Record<string, unknown>[];
  clients: Record<string, unknown>[];
  resource_servers: Record<string, unknown>[];
};

/** Writes the demo registry (policies/registry.json) as `change` leaves it to a file of its own; returns its path (for BATON_REGISTRY). */
export function registryFile(change: (doc: RegistryDocument) => void): string {
  const doc = JSON.parse(readFileSync('policies/registry.json', 'utf8')) as RegistryDocument;
  change(doc);
  const path = join(mkdtempSync(join(tmpdir(), 'baton-registry-')), 'registry.json');
  writeFileSync(path, JSON.stringify(doc));
  return path;
}
