import { operatorScopes } from './clients/callers.js';
import type { Registry } from './registry/registry.js';
import { asymmetricAlgorithms, clientAuthMethods } from './registry/schema.js';
import { grants } from './grants/index.js';

/** Endpoint URLs derived from the issuer. */
export function endpoints(issuer: string) {
  const base = issuer.replace(/\/$/, '');
  return {
    token: `${base}/oauth2/token`,
    authorization: `${base}/oauth2/authorize`,
    revocation: `${base}/oauth2/revoke`,
    introspection: `${base}/oauth2/introspect`,
    registration: `${base}/oauth2/register`,
    jwks: `${base}/.well-known/jwks.json`,
  };
}

/** Whether RFC 7591 registration is served for some tenant of `registry` (given that the registry is stored, so it can be written). */
export function registrationOffered(registry: Registry): boolean {
  return [...registry.tenants.values()].some((t) => t.dynamicClientRegistration.mode !== 'off');
}

/**
 * The scopes Baton understands: the union of every tenant's resource servers' scopes, sorted,
 * then the operators' own (Baton's admin API is a resource server of its own).
 */
export function supportedScopes(registry: Registry): string[] {
  const served = new Set([...registry.resourceServers.values()].flatMap((rs) => rs.scopes));
  const operators = Object.values(operatorScopes).filter((s) => !served.has(s));
  return [...[...served].sort(), ...operators.sort()];
}

/**
 * RFC 8414 authorization server metadata for what Baton serves today. Authentication methods are
 * registered values only (IANA "OAuth Token Endpoint Authentication Methods"): introspection also
 * takes a resource server's own Bearer token, which has no registered name and is documented
 * instead. Revocation authenticates as the token endpoint does, public clients (`none`) included.
 * `registration` advertises RFC 7591 registration: where the registry is stored and a tenant has it on.
 */
export function authorizationServerMetadata(
  issuer: string,
  signingAlgorithms: readonly string[],
  detailTypes: readonly string[],
  scopes: readonly string[],
  /** Whether this entry point accepts client ID metadata documents (not on Workers). */
  clientIdMetadataDocuments: boolean,
  registration = false,
) {
  const urls = endpoints(issuer);
  return {
    issuer,
    authorization_endpoint: urls.authorization,
    token_endpoint: urls.token,
    jwks_uri: urls.jwks,
    ...(registration ? { registration_endpoint: urls.registration } : {}),
    scopes_supported: [...scopes],
    revocation_endpoint: urls.revocation,
    revocation_endpoint_auth_methods_supported: [...clientAuthMethods],
    revocation_endpoint_auth_signing_alg_values_supported: [...asymmetricAlgorithms],
    introspection_endpoint: urls.introspection,
    introspection_endpoint_auth_methods_supported: ['client_secret_basic'],
    grant_types_supported: grants.map((grant) => grant.grantType),
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    code_challenge_methods_supported: ['S256'],
    // draft-ietf-oauth-client-id-metadata-document: an https URL may be a client_id (see clients/metadata-document.ts).
    client_id_metadata_document_supported: clientIdMetadataDocuments,
    authorization_response_iss_parameter_supported: true,
    token_endpoint_auth_methods_supported: [...clientAuthMethods],
    token_endpoint_auth_signing_alg_values_supported: [...asymmetricAlgorithms],
    access_token_signing_alg_values_supported: [...signingAlgorithms],
    authorization_details_types_supported: [...detailTypes],
    token_exchange_token_types_supported: [
      'urn:ietf:params:oauth:token-type:access_token',
      'urn:ietf:params:oauth:token-type:jwt',
      'urn:ietf:params:oauth:token-type:id_token',
    ],
  };
}
