import fc from 'fast-check';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion } from '../../src/cli/demo-kit.js';
import { basic, exchangeDetails, grants, postJson, postToken, tokenTypes } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton();
});
afterAll(async () => {
  await baton?.close();
});

const payment = (amount: string, currency = 'EUR', extra: Record<string, unknown> = {}) => ({
  type: 'payment_initiation',
  actions: ['initiate'],
  instructedAmount: { currency, amount },
  ...extra,
});

describe('authorization_details at the token endpoint', () => {
  it('grants narrower details and carries them into the token and the response', async () => {
    const result = await exchangeDetails(baton, [payment('100.00')], [payment('50.00')]);
    expect(result.status).toBe(200);
    expect(result.body.authorization_details).toEqual([payment('50.00')]);
    expect(decodeJwt(result.body.access_token as string).authorization_details).toEqual([payment('50.00')]);
  });

  it.each([
    [
      'a larger amount',
      [payment('100.01')],
      'authorization_details[0] is not covered by the subject token: /instructedAmount/amount exceeds the granted "100.00"',
    ],
    [
      'another currency',
      [payment('10.00', 'USD')],
      'authorization_details[0] is not covered by the subject token: /instructedAmount/currency must equal the granted value',
    ],
    [
      'more actions',
      [{ ...payment('10.00'), actions: ['initiate', 'cancel'] }],
      'authorization_details[0] is not covered by the subject token: /actions "cancel" is not granted',
    ],
    [
      'another type',
      [{ type: 'tool_invocation', tool: 'search', actions: ['query'] }],
      'authorization_details[0] is not covered: the subject token holds no tool_invocation entry',
    ],
    ['an unknown type', [{ type: 'teleport' }], 'authorization_details[0] has unknown type "teleport"'],
    [
      'a schema failure',
      [{ ...payment('10.00'), instructedAmount: { currency: 'euro', amount: '10.00' } }],
      'authorization_details[0] /instructedAmount/currency: String does not match pattern.',
    ],
    ['no entries at all', [], 'authorization_details may not be dropped from the subject token that carries them'],
  ])('refuses %s', async (_name, requested, description) => {
    const result = await exchangeDetails(baton, [payment('100.00')], requested);
    expect({ status: result.status, body: result.body }).toEqual({
      status: 400,
      body: { error: 'invalid_authorization_details', error_description: description },
    });
  });

  it('grants exactly when the child is covered, over HTTP (property-based)', async () => {
    const amount = fc
      .integer({ min: 0, max: 30000 })
      .map((c) => `${Math.floor(c / 100)}.${String(c % 100).padStart(2, '0')}`);
    await fc.assert(
      fc.asyncProperty(
        amount,
        amount,
        fc.constantFrom('EUR', 'USD'),
        async (parentAmount, childAmount, childCurrency) => {
          const result = await exchangeDetails(baton, [payment(parentAmount)], [payment(childAmount, childCurrency)]);
          const covered = childCurrency === 'EUR' && Number(childAmount) <= Number(parentAmount);
          expect(result.status).toBe(covered ? 200 : 400);
          if (covered) expect(result.body.authorization_details).toEqual([payment(childAmount, childCurrency)]);
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('authorization_details at POST /authorize', () => {
  const asPayments = { authorization: basic('payments') };
  let token: string;
  beforeAll(async () => {
    const first = await exchangeDetails(baton, [payment('100.00')], undefined);
    const second = await postToken(baton, {
      grant_type: grants.exchange,
      subject_token: first.body.access_token as string,
      subject_token_type: tokenTypes.accessToken,
      actor_token: await mintAgentAssertion('payments-subagent', baton.issuer),
      actor_token_type: tokenTypes.jwt,
    });
    token = second.body.access_token as string;
    expect(decodeJwt(token).authorization_details).toEqual([payment('100.00')]);
  });
  const transfer = (amount: unknown, currency: string, id: string) =>
    postJson(
      baton,
      '/authorize',
      {
        token,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount, currency },
        action_id: id,
      },
      asPayments,
    );

  it('lets the granted 100 EUR through, with the grant in the policy context', async () => {
    expect((await transfer(100, 'EUR', 'a')).body).toEqual({
      decision: 'allow',
      action_id: 'a',
      reasons: ['transfer-up-to-100'],
    });
    expect((await transfer('100.00', 'EUR', 'b')).body).toEqual({
      decision: 'allow',
      action_id: 'b',
      reasons: ['transfer-up-to-100'],
    });
  });

  it('denies what the grant does not cover even where a policy would allow it', async () => {
    const fifty = await exchangeDetails(baton, [payment('50.00')], undefined);
    const result = await postJson(
      baton,
      '/authorize',
      {
        token: fifty.body.access_token,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount: 60, currency: 'EUR' },
        action_id: 'e',
      },
      asPayments,
    );
    expect(result.body).toEqual({ decision: 'deny', action_id: 'e', reasons: ['baton:authorization-details'] });
  });

  it('denies 100.01 and another currency, whatever the policies say', async () => {
    expect((await transfer(100.01, 'EUR', 'c')).body).toEqual({
      decision: 'deny',
      action_id: 'c',
      reasons: ['baton:authorization-details'],
    });
    expect((await transfer(50, 'USD', 'd')).body).toEqual({
      decision: 'deny',
      action_id: 'd',
      reasons: ['baton:authorization-details'],
    });
  });
});
