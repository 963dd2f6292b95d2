import { z } from 'zod';
import { registryDocumentSchema } from './document.js';

/** The published JSON Schema of the registry file, derived from the one zod schema that validates it. */
export function registryJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(registryDocumentSchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://baton.dev/schemas/registry.schema.json',
    title: 'Baton registry',
    description: 'Tenants, trusted issuers, agents, clients and resource servers of a Baton deployment.',
  };
}
