import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AuditEvent } from '../../../src/core/audit/chain.js';
import type { ServiceContext } from '../../../src/core/context.js';
import { OAuthError } from '../../../src/core/errors.js';
import { grants } from '../../../src/core/grants/index.js';
import { handleTokenRequest } from '../../../src/core/grants/token-endpoint.js';
import type { FormParams } from '../../../src/core/grants/token-request.js';
import type { Caller, Registry } from '../../../src/core/registry/registry.js';
import { minimalRequests } from './minimal-requests.js';

/** A public client of tenant acme (it authenticates by client_id alone), allowed the given grants. */
function publicClient(grantTypes: readonly string[]): Caller {
  return {
    kind: 'client',
    id: 'app',
    tenant: 'acme',
    authMethod: 'none',
    secretSha256: undefined,
    resolve: undefined,
    grantTypes: new Set(grantTypes),
    scope: undefined,
    agents: new Set(),
    authorizationDetails: [],
    redirectUris: ['https://app.example/callback'],
    name: 'App',
    registeredAt: undefined,
  };
}

/**
 * The endpoint around the grants, with only what it touches before and after a handler: the
 * registry, the size limit, the rate limiter, the metrics and the audit log (both recorded).
 */
function endpointWith(caller: Caller) {
  const registry: Registry = {
    tenants: new Map(),
    issuers: new Map(),
    workloadIssuers: new Map(),
    agents: new Map(),
    callers: new Map([[caller.id, caller]]),
    resourceServers: new Map(),
    audiences: new Map(),
    users: new Map(),
    suspensions: new Map(),
  };
  const counted: [string, string, string][] = [];
  const audited: AuditEvent[] = [];
  const ctx = {
    registry: () => registry,
    limits: { maxTokenBytes: 8192 },
    clock: { now: () => Date.now() },
    rateLimit: { check: () => undefined },
    metrics: {
      grant: (grantType: string, outcome: string, reason: string) => counted.push([grantType, outcome, reason]),
    },
    audit: {
      append: async (event: AuditEvent) => {
        audited.push(event);
        return {};
      },
    },
  } as unknown as ServiceContext;
  const send = (params: FormParams) =>
    handleTokenRequest(ctx, {
      params: { ...params, client_id: caller.id },
      authorization: undefined,
      requestId: 'req-1',
    });
  return { ctx, registry, counted, audited, send };
}

async function refusalOf(answer: Promise<unknown>): Promise<{ error: string; error_description: string }> {
  const error: unknown = await answer.then(
    () => new Error('request was granted'),
    (refused: unknown) => refused,
  );
  if (error instanceof OAuthError) return error.toJSON();
  throw error;
}

const allowedAll = publicClient(grants.map((grant) => grant.grantType));

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the token endpoint', () => {
  it.each(grants.map((grant) => [grant.grantType, grant] as const))(
    "hands the %s request to that grant's handler alone",
    async (grantType, grant) => {
      const handlers = grants.map((g) =>
        vi
          .spyOn(g, 'handle')
          .mockResolvedValue({ access_token: `from ${g.grantType}`, token_type: 'Bearer', expires_in: 60 }),
      );
      const { ctx, registry, counted, audited, send } = endpointWith(allowedAll);
      expect(await send(minimalRequests[grantType]?.params ?? {})).toEqual({
        access_token: `from ${grantType}`,
        token_type: 'Bearer',
        expires_in: 60,
      });
      expect(handlers.map((handler) => handler.mock.calls.length)).toEqual(grants.map((g) => (g === grant ? 1 : 0)));
      expect(handlers[grants.indexOf(grant)]?.mock.calls[0]).toEqual([
        ctx,
        registry,
        allowedAll,
        minimalRequests[grantType]?.parsed,
        { tenant: 'acme', client: 'app' },
        'req-1',
      ]);
      expect(counted).toEqual([[grantType, 'granted', 'ok']]);
      expect(audited).toEqual([]);
    },
  );

  it.each(grants.map((grant) => [grant.grantType, grant.auditType] as const))(
    'audits a %s refusal of its handler as %s',
    async (grantType, auditType) => {
      for (const g of grants)
        vi.spyOn(g, 'handle').mockRejectedValue(
          new OAuthError('invalid_grant', 'refused by the grant', { detail: 'why' }),
        );
      const { counted, audited, send } = endpointWith(allowedAll);
      expect(await refusalOf(send(minimalRequests[grantType]?.params ?? {}))).toEqual({
        error: 'invalid_grant',
        error_description: 'refused by the grant',
      });
      expect(counted).toEqual([[grantType, 'refused', 'invalid_grant']]);
      expect(audited).toEqual([
        {
          tenant: 'acme',
          client: 'app',
          type: auditType,
          decision: 'refused',
          reason: 'invalid_grant: refused by the grant (why)',
          request_id: 'req-1',
        },
      ]);
    },
  );

  it("refuses a grant the client is not allowed before its handler, audited as that grant's", async () => {
    const handlers = grants.map((g) => vi.spyOn(g, 'handle'));
    const { counted, audited, send } = endpointWith(publicClient(['authorization_code']));
    expect(await refusalOf(send(minimalRequests.refresh_token?.params ?? {}))).toEqual({
      error: 'unauthorized_client',
      error_description: 'client is not allowed the refresh_token grant',
    });
    expect(handlers.map((handler) => handler.mock.calls.length)).toEqual([0, 0, 0, 0]);
    expect(counted).toEqual([['refresh_token', 'refused', 'unauthorized_client']]);
    expect(audited).toEqual([
      {
        tenant: 'acme',
        client: 'app',
        type: 'token.refresh',
        decision: 'refused',
        reason: 'unauthorized_client: client is not allowed the refresh_token grant',
        request_id: 'req-1',
      },
    ]);
  });

  it.each(['password', '__proto__', 'constructor'])(
    'refuses grant_type %s as unsupported, reaching no handler and counted as unsupported',
    async (grantType) => {
      const handlers = grants.map((g) => vi.spyOn(g, 'handle'));
      const { counted, audited, send } = endpointWith(allowedAll);
      expect(await refusalOf(send({ grant_type: grantType }))).toEqual({
        error: 'unsupported_grant_type',
        error_description: `grant_type "${grantType}" is not supported`,
      });
      expect(handlers.map((handler) => handler.mock.calls.length)).toEqual([0, 0, 0, 0]);
      expect(counted).toEqual([['unsupported', 'refused', 'unsupported_grant_type']]);
      // The client is not authenticated yet: the HTTP layer's tally counts such a refusal.
      expect(audited).toEqual([]);
    },
  );
});
