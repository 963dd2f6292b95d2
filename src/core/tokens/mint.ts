import type { AuditType } from '../audit/chain.js';
import type { ServiceContext } from '../context.js';
import type { ActClaim } from '../ports.js';
import type { Caller } from '../registry/registry.js';
import { inSpan } from '../telemetry.js';
import type { AuthorizationDetail } from './authorization-details.js';
import { signAccessToken } from './jwt.js';
import { randomId } from '../secrets.js';

/** The successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1). */
export interface TokenResponse {
  readonly access_token: string;
  readonly issued_token_type?: string;
  readonly token_type: 'Bearer';
  readonly expires_in: number;
  readonly scope?: string;
  readonly authorization_details?: readonly AuthorizationDetail[];
}

/** The claims of a token about to be minted, and its lineage. */
export interface Issuance {
  readonly tenant: string;
  readonly subject: string;
  readonly caller: Caller;
  readonly audience: readonly string[];
  readonly scope: readonly string[];
  readonly authorizationDetails: readonly AuthorizationDetail[];
  readonly act: ActClaim | undefined;
  /** When it is issued (seconds since the epoch): the clock reading its `expiresAt` was computed from. */
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly parentJti: string | null;
  readonly rootGrant: string | null;
  readonly issuedTokenType?: string;
  readonly auditType: AuditType;
  readonly requestId: string | null;
  readonly policyIds?: readonly string[];
  /** The digest of the policy set that permitted it, when policies were asked. */
  readonly policyDigest?: string;
}

/** Signs a token, commits its audit entry and lineage (before it leaves), and builds the response. */
export async function issue(
  ctx: Pick<ServiceContext, 'issuer' | 'keys' | 'audit'>,
  grant: Issuance,
): Promise<TokenResponse> {
  // The grant's own clock reading: `iat` and `expires_in` agree with the `exp` it computed.
  const now = grant.issuedAt;
  const jti = randomId();
  const claims = {
    iss: ctx.issuer,
    sub: grant.subject,
    aud: grant.audience.length === 1 ? (grant.audience[0] as string) : [...grant.audience],
    exp: grant.expiresAt,
    iat: now,
    jti,
    client_id: grant.caller.id,
    tenant: grant.tenant,
    ...(grant.scope.length > 0 ? { scope: grant.scope.join(' ') } : {}),
    ...(grant.authorizationDetails.length > 0 ? { authorization_details: grant.authorizationDetails } : {}),
    ...(grant.act === undefined ? {} : { act: grant.act }),
  };
  const rootGrant = grant.rootGrant ?? jti;
  const [token] = await Promise.all([
    inSpan('baton.sign', { 'baton.tenant': grant.tenant, 'baton.kid': ctx.keys.current.kid }, () =>
      signAccessToken(ctx.keys, claims),
    ),
    ctx.audit.append(
      {
        tenant: grant.tenant,
        type: grant.auditType,
        decision: 'granted',
        jti,
        parent_jti: grant.parentJti,
        root_grant: rootGrant,
        user: grant.subject,
        actor_chain: actorChain(grant.act),
        client: grant.caller.id,
        audience: grant.audience,
        scope: grant.scope,
        authorization_details: grant.authorizationDetails,
        policy_ids: grant.policyIds ?? [],
        policy_digest: grant.policyDigest ?? null,
        request_id: grant.requestId,
      },
      {
        tenant: grant.tenant,
        jti,
        parentJti: grant.parentJti,
        rootGrant,
        subject: grant.subject,
        actor: grant.act?.sub ?? null,
        clientId: grant.caller.id,
        expiresAt: new Date(grant.expiresAt * 1000),
      },
    ),
  ]);
  return {
    access_token: token,
    ...(grant.issuedTokenType === undefined ? {} : { issued_token_type: grant.issuedTokenType }),
    token_type: 'Bearer',
    expires_in: grant.expiresAt - now,
    ...(grant.scope.length > 0 ? { scope: grant.scope.join(' ') } : {}),
    ...(grant.authorizationDetails.length > 0 ? { authorization_details: grant.authorizationDetails } : {}),
  };
}

/** Actor ids of an `act` claim, current actor first. */
export function actorChain(act: ActClaim | undefined): string[] {
  const chain: string[] = [];
  for (let node = act; node !== undefined; node = node.act) chain.push(node.sub);
  return chain;
}
