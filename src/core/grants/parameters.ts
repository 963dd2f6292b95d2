import { z } from 'zod';

/** RFC 8693 §3 token type identifiers. */
export const tokenTypes = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  idToken: 'urn:ietf:params:oauth:token-type:id_token',
} as const;

/** RFC 6749 §3.3: space-separated scope tokens. */
export const scopeSyntax = /^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/;

/** `scope` of a token request (RFC 6749 §3.3). */
export const scopeParameter = z.string().max(4096).regex(scopeSyntax, 'must be space-separated RFC 6749 scope tokens');
/** `audience` of a token request (RFC 8693 §2.1), repeatable. */
export const audienceParameter = z
  .array(z.string().min(1).max(2048))
  .max(16, 'at most 16 values are accepted')
  .default([]);
/** `resource` of a token request (RFC 8707 §2), repeatable. */
export const resourceParameter = z
  .array(
    z
      .url({ error: 'must be an absolute URI' })
      .max(2048)
      .refine((u) => !u.includes('#'), 'must not contain a fragment'),
  )
  .max(16, 'at most 16 values are accepted')
  .default([]);
