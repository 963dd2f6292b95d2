import { sha256Hex } from '../../src/adapters/node-hash.js';
import { basic, postToken } from './baton.js';
import type { MemoryBaton } from './memory-baton.js';

const globexSecret = 'globex-ops-secret-for-tests-only';

/**
 * Registers `globex-ops`, an operator of tenant globex (client secret, `baton:admin`), in a memory
 * Baton, so tests can ask about one tenant's things as another's operator. Returns a maker of a
 * fresh admin `Authorization` header of that operator.
 */
export async function addGlobexOperator(baton: MemoryBaton): Promise<() => Promise<Record<string, string>>> {
  await baton.registryStore.edit('test', (doc) => ({
    ...doc,
    clients: [
      ...doc.clients,
      {
        client_id: 'globex-ops',
        tenant: 'globex',
        name: 'Globex Operations',
        token_endpoint_auth_method: 'client_secret_basic',
        client_secret_sha256: sha256Hex(globexSecret),
        grant_types: ['client_credentials'],
        scope: ['baton:admin'],
      },
    ],
  }));
  return async () => {
    const token = await postToken(
      baton,
      { grant_type: 'client_credentials', scope: 'baton:admin' },
      { authorization: basic('globex-ops', globexSecret) },
    );
    return { authorization: `Bearer ${token.body.access_token as string}` };
  };
}
