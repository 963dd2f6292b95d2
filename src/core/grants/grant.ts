import type { z } from 'zod';
import type { AuditTrail, AuditType } from '../audit/chain.js';
import type { ServiceContext } from '../context.js';
import type { Caller, Registry } from '../registry/registry.js';
import type { TokenResponse } from '../tokens/mint.js';

/** The request schema of a grant: an object whose `grant_type` is the grant's own URI. */
export type GrantRequestSchema = z.ZodObject<{ grant_type: z.ZodLiteral<string> }>;

/**
 * A grant type of the token endpoint, whole: one module exports one, and `index.ts` lists them.
 * The token request schema, the dispatcher, the metadata and the registry's allowed grant types
 * are derived from that list.
 */
export interface Grant<Schema extends GrantRequestSchema = GrantRequestSchema> {
  readonly grantType: z.output<Schema>['grant_type'];
  /** The token request of this grant; its first issue is the `invalid_request` description. */
  readonly schema: Schema;
  /** The type of the audit entry of each request, granted or refused once the client is known. */
  readonly auditType: AuditType;
  /** Whether a public client (auth method `none`, PKCE only) may be registered for it. */
  readonly publicClients: boolean;
  /**
   * Answers a request of an authenticated caller allowed this grant, recording what it establishes
   * in `trail` as it goes, so that a refusal's audit entry says as much as can be known.
   */
  handle(
    ctx: ServiceContext,
    registry: Registry,
    caller: Caller,
    request: z.output<Schema>,
    trail: AuditTrail,
    requestId: string | null,
  ): Promise<TokenResponse>;
}
