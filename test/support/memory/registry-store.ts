import type { Clock } from '../../../src/core/ports.js';
import type { RegistryDocument } from '../../../src/core/registry/document.js';
import { runEdit } from '../../../src/core/registry/edit.js';
import type { Registry } from '../../../src/core/registry/registry.js';
import { emptyRegistryDocument, type RegistryStore } from '../../../src/core/registry/store.js';

/** The registry store in memory, with what it holds for a test to read. */
export interface MemoryRegistryStore extends RegistryStore {
  /** Every version written, oldest first, with who wrote it. */
  readonly versions: { readonly version: number; readonly document: RegistryDocument; readonly by: string }[];
  /** The compiled registry of the newest version (the one an instance holds). */
  readonly registry: () => Registry;
}

/**
 * The RegistryStore in memory: edits queue one behind the other (as on the database's lock), run
 * the same edit step (runEdit), and are in force at once. Seeded with `seed` as version 1.
 */
export async function memoryRegistryStore(
  seed: RegistryDocument,
  options: { readonly issuer: string; readonly clock: Clock },
): Promise<MemoryRegistryStore> {
  const compile = { issuer: options.issuer, file: 'registry', now: () => options.clock.now() };
  const versions: MemoryRegistryStore['versions'] = [];
  let current = { version: 0, document: emptyRegistryDocument() };
  let registry: Registry | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  const store: MemoryRegistryStore = {
    versions,
    registry: () => registry as Registry,
    read: async () => structuredClone(current),
    edit(by, edit) {
      const run = queue.then(async () => {
        const outcome = await runEdit(current.document, current.version, edit, compile);
        if (!outcome.changed) return { version: current.version, registry: outcome.registry, changed: false };
        current = { version: current.version + 1, document: outcome.document };
        versions.push({ ...current, by });
        registry = outcome.registry;
        return { version: current.version, registry: outcome.registry, changed: true };
      });
      queue = run.catch(() => undefined);
      return run;
    },
  };
  await store.edit('seed', () => seed);
  return store;
}
