import { z } from 'zod';
import { OAuthError, echo, invalidRequest } from '../errors.js';
import type { Grant } from './grant.js';
import { grants, grantsByType } from './index.js';

/** Parameters that may appear more than once (RFC 8693 §2.1, RFC 8707 §2). */
export const repeatableParameters: ReadonlySet<string> = new Set(['audience', 'resource']);

type RequestSchemas<Grants> = { -readonly [K in keyof Grants]: Grants[K] extends Grant<infer Schema> ? Schema : never };

/** The request schemas of the grants, in their order: the tuple a discriminated union takes. */
function requestSchemas<const Grants extends readonly [Grant, ...Grant[]]>(list: Grants): RequestSchemas<Grants> {
  return list.map((grant) => grant.schema) as RequestSchemas<Grants>;
}

/** A token request: the request of one of the grants, told apart by `grant_type`. */
export const tokenRequestSchema = z.discriminatedUnion('grant_type', requestSchemas(grants));
export type TokenRequest = z.infer<typeof tokenRequestSchema>;

/** Client authentication parameters of the request body (RFC 6749 §2.3.1, RFC 7523 §2.2). */
export const clientAuthParamsSchema = z.object({
  client_id: z.string().min(1).max(256).optional(),
  client_secret: z.string().min(1).max(1024).optional(),
  client_assertion: z.string().min(1).optional(),
  client_assertion_type: z.string().min(1).optional(),
});
export type ClientAuthParams = z.infer<typeof clientAuthParamsSchema>;

/** Parsed form parameters: single values as strings, repeatable ones as arrays. */
export type FormParams = Record<string, string | string[]>;

function firstIssue(error: z.ZodError): OAuthError {
  const issue = error.issues[0];
  const param = issue?.path[0];
  const message = issue?.message ?? 'is invalid';
  return invalidRequest(
    param === undefined
      ? message
      : `${String(param)} ${message.startsWith('Invalid input: expected string') ? 'must be a single string' : message}`,
  );
}

/** Validates a token request body for its grant, which it returns; unknown grants are `unsupported_grant_type`. */
export function parseTokenRequest(params: FormParams): {
  grant: Grant;
  request: TokenRequest;
  client: ClientAuthParams;
} {
  const type = params.grant_type;
  if (type === undefined) throw invalidRequest('grant_type is required');
  const grant = typeof type === 'string' ? grantsByType.get(type) : undefined;
  if (grant === undefined)
    throw new OAuthError('unsupported_grant_type', `grant_type "${echo(String(type))}" is not supported`);
  const request = tokenRequestSchema.safeParse(params);
  if (!request.success) throw firstIssue(request.error);
  const client = clientAuthParamsSchema.safeParse(params);
  if (!client.success) throw firstIssue(client.error);
  return { grant, request: request.data, client: client.data };
}
