export { BatonError, OAuthResponseError } from './errors.js';
// Resource servers: verifying Baton tokens, asking /authorize, middleware.
export {
  batonTokenAlgorithms,
  batonVerifier,
  verifyBatonToken,
  type AuthorizationDetail,
  type BatonClaims,
  type BatonVerifier,
  type FetchLike,
  type VerifierOptions,
} from './verify.js';
export {
  authorizer,
  type AuthorizeDecision,
  type Authorizer,
  type AuthorizerOptions,
  type AuthorizeRequest,
  type AuthorizeResource,
  type ResourceServerCredentials,
} from './authorize.js';
