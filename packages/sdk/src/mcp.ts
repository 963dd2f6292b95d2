import type { AuthorizeDecision, AuthorizeResource, Authorizer } from './authorize.js';
import { BatonError } from './errors.js';
import type { BatonClaims, BatonVerifier } from './verify.js';

/** The MCP TypeScript SDK's `AuthInfo` (server/auth/types.ts), restated so the SDK does not depend on it. */
export interface McpAuthInfo {
  token: string;
  clientId: string;
  scopes: string[];
  /** Seconds since the epoch. */
  expiresAt: number;
  resource?: URL;
  /** `baton`: the verified claims, act chain included. */
  extra?: Record<string, unknown>;
}

/** The MCP TypeScript SDK's `OAuthTokenVerifier` (server/auth/provider.ts), as `requireBearerAuth` takes it. */
export interface McpTokenVerifier {
  verifyAccessToken(token: string): Promise<McpAuthInfo>;
}

/** The claims a Baton MCP token verifier put in `authInfo.extra.baton`. */
export const batonClaimsOf = (authInfo: { extra?: Record<string, unknown> }): BatonClaims | undefined =>
  authInfo.extra?.baton as BatonClaims | undefined;

/**
 * An MCP `OAuthTokenVerifier` accepting Baton tokens for `audience`. `requireBearerAuth` answers
 * 401 only for its own `InvalidTokenError` (anything else is a 500), so `toError` must make one
 * from each refused token; other failures (Baton's keys unreachable) are thrown as they are.
 */
export function batonTokenVerifier(options: {
  readonly verifier: BatonVerifier;
  readonly audience: string;
  readonly toError: (error: BatonError) => Error;
}): McpTokenVerifier {
  const { verifier, audience, toError } = options;
  let resource: URL | undefined;
  try {
    resource = new URL(audience);
  } catch {
    // An audience that is not a URL names no RFC 8707 resource.
  }
  return {
    async verifyAccessToken(token) {
      let claims: BatonClaims;
      try {
        claims = await verifier.verify(token, { audience });
      } catch (error) {
        // Only a refused token is the client's fault; an outage must not read as "your token is bad".
        throw error instanceof BatonError && error.code === 'invalid_token' ? toError(error) : error;
      }
      return {
        token,
        clientId: claims.clientId,
        scopes: [...claims.scope],
        expiresAt: claims.expiresAt,
        ...(resource === undefined ? {} : { resource }),
        extra: { baton: claims },
      };
    },
  };
}

/**
 * Asks Baton before an MCP tool runs: the tool's name is the action, its arguments the decision
 * context, and the resource the one given (else `Tool::"<name>"`).
 */
export function authorizeToolCall(
  authorizer: Authorizer,
  call: {
    readonly token: string;
    readonly tool: string;
    readonly args: Record<string, unknown>;
    readonly resource?: AuthorizeResource;
    readonly actionId?: string;
    readonly signal?: AbortSignal;
  },
): Promise<AuthorizeDecision> {
  const { token, tool, args, resource, actionId, signal } = call;
  return authorizer.authorize({
    token,
    action: tool,
    resource: resource ?? { type: 'Tool', id: tool },
    context: args,
    ...(actionId === undefined ? {} : { actionId }),
    ...(signal === undefined ? {} : { signal }),
  });
}
