import type { RegistryDocument } from './document.js';
import type { Registry } from './registry.js';

/** The registry document as stored, and the version it has (0 and an empty document before the first write). */
export interface StoredRegistry {
  readonly version: number;
  readonly document: RegistryDocument;
}

/** What an edit did: the version now in force, its compiled registry, and whether this edit wrote it. */
export interface RegistryEdit {
  readonly version: number;
  readonly registry: Registry;
  /** False when the edit returned the document unchanged: no version was written, nothing was notified. */
  readonly changed: boolean;
}

/**
 * The registry kept in the database: one document (the registry file's shape) with a version.
 * Edits are serialized, compiled before they commit (an invalid result is refused with a
 * RegistryError and nothing changes) and reach every instance within a second.
 */
export interface RegistryStore {
  read(): Promise<StoredRegistry>;
  /**
   * Applies `edit` to the current document (and its version) atomically; `by` names who changed it.
   * Whatever `edit` throws aborts the edit and is rethrown. An unchanged result writes nothing.
   */
  edit(by: string, edit: (document: RegistryDocument, version: number) => RegistryDocument): Promise<RegistryEdit>;
}

/** The document of an empty store (version 0): nothing registered yet. */
export function emptyRegistryDocument(): RegistryDocument {
  return {
    tenants: [],
    trusted_issuers: [],
    workload_issuers: [],
    agents: [],
    clients: [],
    resource_servers: [],
    users: [],
    suspensions: [],
  };
}

/**
 * Drops the retiring keys of agents whose overlap ended at `now` (ms): they verify nothing any more,
 * and the next edit after the overlap removes them from the document.
 */
export function dropRetiredKeys(document: RegistryDocument, now: number): RegistryDocument {
  if (!document.agents.some((a) => a.retiring_keys !== undefined && Date.parse(a.retiring_keys.until) <= now))
    return document;
  return {
    ...document,
    agents: document.agents.map((a) => {
      if (a.retiring_keys === undefined || Date.parse(a.retiring_keys.until) > now) return a;
      const { retiring_keys: _retired, ...rest } = a;
      return rest;
    }),
  };
}
