import { readFileSync } from 'node:fs';
import { createRefusalTally } from '../../src/core/audit/refusal-tally.js';
import type { ServiceContext } from '../../src/core/context.js';
import type { Clock } from '../../src/core/ports.js';
import { compileRegistry } from '../../src/core/registry/compile.js';
import { registryDocumentSchema, type RegistryDocument } from '../../src/core/registry/document.js';
import type { Registry } from '../../src/core/registry/registry.js';
import type { RegistryStore } from '../../src/core/registry/store.js';
import { createApp } from '../../src/http/app.js';
import type { Fetch } from './baton.js';
import { memoryService } from './memory-baton.js';
import type { MemoryStorage } from './memory/storage.js';

/** A registry store in memory: edits one behind the other, compiled before they are kept, in force at once. */
export interface TestRegistryStore extends RegistryStore {
  readonly registry: () => Registry;
}

async function testRegistryStore(seed: unknown, issuer: string): Promise<TestRegistryStore> {
  const compile = (document: unknown) => compileRegistry(document, { issuer, file: 'registry' });
  let current = { version: 1, document: registryDocumentSchema.parse(seed) };
  let registry = await compile(seed);
  let queue: Promise<unknown> = Promise.resolve();
  return {
    registry: () => registry,
    read: async () => structuredClone(current),
    edit(_by, edit) {
      const run = queue.then(async () => {
        const edited: RegistryDocument = edit(structuredClone(current.document));
        const compiled = await compile(edited);
        current = { version: current.version + 1, document: registryDocumentSchema.parse(edited) };
        registry = compiled;
        return { version: current.version, registry };
      });
      queue = run.catch(() => undefined);
      return run;
    },
  };
}

/** A memory Baton whose registry is kept in a registry store (seeded with the demo registry), so the admin calls that edit it are served. */
export interface StoreBaton {
  readonly url: string;
  readonly issuer: string;
  readonly fetch: Fetch;
  readonly service: ServiceContext;
  readonly storage: MemoryStorage;
  readonly registryStore: TestRegistryStore;
  auditEntries(after?: number): Record<string, unknown>[];
}

/** Starts a store-backed memory Baton; `seed` changes the demo registry first. */
export async function storeBaton(
  env: Record<string, string> = {},
  options: { readonly clock?: Clock; readonly seed?: (document: Record<string, unknown[]>) => void } = {},
): Promise<StoreBaton> {
  const { config, service: fileService, storage, logger, reload } = await memoryService(env, options);
  const seed = JSON.parse(readFileSync('policies/registry.json', 'utf8')) as Record<string, unknown[]>;
  options.seed?.(seed);
  const registryStore = await testRegistryStore(seed, fileService.issuer);
  const service: ServiceContext = { ...fileService, registry: registryStore.registry };
  const app = createApp({
    service,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    checkReady: async () => undefined,
    reload,
    auditQueries: storage.queries,
    metricsText: async () => ({ contentType: 'text/plain', body: '' }),
    refusals: createRefusalTally({ clock: service.clock, intervalSeconds: config.refusalIntervalSeconds }),
    remoteAddress: () => '127.0.0.1',
    registryStore,
  });
  return {
    url: service.issuer,
    issuer: service.issuer,
    fetch: async (input, init) => app.request(input, init),
    service,
    storage,
    registryStore,
    auditEntries: (after = 0) =>
      [...storage.state.entries.values()]
        .filter((e) => e.seq > after)
        .map((e) => JSON.parse(e.canonical) as Record<string, unknown>),
  };
}
