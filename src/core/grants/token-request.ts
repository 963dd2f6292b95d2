import { z } from 'zod';
import { OAuthError, echo, invalidRequest } from '../errors.js';
import { grantTypes } from '../registry/schema.js';

export const tokenTypes = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  idToken: 'urn:ietf:params:oauth:token-type:id_token',
} as const;

/** Parameters that may appear more than once (RFC 8693 §2.1, RFC 8707 §2). */
export const repeatableParameters: ReadonlySet<string> = new Set(['audience', 'resource']);

/** RFC 6749 §3.3: space-separated scope tokens. */
export const scopeSyntax = /^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/;

const scopeParam = z.string().max(4096).regex(scopeSyntax, 'must be space-separated RFC 6749 scope tokens');
const target = z.array(z.string().min(1).max(2048)).max(16, 'at most 16 values are accepted').default([]);
const resource = z.array(z.url({ error: 'must be an absolute URI' }).max(2048).refine((u) => !u.includes('#'), 'must not contain a fragment')).max(16, 'at most 16 values are accepted').default([]);

export const tokenExchangeRequestSchema = z.object({
  grant_type: z.literal(grantTypes.tokenExchange),
  subject_token: z.string({ error: 'is required' }).min(1, 'is required'),
  subject_token_type: z.string({ error: 'is required' }).min(1, 'is required'),
  actor_token: z.string().min(1, 'must not be empty').optional(),
  actor_token_type: z.string().min(1, 'must not be empty').optional(),
  audience: target,
  resource,
  scope: scopeParam.optional(),
  authorization_details: z.string().optional(),
  requested_token_type: z.string().optional(),
});
export type TokenExchangeRequest = z.infer<typeof tokenExchangeRequestSchema>;

export const clientCredentialsRequestSchema = z.object({
  grant_type: z.literal(grantTypes.clientCredentials),
  audience: target,
  resource,
  scope: scopeParam.optional(),
  authorization_details: z.string().optional(),
});
export type ClientCredentialsRequest = z.infer<typeof clientCredentialsRequestSchema>;

export const authorizationCodeRequestSchema = z.object({
  grant_type: z.literal(grantTypes.authorizationCode),
  code: z.string({ error: 'is required' }).min(1, 'is required').max(256),
  redirect_uri: z.string({ error: 'is required' }).min(1, 'is required').max(2048),
  code_verifier: z.string().max(256).optional(),
  actor_token: z.string().min(1, 'must not be empty').optional(),
  actor_token_type: z.string().min(1, 'must not be empty').optional(),
});
export type AuthorizationCodeRequest = z.infer<typeof authorizationCodeRequestSchema>;

export const refreshTokenRequestSchema = z.object({
  grant_type: z.literal(grantTypes.refreshToken),
  refresh_token: z.string({ error: 'is required' }).min(1, 'is required').max(256),
  scope: scopeParam.optional(),
});
export type RefreshTokenRequest = z.infer<typeof refreshTokenRequestSchema>;

export const tokenRequestSchema = z.discriminatedUnion('grant_type', [tokenExchangeRequestSchema, clientCredentialsRequestSchema, authorizationCodeRequestSchema, refreshTokenRequestSchema]);
export type TokenRequest = z.infer<typeof tokenRequestSchema>;

/** Client authentication parameters of the request body (RFC 6749 §2.3.1, RFC 7523 §2.2). */
export const clientAuthParamsSchema = z.object({
  client_id: z.string().min(1).max(256).optional(),
  client_secret: z.string().min(1).max(1024).optional(),
  client_assertion: z.string().min(1).optional(),
  client_assertion_type: z.string().min(1).optional(),
});
export type ClientAuthParams = z.infer<typeof clientAuthParamsSchema>;

const supportedGrants: ReadonlySet<string> = new Set([grantTypes.tokenExchange, grantTypes.clientCredentials, grantTypes.authorizationCode, grantTypes.refreshToken]);

/** Parsed form parameters: single values as strings, repeatable ones as arrays. */
export type FormParams = Record<string, string | string[]>;

function firstIssue(error: z.ZodError): OAuthError {
  const issue = error.issues[0];
  const param = issue?.path[0];
  const message = issue?.message ?? 'is invalid';
  return invalidRequest(param === undefined ? message : `${String(param)} ${message.startsWith('Invalid input: expected string') ? 'must be a single string' : message}`);
}

/** Validates a token request body for its grant type; unknown grants are `unsupported_grant_type`. */
export function parseTokenRequest(params: FormParams): { request: TokenRequest; client: ClientAuthParams } {
  const grant = params.grant_type;
  if (grant === undefined) throw invalidRequest('grant_type is required');
  if (typeof grant !== 'string' || !supportedGrants.has(grant)) {
    throw new OAuthError('unsupported_grant_type', `grant_type "${echo(String(grant))}" is not supported`);
  }
  const request = tokenRequestSchema.safeParse(params);
  if (!request.success) throw firstIssue(request.error);
  const client = clientAuthParamsSchema.safeParse(params);
  if (!client.success) throw firstIssue(client.error);
  return { request: request.data, client: client.data };
}
