import { OAuthResponseError, ToolDeniedError } from '@baton-sts/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBaton, type TestBaton } from '../../test/support/baton.js';
import { auditTrail, paymentUpTo, runDelegationChain, type AuditTrail, type ChainResult } from './chain.js';
import { demoUserToken, readDemoKit, type DemoKit } from './demo-kit.js';

let baton: TestBaton;
let kit: DemoKit;
let run: ChainResult;
beforeAll(async () => {
  baton = await startTestBaton();
  kit = readDemoKit();
  run = await runDelegationChain(await chainOptions([paymentUpTo('200.00')]));
});
afterAll(async () => {
  await baton?.close();
});

/** The example's options against the test Baton, alice's token holding `granted`. */
async function chainOptions(granted: object[]) {
  return {
    issuer: baton.issuer,
    userToken: await demoUserToken(kit, { issuer: baton.issuer, authorizationDetails: granted }),
    orchestratorJwk: kit.orchestratorJwk,
    paymentsSubagentJwk: kit.paymentsSubagentJwk,
    agentPlatformSecret: kit.secrets.agentPlatform,
    paymentsSecret: kit.secrets.payments,
  };
}

const trailOf = (actionId: string): Promise<AuditTrail> =>
  auditTrail({ issuer: baton.issuer, auditor: { id: 'ops-console', secret: kit.secrets.opsConsole }, actionId });

const upTo100 = {
  type: 'payment_initiation',
  actions: ['initiate'],
  instructedAmount: { currency: 'EUR', amount: '100.00' },
};
// The audit log sorts a detail's members by name.
const upTo100Audited = {
  actions: ['initiate'],
  instructedAmount: { amount: '100.00', currency: 'EUR' },
  type: 'payment_initiation',
};

