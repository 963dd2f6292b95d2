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
