export { BatonError, OAuthResponseError } from './errors.js';
// Agent side: identities, token exchange and client credentials, the token cache, the code flow.
export { agentIdentity, isAgentIdentity, type AgentIdentity, type AgentIdentityOptions } from './agent.js';
export {
  actChain,
  batonClient,
  metadataUrl,
  tokenTypes,
  type Actor,
  type BatonClient,
  type BatonClientOptions,
  type ClientCredentials,
  type ClientCredentialsParams,
  type ExchangeParams,
  type IssuedClaims,
  type IssuedToken,
} from './exchange.js';
export {
  assertWellFormed,
  getJson,
  parseRetryAfter,
  postForm,
  readOAuthError,
  systemClock,
  timerSleep,
  untilAborted,
  type Clock,
  type Fetch,
  type FormRequest,
  type RequestOptions,
  type RetryOptions,
  type Sleep,
} from './http.js';
export { canonicalJson, tokenCache, type TokenCache, type TokenCacheOptions } from './cache.js';
export {
  authorizationUrl,
  redeemCode,
  validateCallback,
  type AuthorizationRequest,
  type AuthorizationUrlParams,
  type RedeemCodeParams,
} from './code-flow.js';
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
// Tool guards: a tool runs only when Baton allows the call.
export {
  guardAiSdkTool,
  guardLangChainTool,
  guardTool,
  ToolDeniedError,
  type AiSdkTool,
  type LangChainTool,
  type LangChainToolArgs,
  type ToolArgs,
  type ToolGuardOptions,
} from './tool-guard.js';
