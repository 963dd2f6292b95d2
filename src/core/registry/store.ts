import type { RegistryDocument } from './document.js';
import type { Registry } from './registry.js';

/** The registry document as stored, and the version it has. */
export interface StoredRegistry {
  readonly version: number;
  readonly document: RegistryDocument;
}

/**
 * The registry kept in the database: one document (the registry file's shape) with a version.
 * Edits are serialized, compiled before they commit (an invalid result is refused with a
 * RegistryError and nothing changes) and reach every instance within a second.
 */
export interface RegistryStore {
  read(): Promise<StoredRegistry>;
  /** Applies `edit` to the current document atomically; `by` names who changed it. Returns the new version and its compiled registry. */
  edit(
    by: string,
    edit: (document: RegistryDocument) => RegistryDocument,
  ): Promise<{ readonly version: number; readonly registry: Registry }>;
}
