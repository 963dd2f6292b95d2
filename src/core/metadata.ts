import { clientAuthMethods, grantTypes } from './registry-schema.js';

/** Endpoint URLs derived from the issuer. */
export function endpoints(issuer: string) {
  const base = issuer.replace(/\/$/, '');
  return {
    token: `${base}/oauth2/token`,
    authorization: `${base}/oauth2/authorize`,
    revocation: `${base}/oauth2/revoke`,
    introspection: `${base}/oauth2/introspect`,
    jwks: `${base}/.well-known/jwks.json`,
  };
}

/** RFC 8414 authorization server metadata for what Baton serves today. */
export function authorizationServerMetadata(issuer: string, signingAlgorithms: readonly string[], detailTypes: readonly string[]) {
  const urls = endpoints(issuer);
  return {
    issuer,
    authorization_endpoint: urls.authorization,
    token_endpoint: urls.token,
    jwks_uri: urls.jwks,
    revocation_endpoint: urls.revocation,
    revocation_endpoint_auth_methods_supported: clientAuthMethods.filter((m) => m !== 'none'),
    introspection_endpoint: urls.introspection,
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'bearer'],
    grant_types_supported: [grantTypes.tokenExchange, grantTypes.clientCredentials, grantTypes.authorizationCode, grantTypes.refreshToken],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
    token_endpoint_auth_methods_supported: [...clientAuthMethods],
    token_endpoint_auth_signing_alg_values_supported: ['EdDSA', 'ES256', 'ES384', 'RS256', 'PS256'],
    access_token_signing_alg_values_supported: [...signingAlgorithms],
    authorization_details_types_supported: [...detailTypes],
    token_exchange_token_types_supported: [
      'urn:ietf:params:oauth:token-type:access_token',
      'urn:ietf:params:oauth:token-type:jwt',
      'urn:ietf:params:oauth:token-type:id_token',
    ],
  };
}
