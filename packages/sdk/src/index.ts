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
export { type BatonRequestState, type Refusal, type RequireBatonOptions } from './middleware/require-baton.js';
export { requireBaton, type HonoContextLike } from './middleware/hono.js';
export { requireBaton as requireBatonNode, type NodeRequestLike, type NodeResponseLike } from './middleware/node.js';
export {
  authorizeToolCall,
  batonClaimsOf,
  batonTokenVerifier,
  type McpAuthInfo,
  type McpTokenVerifier,
} from './mcp.js';
export {
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  type ProtectedResourceMetadata,
} from './resource-metadata.js';