describe('delegation chain: alice → orchestrator → payments-subagent → transfer', () => {
  it('builds the chain, each hop narrower than the one before', () => {
    const [orchestrator, subagent] = run.hops;
    expect(orchestrator).toEqual({
      holder: 'orchestrator',
      actChain: ['alice', 'orchestrator'],
      jti: expect.any(String),
      audience: 'https://payments.example',
      scope: 'payments:read payments:transfer',
      authorizationDetails: [upTo100],
    });
    expect(subagent).toEqual({
      holder: 'payments-subagent',
      actChain: ['alice', 'orchestrator', 'payments-subagent'],
      jti: expect.any(String),
      audience: 'https://payments.example',
      scope: 'payments:transfer',
      authorizationDetails: [upTo100],
    });
  });

  it('runs the tool for 50 EUR and refuses 150 EUR before the tool runs', () => {
    const [allowed, refused] = run.calls;
    expect(allowed).toEqual({
      amount: 50,
      actionId: expect.stringMatching(/^transfer-[0-9a-f-]{36}$/),
      outcome: 'ran',
      result: { id: 'tr-1', amount: 50, currency: 'EUR' },
    });
    expect(refused?.outcome).toBe('denied');
    const error = refused?.outcome === 'denied' ? refused.error : undefined;
    expect(error).toBeInstanceOf(ToolDeniedError);
    expect({
      code: error?.code,
      tool: error?.tool,
      actionId: error?.actionId,
      reasons: error?.reasons,
      message: error?.message,
    }).toEqual({
      code: 'access_denied',
      tool: 'transfer',
      actionId: refused?.actionId,
      reasons: ['baton:authorization-details'],
      message: `Baton denied the tool transfer (action ${refused?.actionId})`,
    });
    expect(refused?.actionId).toMatch(/^transfer-[0-9a-f-]{36}$/);
    // The tool ran once: for the 50.
    expect(run.ledger).toEqual([{ id: 'tr-1', amount: 50, currency: 'EUR' }]);
  });

  it("audits the allowed action: the root grant, both hops, then Baton's decision, each verified", async () => {
    const [orchestrator, subagent] = run.hops;
    const allowed = run.calls[0];
    const trail = await trailOf(allowed?.actionId ?? '');
    expect({ action_id: trail.action_id, verified: trail.verified, gaps: trail.gaps }).toEqual({
      action_id: allowed?.actionId,
      verified: true,
      gaps: [],
    });
    const [first] = trail.entries;
    const seq = first?.seq ?? 0;
    expect(trail.entries.map(({ seq, verified, entry }) => ({ seq, verified, ...pick(entry) }))).toEqual([
      {
        seq,
        verified: true,
        type: 'token.exchange',
        decision: 'granted',
        tenant: 'acme',
        user: 'alice',
        actor_chain: ['orchestrator'], // the audit log lists actors newest first
        client: 'agent-platform',
        jti: orchestrator.jti,
        parent_jti: null,
        root_grant: orchestrator.jti, // the root grant: the first hop from alice's own token
        audience: ['https://payments.example'],
        scope: ['payments:read', 'payments:transfer'],
        authorization_details: [upTo100Audited],
        policy_ids: ['delegate-within-tenant'],
        action_id: null,
        reason: null,
      },
      {
        seq: seq + 1,
        verified: true,
        type: 'token.exchange',
        decision: 'granted',
        tenant: 'acme',
        user: 'alice',
        actor_chain: ['payments-subagent', 'orchestrator'],
        client: 'agent-platform',
        jti: subagent.jti,
        parent_jti: orchestrator.jti,
        root_grant: orchestrator.jti,
        audience: ['https://payments.example'],
        scope: ['payments:transfer'],
        authorization_details: [upTo100Audited],
        policy_ids: ['delegate-within-tenant'],
        action_id: null,
        reason: null,
      },
      {
        seq: seq + 2,
        verified: true,
        type: 'decision',
        decision: 'allow',
        tenant: 'acme',
        user: 'alice',
        actor_chain: ['payments-subagent', 'orchestrator'],
        client: 'payments',
        jti: subagent.jti,
        parent_jti: null,
        root_grant: null,
        audience: ['https://payments.example'],
        scope: ['payments:transfer'],
        authorization_details: [upTo100Audited],
        policy_ids: ['transfer-up-to-100'],
        action_id: allowed?.actionId,
        reason: 'payments:transfer on Account::acct-1',
      },
    ]);
    expect(trail.entries.every((e) => /^[0-9a-f]{64}$/.test(e.hash))).toBe(true);
  });

  it('audits the refused action: the same hops (the cached token), then the deny and why', async () => {
    const [orchestrator, subagent] = run.hops;
    const [allowed, refused] = run.calls;
    const allowedTrail = await trailOf(allowed?.actionId ?? '');
    const trail = await trailOf(refused?.actionId ?? '');
    expect({ action_id: trail.action_id, verified: trail.verified, gaps: trail.gaps }).toEqual({
      action_id: refused?.actionId,
      verified: true,
      gaps: [],
    });
    // The sub-agent's token came from the cache: no exchange between the two calls.
    expect(trail.entries.slice(0, 2)).toEqual(allowedTrail.entries.slice(0, 2));
    expect(trail.entries.map((e) => [e.entry.type, e.entry.decision, e.entry.jti, e.verified])).toEqual([
      ['token.exchange', 'granted', orchestrator.jti, true],
      ['token.exchange', 'granted', subagent.jti, true],
      ['decision', 'deny', subagent.jti, true],
    ]);
    const deny = trail.entries[2];
    expect(deny?.seq).toBe((allowedTrail.entries[2]?.seq ?? 0) + 1);
    // Baton refused on the token's authorization_details before its policies ran; the entry still
    // names the whole chain that asked.
    expect(pick(deny?.entry ?? { type: '' })).toEqual({
      type: 'decision',
      decision: 'deny',
      tenant: 'acme',
      user: 'alice',
      actor_chain: ['payments-subagent', 'orchestrator'],
      client: 'payments',
      jti: subagent.jti,
      parent_jti: null,
      root_grant: null,
      audience: ['https://payments.example'],
      scope: ['payments:transfer'],
      authorization_details: [],
      policy_ids: ['baton:authorization-details'],
      action_id: refused?.actionId,
      reason:
        'payments:transfer on Account::acct-1: payment_initiation /instructedAmount/amount exceeds the granted "100.00"',
    });
  });

  it("refuses the orchestrator's hop when it asks for more than alice allowed", async () => {
    const error = await runDelegationChain(await chainOptions([paymentUpTo('80.00')])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OAuthResponseError);
    expect({
      code: (error as OAuthResponseError).code,
      description: (error as OAuthResponseError).description,
      status: (error as OAuthResponseError).status,
    }).toEqual({
      code: 'invalid_authorization_details',
      description:
        'authorization_details[0] is not covered by the subject token: /instructedAmount/amount exceeds the granted "80.00"',
      status: 400,
    });
  });
});

// The audited fields this example is about (the time, hashes and policy digest vary).
const audited = [
  'type',
  'decision',
  'tenant',
  'user',
  'actor_chain',
  'client',
  'jti',
  'parent_jti',
  'root_grant',
  'audience',
  'scope',
  'authorization_details',
  'policy_ids',
  'action_id',
  'reason',
] as const;

function pick(entry: AuditTrail['entries'][number]['entry']): Record<string, unknown> {
  return Object.fromEntries(audited.map((field) => [field, entry[field]]));
}
