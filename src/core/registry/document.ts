import { z } from 'zod';
import { authorizationCode } from '../grants/authorization-code.js';
import { grants } from '../grants/index.js';
import { asymmetricAlgorithms, clientAuthMethods, jwksSchema, type ClientAuthMethod } from './schema.js';
import { userRoles } from './roles.js';

// The registry file's schema sits above the grants: a client may be allowed only the grant types
// Baton serves, and grants/index.ts is their one list. The grants, in turn, work with the compiled
// registry's types (registry.ts) and the key vocabulary (schema.ts). So those two import nothing
// of the grants, while this schema and compile.ts, which import them, are files of their own.

/** Identifiers of tenants, agents, clients and resource servers. */
export const registryId = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/,
    'must be 1–128 letters, digits, ".", "_", ":" or "-", starting with a letter or digit',
  );
const httpsOrLocalUrl = z.url({ protocol: /^https?$/ }).max(2048);
const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'must be an RFC 6749 scope token');

const keySource = {
  jwks: jwksSchema.optional(),
  jwks_uri: httpsOrLocalUrl.optional(),
};

function exactlyOneKeySource(
  value: { jwks?: unknown; jwks_uri?: unknown },
  ctx: z.RefinementCtx,
  required: boolean,
): void {
  if (value.jwks !== undefined && value.jwks_uri !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['jwks_uri'], message: 'give either jwks or jwks_uri, not both' });
  } else if (required && value.jwks === undefined && value.jwks_uri === undefined) {
    ctx.addIssue({ code: 'custom', path: ['jwks'], message: 'jwks or jwks_uri is required' });
  }
}

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be the lowercase hex SHA-256 of the secret');

const grantType = z.enum(grants.map((grant) => grant.grantType));
const publicClientGrants: ReadonlySet<string> = new Set(
  grants.filter((grant) => grant.publicClients).map((grant) => grant.grantType),
);

/** How a caller at the token endpoint proves who it is. */
function credentialRules(
  value: {
    token_endpoint_auth_method: ClientAuthMethod;
    client_secret_sha256?: string | undefined;
    jwks?: unknown;
    jwks_uri?: unknown;
  },
  ctx: z.RefinementCtx,
): void {
  const method = value.token_endpoint_auth_method;
  const usesSecret = method === 'client_secret_basic' || method === 'client_secret_post';
  if (usesSecret && value.client_secret_sha256 === undefined) {
    ctx.addIssue({ code: 'custom', path: ['client_secret_sha256'], message: `is required for ${method}` });
  }
  if (!usesSecret && value.client_secret_sha256 !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['client_secret_sha256'],
      message: `is only used with client_secret_basic or client_secret_post`,
    });
  }
  exactlyOneKeySource(value, ctx, method === 'private_key_jwt');
}

/** The most `authorization_details` a caller may request for itself with client credentials. */
const grantedDetails = z
  .array(z.looseObject({ type: z.string().min(1) }))
  .max(64)
  .optional()
  .describe('the most authorization_details this caller may request for itself with client_credentials');

/** A host name, or `*.` and a domain for any host under it (a client ID metadata document's host). */
const hostPattern = z
  .string()
  .max(253)
  .regex(
    /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'must be a lowercase host name, or *. followed by one',
  );

/** Whether clients identified by an HTTPS URL (a client ID metadata document) may sign in to the tenant. */
const clientIdMetadataDocumentsSchema = z.strictObject({
  enabled: z.boolean().describe('false refuses every client ID metadata document for this tenant'),
  allowed_hosts: z
    .array(hostPattern)
    .max(256)
    .optional()
    .describe('when given, only documents on these hosts (or under a *. domain) are accepted'),
});

/** How RFC 7591 dynamic client registration works for the tenant. */
const dynamicClientRegistrationSchema = z.strictObject({
  mode: z
    .enum(['off', 'open', 'initial_access_token'])
    .describe('off; open to anyone (rate-limited); or only with an initial access token (scope baton:register)'),
  unused_client_ttl_seconds: z
    .int()
    .min(3600)
    .max(31_536_000)
    .optional()
    .describe('a registered client unused for this long is removed (default 2592000, 30 days)'),
});

const tenantSchema = z.strictObject({
  id: registryId,
  name: z.string().min(1).max(200),
  client_id_metadata_documents: clientIdMetadataDocumentsSchema
    .optional()
    .describe('client ID metadata documents (MCP clients): accepted from any host unless this says otherwise'),
  dynamic_client_registration: dynamicClientRegistrationSchema
    .optional()
    .describe('RFC 7591 dynamic client registration: off unless this says otherwise'),
});

/** What Baton holds of any issuer whose tokens it verifies: who, in which tenant, with which keys, for which audiences. */
const issuerFields = {
  issuer: httpsOrLocalUrl,
  tenant: registryId,
  ...keySource,
  audiences: z
    .array(z.string().min(1))
    .min(1)
    .max(16)
    .optional()
    .describe("accepted `aud` values; default: Baton's own issuer"),
  algorithms: z.array(z.enum(asymmetricAlgorithms)).min(1).optional(),
};

const trustedIssuerSchema = z
  .strictObject({
    ...issuerFields,
  })
  .superRefine((v, ctx) => exactlyOneKeySource(v, ctx, true));

/**
 * A subject pattern: the exact `sub`, or segments (split at ":" and "/") of which some are a lone
 * "*", each matching one non-empty segment.
 */
const subjectPattern = z
  .string()
  .min(1)
  .max(512)
  .refine(
    (p) => p.split(/[:/]/).every((segment) => segment === '*' || !segment.includes('*')),
    'a "*" must stand alone as a whole segment between ":" or "/"',
  );

