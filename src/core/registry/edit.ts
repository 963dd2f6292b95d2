import { canonicalJson } from '../audit/chain.js';
import { compileRegistry, type CompileOptions } from './compile.js';
import { registryDocumentSchema, type RegistryDocument } from './document.js';
import type { Registry } from './registry.js';
import { dropRetiredKeys } from './store.js';

/** The outcome of one edit before it is stored: the new document, compiled, and whether it differs. */
export interface EditOutcome {
  readonly document: RegistryDocument;
  readonly registry: Registry;
  readonly changed: boolean;
}

/**
 * The one way a registry store edits: applies `edit` to the stored document, drops retiring keys
 * whose overlap ended, and compiles the result (throwing RegistryError when invalid). A store calls
 * it under its lock and writes the document only when `changed`.
 */
export async function runEdit(
  current: RegistryDocument,
  version: number,
  edit: (document: RegistryDocument, version: number) => RegistryDocument,
  options: CompileOptions & { readonly now: () => number },
): Promise<EditOutcome> {
  // The edit works on a copy: whatever it does to its argument never reaches the stored one.
  const edited = dropRetiredKeys(edit(structuredClone(current), version), options.now());
  const registry = await compileRegistry(edited, options);
  // Stored as parsed (defaults filled), so the same file applied twice compares equal.
  const document = registryDocumentSchema.parse(edited);
  const changed = version === 0 || canonicalJson(document) !== canonicalJson(current);
  return { document, registry, changed };
}
