import { z } from 'zod';

// Keys, algorithms and authentication methods, which token and client verification share with the
// registry file's schema; that schema is document.ts, apart from these because it derives from the grants.

/** JWS algorithms Baton accepts on signed JWTs; never `none`, never HMAC. */
export const asymmetricAlgorithms = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'RS256', 'PS256'] as const;

const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'] as const;

/** A public JWK; private members are refused so a registry can never leak a key. */
const publicJwkSchema = z
  .looseObject({
    kty: z.enum(['OKP', 'EC', 'RSA']),
    kid: z.string().min(1).max(256).optional(),
    alg: z.enum(asymmetricAlgorithms).optional(),
    use: z.literal('sig').optional(),
    crv: z.string().optional(),
    x: z.string().optional(),
    y: z.string().optional(),
    n: z.string().optional(),
    e: z.string().optional(),
  })
  .superRefine((jwk, ctx) => {
    for (const member of privateMembers) {
      if (member in jwk)
        ctx.addIssue({ code: 'custom', path: [member], message: 'private key material is not allowed in a registry' });
    }
  });

export const jwksSchema = z.object({ keys: z.array(publicJwkSchema).min(1).max(16) });

export const clientAuthMethods = ['private_key_jwt', 'client_secret_basic', 'client_secret_post', 'none'] as const;
export type ClientAuthMethod = (typeof clientAuthMethods)[number];

export type Jwks = z.infer<typeof jwksSchema>;