const workloadIssuerSchema = z
  .strictObject({
    ...issuerFields,
    typ: z.string().min(1).max(64).optional().describe('the JOSE header `typ` its tokens must carry, if any'),
    subjects: z
      .array(z.strictObject({ subject: subjectPattern, agent: registryId }))
      .min(1)
      .max(256)
      .describe('subject patterns mapped to agents of the tenant; the first that matches wins'),
  })
  .superRefine((v, ctx) => exactlyOneKeySource(v, ctx, true));

/** An RFC 3339 date-time with a time zone (`Z` or an offset). */
const dateTime = z.iso.datetime({ offset: true });

/** A user's `sub` in a tenant: a built-in user's, or one an upstream identity provider asserts. */
const userSub = z.string().min(1).max(256);

const agentSchema = z
  .strictObject({
    id: registryId,
    tenant: registryId,
    name: z.string().min(1).max(200),
    owner: userSub.describe("the accountable user: a user's sub in the agent's tenant"),
    expires_at: dateTime
      .optional()
      .describe('when the agent stops existing (RFC 3339); from then on nothing it presents is accepted'),
    ...keySource,
    scope: z
      .array(scopeToken)
      .max(256)
      .optional()
      .describe('the most an agent may ever hold; absent: no limit beyond what it is delegated'),
    authorization_details: grantedDetails,
    metadata: z.record(z.string(), z.unknown()).optional(),
    retiring_keys: z
      .strictObject({ jwks: jwksSchema, until: z.iso.datetime({ offset: true }) })
      .optional()
      .describe('keys replaced by a rotation, still accepted until `until` (set by the admin API)'),
  })
  // Keys may be left out for an agent a workload issuer proves (compile.ts checks that one does).
  .superRefine((v, ctx) => exactlyOneKeySource(v, ctx, false));

const clientSchema = z
  .strictObject({
    client_id: registryId,
    tenant: registryId,
    name: z.string().min(1).max(200),
    token_endpoint_auth_method: z.enum(clientAuthMethods),
    client_secret_sha256: sha256Hex.optional(),
    ...keySource,
    grant_types: z.array(grantType).min(1),
    scope: z
      .array(scopeToken)
      .max(256)
      .optional()
      .describe('scopes the client may request for itself with client_credentials'),
    agents: z.array(registryId).max(256).optional().describe('agents this client may present as actor'),
    authorization_details: grantedDetails,
    redirect_uris: z.array(httpsOrLocalUrl).max(32).optional(),
    dynamically_registered_at: dateTime
      .optional()
      .describe(
        "set when the client registered itself (RFC 7591, POST /oauth2/register); such a client is removed once unused for its tenant's unused_client_ttl_seconds",
      ),
  })
  .superRefine((v, ctx) => {
    credentialRules(v, ctx);
    if (v.grant_types.includes(authorizationCode.grantType) && (v.redirect_uris ?? []).length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['redirect_uris'],
        message: 'is required for the authorization_code grant',
      });
    }
    if (v.token_endpoint_auth_method === 'none') {
      v.grant_types.forEach((g, i) => {
        if (!publicClientGrants.has(g))
          ctx.addIssue({
            code: 'custom',
            path: ['grant_types', i],
            message: `a public client (auth method none) may not use ${g}`,
          });
      });
    }
  });

const resourceServerSchema = z
  .strictObject({
    id: registryId,
    tenant: registryId,
    name: z.string().min(1).max(200).optional(),
    audience: httpsOrLocalUrl,
    scopes: z.array(scopeToken).max(256).optional().describe('scopes this resource server understands'),
    actions: z.array(z.string().min(1).max(200)).max(1024).optional(),
    token_endpoint_auth_method: z.enum(['private_key_jwt', 'client_secret_basic', 'client_secret_post']),
    client_secret_sha256: sha256Hex.optional(),
    ...keySource,
  })
  .superRefine(credentialRules);

/** A built-in user of the embedded default's password sign-in. */
const userSchema = z.strictObject({
  tenant: registryId,
  sub: userSub,
  name: z.string().min(1).max(200).optional(),
  password_scrypt: z
    .string()
    .regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/, 'must be scrypt$N$r$p$salt$hash (base64url)'),
  roles: z
    .array(z.enum(userRoles))
    .max(userRoles.length)
    .refine((roles) => new Set(roles).size === roles.length, 'must not repeat a role')
    .optional()
    .describe(
      "roles in the audit explorer (/audit/): auditor reads the tenant's log; operator may also revoke what an action reached",
    ),
});

/** The kinds of principal a suspension names. */
export const suspensionKinds = ['agent', 'client', 'user'] as const;
export type SuspensionKind = (typeof suspensionKinds)[number];

/** A principal refused every new grant until the suspension is lifted. */
const suspensionSchema = z.strictObject({
  tenant: registryId,
  kind: z.enum(suspensionKinds),
  id: z
    .string()
    .min(1)
    .max(256)
    .describe("an agent's id, a client's client_id, or a user's sub (built-in or from an identity provider)"),
  reason: z.string().min(1).max(500).optional(),
  since: dateTime.describe('when the suspension began (RFC 3339)'),
});

/** The declarative registry file (`policies/registry.json`). */
export const registryDocumentSchema = z.strictObject({
  $schema: z.string().optional(),
  tenants: z.array(tenantSchema).min(1),
  trusted_issuers: z.array(trustedIssuerSchema).default([]),
  workload_issuers: z.array(workloadIssuerSchema).default([]),
  agents: z.array(agentSchema).default([]),
  clients: z.array(clientSchema).default([]),
  resource_servers: z.array(resourceServerSchema).default([]),
  users: z.array(userSchema).default([]),
  suspensions: z.array(suspensionSchema).default([]),
});
export type RegistryDocument = z.infer<typeof registryDocumentSchema>;
