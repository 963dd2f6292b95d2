import { authorizationCode } from './authorization-code.js';
import { clientCredentials } from './client-credentials.js';
import type { Grant } from './grant.js';
import { refreshToken } from './refresh-token.js';
import { tokenExchange } from './token-exchange.js';

/**
 * The grants Baton serves, the only list of them: the token request schema, the token endpoint's
 * dispatch, the metadata's `grant_types_supported` and the grant types a registry may allow a
 * client are all derived from it. A new grant is a module of its own and a line here.
 */
export const grants = [tokenExchange, clientCredentials, authorizationCode, refreshToken] as const;

/** The grants by `grant_type`; a Map, since the key is the caller's and may be "constructor" or "__proto__". */
export const grantsByType: ReadonlyMap<string, Grant> = new Map(grants.map((grant) => [grant.grantType, grant]));
