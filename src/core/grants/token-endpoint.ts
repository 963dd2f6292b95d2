import type { AuditTrail } from '../audit/chain.js';
import { authenticateClient } from '../clients/client-auth.js';
import { noteClientUse } from '../clients/client-uses.js';
import { isDocumentClientId } from '../clients/document-client-id.js';
import { ClientDocumentError, documentCaller, unboundTenant } from '../clients/metadata-document.js';
import type { Caller, Registry } from '../registry/registry.js';
import type { ServiceContext } from '../context.js';
import { OAuthError, refusalReason } from '../errors.js';
import { assertInGoodStanding, callerPrincipal } from '../registry/standing.js';
import { inSpan } from '../telemetry.js';
import type { TokenResponse } from '../tokens/mint.js';
import { grantsByType } from './index.js';
import { parseTokenRequest, type FormParams } from './token-request.js';

export interface TokenEndpointInput {
  readonly params: FormParams;
  readonly authorization: string | undefined;
  readonly requestId: string | null;
  /** Told who the request turned out to concern (for the request log), granted or refused. */
  readonly observe?: (who: { tenant?: string; client?: string; actor?: string }) => void;
}

/**
 * The token endpoint: every request is answered only after its audit entry is committed,
 * whether it is granted (with the token's lineage) or refused (with what was established); a
 * refusal before the client is authenticated is left unaudited here, for the caller to count.
 */
export async function handleTokenRequest(ctx: ServiceContext, input: TokenEndpointInput): Promise<TokenResponse> {
  const trail: AuditTrail = {};
  const grant = typeof input.params.grant_type === 'string' ? grantsByType.get(input.params.grant_type) : undefined;
  const grantLabel = grant?.grantType ?? 'unsupported';
  try {
    const response = await inSpan('baton.token', { 'baton.grant_type': grantLabel }, async (span) => {
      const result = await runTokenRequest(ctx, input, trail);
      span.setAttributes({
        'baton.tenant': trail.tenant ?? '',
        'baton.client': trail.client ?? '',
        'baton.actor': trail.actor_chain?.[0] ?? '',
        'baton.outcome': 'granted',
      });
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
      type: grant?.auditType ?? 'token.request',
      decision: 'refused',
      reason: refusalReason(error),
      request_id: input.requestId,
    });
    throw error.markAudited();
  } finally {
    input.observe?.({
      ...(trail.tenant === undefined ? {} : { tenant: trail.tenant }),
      ...(typeof trail.client === 'string' ? { client: trail.client } : {}),
      ...(trail.actor_chain?.[0] === undefined ? {} : { actor: trail.actor_chain[0] }),
    });
  }
}

async function runTokenRequest(
  ctx: ServiceContext,
  input: TokenEndpointInput,
  trail: AuditTrail,
): Promise<TokenResponse> {
  const { grant, request, client } = parseTokenRequest(input.params);
  for (const name of ['subject_token', 'actor_token', 'client_assertion', 'code', 'refresh_token'] as const) {
    const value = (input.params as Record<string, unknown>)[name];
    if (typeof value === 'string' && value.length > ctx.limits.maxTokenBytes) {
      throw new OAuthError('invalid_request', `${name} is larger than ${ctx.limits.maxTokenBytes} bytes`);
    }
  }
  const registry = ctx.registry();
  const caller = await authenticateClient(ctx, registry, input.authorization, client, (id) =>
    documentClient(ctx, registry, id),
  );
  trail.client = caller.id;
  // A document client has no tenant until the grant it redeems binds it (callerInTenant), which
  // checks its standing there; every other caller is of one tenant, checked now.
  if (caller.tenant !== unboundTenant) trail.tenant = caller.tenant;
  ctx.rateLimit.check(caller.id);
  if (caller.tenant !== unboundTenant) {
    // Proving who it is does not let a suspended or expired caller in (it is audited, being known).
    assertInGoodStanding(registry, caller.tenant, [callerPrincipal(caller)], ctx.clock.now(), 'invalid_client');
  }
  if (!caller.grantTypes.has(request.grant_type)) {
    throw new OAuthError('unauthorized_client', `client is not allowed the ${request.grant_type} grant`);
  }
  const response = await grant.handle(ctx, registry, caller, request, trail, input.requestId);
  // A dynamically registered client in use is kept; one left unused is swept (see registry/unused-clients.ts).
  await noteClientUse(ctx, caller);
  return response;
}

/**
 * The unbound caller a client_id that is a metadata document URL stands for (from the cache, or
 * fetched and validated); undefined for any other client_id, or where documents are not accepted.
 */
async function documentClient(ctx: ServiceContext, registry: Registry, clientId: string): Promise<Caller | undefined> {
  const documents = ctx.clientDocuments;
  if (documents === undefined || !isDocumentClientId(clientId)) return undefined;
  try {
    return documentCaller(documents, registry, await documents.resolve(clientId), unboundTenant);
  } catch (error) {
    if (error instanceof ClientDocumentError)
      throw new OAuthError('invalid_client', `the client metadata document cannot be used: ${error.message}`);
    throw error;
  }
}
