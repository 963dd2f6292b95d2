import type { AuditTrail, AuditType } from '../audit/chain.js';
import { authenticateClient } from '../clients/client-auth.js';
import type { ServiceContext } from '../context.js';
import { OAuthError, refusalReason } from '../errors.js';
import { grantTypes } from '../registry/schema.js';
import { inSpan } from '../telemetry.js';
import type { TokenResponse } from '../tokens/mint.js';
import { authorizationCode, refreshToken } from './code-grants.js';
import { clientCredentials } from './client-credentials.js';
import { tokenExchange } from './token-exchange.js';
import { parseTokenRequest, type FormParams } from './token-request.js';

export interface TokenEndpointInput {
  readonly params: FormParams;
  readonly authorization: string | undefined;
  readonly requestId: string | null;
  /** Told who the request turned out to concern (for the request log), granted or refused. */
  readonly observe?: (who: { tenant?: string; client?: string; actor?: string }) => void;
}

// A Map, not an object: the key is the caller's grant_type, which may be "constructor" or "__proto__".
const auditTypes: ReadonlyMap<string, AuditType> = new Map([
  [grantTypes.tokenExchange, 'token.exchange'],
  [grantTypes.clientCredentials, 'token.client_credentials'],
  [grantTypes.authorizationCode, 'token.authorization_code'],
  [grantTypes.refreshToken, 'token.refresh'],
]);

/**
 * The token endpoint: every request is answered only after its audit entry is committed,
 * whether it is granted (with the token's lineage) or refused (with what was established); a
 * refusal before the client is authenticated is left unaudited here, for the caller to count.
 */
export async function handleTokenRequest(ctx: ServiceContext, input: TokenEndpointInput): Promise<TokenResponse> {
  const trail: AuditTrail = {};
  const grant = typeof input.params.grant_type === 'string' ? input.params.grant_type : 'none';
  const grantLabel = auditTypes.has(grant) ? grant : 'unsupported';
  try {
    const response = await inSpan('baton.token', { 'baton.grant_type': grantLabel }, async (span) => {
      const result = await runTokenRequest(ctx, input, trail);
      span.setAttributes({ 'baton.tenant': trail.tenant ?? '', 'baton.client': trail.client ?? '', 'baton.actor': trail.actor_chain?.[0] ?? '', 'baton.outcome': 'granted' });
      return result;
    });
    ctx.metrics.grant(grantLabel, 'granted', 'ok');
    return response;
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    ctx.metrics.grant(grantLabel, 'refused', error.code);
    // Before the client is authenticated anyone can send anything: such a refusal is left to the
    // HTTP layer's tally, which bounds what a flood writes (see RefusalTally).
    if (trail.client === undefined) throw error;
    await ctx.audit.append({
      ...trail,
      tenant: trail.tenant ?? 'unknown',
      type: auditTypes.get(grant) ?? 'token.request',
      decision: 'refused',
      reason: refusalReason(error),
      request_id: input.requestId,
    });
    throw error.markAudited();
  } finally {
    input.observe?.({ ...(trail.tenant === undefined ? {} : { tenant: trail.tenant }), ...(typeof trail.client === 'string' ? { client: trail.client } : {}), ...(trail.actor_chain?.[0] === undefined ? {} : { actor: trail.actor_chain[0] }) });
  }
}

async function runTokenRequest(ctx: ServiceContext, input: TokenEndpointInput, trail: AuditTrail): Promise<TokenResponse> {
  const { request, client } = parseTokenRequest(input.params);
  for (const name of ['subject_token', 'actor_token', 'client_assertion', 'code', 'refresh_token'] as const) {
    const value = (input.params as Record<string, unknown>)[name];
    if (typeof value === 'string' && value.length > ctx.limits.maxTokenBytes) {
      throw new OAuthError('invalid_request', `${name} is larger than ${ctx.limits.maxTokenBytes} bytes`);
    }
  }
  const registry = ctx.registry();
  const caller = await authenticateClient(ctx, registry, input.authorization, client);
  trail.tenant = caller.tenant;
  trail.client = caller.id;
  ctx.rateLimit.check(caller.id);
  if (!caller.grantTypes.has(request.grant_type)) {
    throw new OAuthError('unauthorized_client', `client is not allowed the ${request.grant_type} grant`);
  }
  switch (request.grant_type) {
    case grantTypes.tokenExchange:
      return tokenExchange(ctx, registry, caller, request, trail, input.requestId);
    case grantTypes.clientCredentials:
      return clientCredentials(ctx, registry, caller, request, input.requestId);
    case grantTypes.authorizationCode:
      return authorizationCode(ctx, registry, caller, request, trail, input.requestId);
    case grantTypes.refreshToken:
      return refreshToken(ctx, caller, request, trail, input.requestId);
  }
}

