import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, exchangeDetails, demoChain, postJson, postToken } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

// Amounts are decided completely: the schema of their authorization_details type first (at the
// token endpoint, in the authorization request, and for a governed action's context at
// /authorize and AuthZEN), then the rules and the policies, which require a positive amount.
let baton: MemoryBaton;
let withGrant: string;
let withoutGrant: string;
beforeAll(async () => {
  baton = await memoryBaton();
  const first = await exchangeDetails(baton, [payment('100.00')], undefined);
  expect(first.status).toBe(200);
  withGrant = first.body.access_token as string;
  [, withoutGrant] = await demoChain(baton);
});
afterAll(async () => {
  await baton?.close();
});

const asPayments = { authorization: basic('payments') };
const payment = (amount: unknown, currency = 'EUR') => ({
  type: 'payment_initiation',
  actions: ['initiate'],
  instructedAmount: { currency, amount },
});

/** A transfer decision whose amount is written into the JSON text as given (so `1e400` stays a number literal). */
const transfer = (token: string, amountJson: string, currency = 'EUR') =>
  postJson(
    baton,
    '/authorize',
    `{"token":${JSON.stringify(token)},"action":"payments:transfer","resource":{"type":"Account","id":"acct-1"},"context":{"amount":${amountJson},"currency":"${currency}"},"action_id":"amt"}`,
    asPayments,
  );

const outsideSchema = (member: string, where: string, message: string) => ({
  error: 'invalid_request',
  error_description: `context.${member} is outside the payment_initiation schema at ${where}: ${message}`,
});
const badAmount = outsideSchema('amount', '/instructedAmount/amount', 'String does not match pattern.');

describe('POST /authorize: the amount of a governed action', () => {
  const allow = { decision: 'allow', action_id: 'amt', reasons: ['transfer-up-to-100'] };
  const policyDeny = { decision: 'deny', action_id: 'amt', reasons: [] };
  const grantDeny = { decision: 'deny', action_id: 'amt', reasons: ['baton:authorization-details'] };

  it.each([
    ['a JSON number', '50', allow, allow],
    ['decimal text', '"50.25"', allow, allow],
    ['the limit exactly, as text with decimals', '"100.00"', allow, allow],
    ['1e2, which JSON reads as 100', '1e2', allow, allow],
    ['the smallest amount', '0.01', allow, allow],
    ['zero', '0', policyDeny, policyDeny],
    ['zero as text', '"0.00"', policyDeny, policyDeny],
    ['-0, which JSON reads as zero', '-0', policyDeny, policyDeny],
    ['a cent over the limit', '100.01', policyDeny, grantDeny],
  ])('decides %s', async (_name, amount, withoutDetails, withDetails) => {
    const plain = await transfer(withoutGrant, amount);
    expect({ status: plain.status, body: plain.body }).toEqual({ status: 200, body: withoutDetails });
    const granted = await transfer(withGrant, amount);
    expect({ status: granted.status, body: granted.body }).toEqual({ status: 200, body: withDetails });
  });

  it.each([
    ['a negative number', '-5', badAmount],
    ['a negative cent', '-0.01', badAmount],
    ['negative text', '"-5"', badAmount],
    ['-0 as text', '"-0"', badAmount],
    ['exponent text', '"1e2"', badAmount],
    ['1E-7', '1E-7', badAmount],
    ['1e400', '1e400', badAmount],
    ['1e308', '1e308', badAmount],
    ['a number beyond Number.MAX_SAFE_INTEGER', '9007199254740993', badAmount],
    ['text of twenty digits', '"99999999999999999999"', badAmount],
    ['NaN as text', '"NaN"', badAmount],
    ['Infinity as text', '"Infinity"', badAmount],
    ['-Infinity as text', '"-Infinity"', badAmount],
    ['three decimals of euro', '10.001', badAmount],
    ['three decimals of euro as text', '"10.001"', badAmount],
    ['an empty string', '""', badAmount],
    [
      'a boolean',
      'true',
      outsideSchema('amount', '/instructedAmount/amount', 'Instance type "boolean" is invalid. Expected "string".'),
    ],
    [
      'a list',
      '[5]',
      outsideSchema('amount', '/instructedAmount/amount', 'Instance type "array" is invalid. Expected "string".'),
    ],
  ])('refuses %s with 400 before any rule or policy, whatever the token holds', async (_name, amount, body) => {
    for (const token of [withoutGrant, withGrant, 'not-even-a-token']) {
      const result = await transfer(token, amount);
      expect({ status: result.status, body: result.body }).toEqual({ status: 400, body });
    }
  });

  it('refuses decimals the currency does not have, and takes those it has', async () => {
    expect((await transfer(withoutGrant, '"5.5"', 'JPY')).body).toEqual(badAmount);
    // JPY is not the account's currency, so the policies deny: the amount itself was fine.
    expect((await transfer(withoutGrant, '"5"', 'JPY')).body).toEqual({
      decision: 'deny',
      action_id: 'amt',
      reasons: ['transfer-in-account-currency'],
    });
    expect((await transfer(withoutGrant, '"5.001"', 'KWD')).body).toEqual({
      decision: 'deny',
      action_id: 'amt',
      reasons: ['transfer-in-account-currency'],
    });
    expect((await transfer(withoutGrant, '"5.0001"', 'KWD')).body).toEqual(badAmount);
  });

  it('audits the refusal as a decision refused, with its action id', async () => {
    const result = await postJson(
      baton,
      '/authorize',
      {
        token: withoutGrant,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount: -5, currency: 'EUR' },
        action_id: 'negative-1',
      },
      asPayments,
    );
    expect(result.status).toBe(400);
    const auditor = await postToken(
      baton,
      { grant_type: 'client_credentials', scope: 'baton:audit' },
      { authorization: basic('ops-console') },
    );
    const trail = (await (
      await baton.fetch(`${baton.url}/audit/actions/negative-1`, {
        headers: { authorization: `Bearer ${auditor.body.access_token as string}` },
      })
    ).json()) as { entries: { entry: Record<string, unknown> }[] };
    expect(trail.entries.map((e) => e.entry)).toEqual([
      expect.objectContaining({
        type: 'decision',
        decision: 'refused',
        action_id: 'negative-1',
        client: 'payments',
        tenant: 'acme',
        reason: `invalid_request: ${badAmount.error_description}`,
      }),
    ]);
  });
});

describe('AuthZEN: a governed action maps onto the same rules', () => {
  const request = (amount: unknown) => ({
    subject: { type: 'Agent', id: 'payments-subagent' },
    action: { name: 'payments:transfer' },
    resource: { type: 'Account', id: 'acct-1' },
    context: {
      amount,
      currency: 'EUR',
      client: 'agent-platform',
      user: 'alice',
      chain: ['payments-subagent'],
      depth: 1,
      scope: ['payments:transfer'],
    },
  });

  it.each([
    [50, 200, { decision: true }],
    ['50.00', 200, { decision: true }],
    [0, 200, { decision: false }],
    [-5, 400, badAmount],
    ['-5', 400, badAmount],
    ['1e2', 400, badAmount],
    ['10.001', 400, badAmount],
  ])('evaluation with amount %j', async (amount, status, body) => {
    const result = await postJson(baton, '/access/v1/evaluation', request(amount), asPayments);
    expect({ status: result.status, body: result.body }).toEqual({ status, body });
  });

  it('fails only the item with a bad amount in a batch', async () => {
    const result = await postJson(
      baton,
      '/access/v1/evaluations',
      { ...request(50), evaluations: [{}, { context: request(-1).context }, { context: request(0).context }] },
      asPayments,
    );
    expect({ status: result.status, body: result.body }).toEqual({
      status: 200,
      body: {
        evaluations: [
          { decision: true },
          { decision: false, context: { error: { status: 400, message: badAmount.error_description } } },
          { decision: false },
        ],
      },
    });
  });
});

describe('amount limits in the grant itself', () => {
  const notCovered = (why: string) => ({
    error: 'invalid_authorization_details',
    error_description: `authorization_details[0] ${why}`,
  });
  const schemaRefusal = notCovered('/instructedAmount/amount: String does not match pattern.');

  it.each([
    ['a smaller amount', [payment('0.01')], 200],
    ['zero (a limit of nothing)', [payment('0')], 200],
    ['three decimals of euro', [payment('10.001')], 400, schemaRefusal],
    ['a negative amount', [payment('-5')], 400, schemaRefusal],
    ['-0', [payment('-0')], 400, schemaRefusal],
    ['exponent notation', [payment('1e2')], 400, schemaRefusal],
    ['1E-7', [payment('1E-7')], 400, schemaRefusal],
    ['NaN', [payment('NaN')], 400, schemaRefusal],
    ['Infinity', [payment('Infinity')], 400, schemaRefusal],
    ['twenty digits', [payment('99999999999999999999')], 400, schemaRefusal],
    [
      'a JSON number',
      [payment(50)],
      400,
      notCovered('/instructedAmount/amount: Instance type "number" is invalid. Expected "string".'),
    ],
    [
      '1e400 as a JSON number',
      `[{"type":"payment_initiation","actions":["initiate"],"instructedAmount":{"currency":"EUR","amount":1e400}}]`,
      400,
      notCovered('/instructedAmount/amount: Instance type "number" is invalid. Expected "string".'),
    ],
    [
      'more than the grant',
      [payment('100.01')],
      400,
      notCovered('is not covered by the subject token: /instructedAmount/amount exceeds the granted "100.00"'),
    ],
  ])('token exchange asking for %s', async (_name, requested, status, body?) => {
    const result = await exchangeDetails(baton, [payment('100.00')], requested);
    if (status === 200) expect(result.body.authorization_details).toEqual(requested);
    else expect({ status: result.status, body: result.body }).toEqual({ status, body });
  });

  it.each([
    ['a negative limit', '-5'],
    ['three decimals of euro', '10.001'],
    ['exponent notation', '1e2'],
    ['a JSON number', 100],
  ])('refuses a subject token from an identity provider that grants %s', async (_name, amount) => {
    const result = await exchangeDetails(baton, [payment(amount)], undefined);
    const message =
      typeof amount === 'number'
        ? 'Instance type "number" is invalid. Expected "string".'
        : 'String does not match pattern.';
    expect({ status: result.status, body: result.body }).toEqual({
      status: 400,
      body: {
        error: 'invalid_request',
        error_description: `subject_token has an authorization_details[0] outside its type's schema: /instructedAmount/amount: ${message}`,
      },
    });
  });

  it.each([
    ['three decimals of euro', '10.001'],
    ['a negative amount', '-5'],
    ['exponent notation', '1e2'],
  ])('refuses an authorization request for %s, back at the redirect URI', async (_name, amount) => {
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: 'agent-platform',
      redirect_uri: 'http://localhost:3000/callback',
      scope: 'payments:transfer',
      state: 's',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      requested_actor: 'orchestrator',
      authorization_details: JSON.stringify([payment(amount)]),
    });
    const response = await baton.fetch(`${baton.url}/oauth2/authorize?${query}`, { redirect: 'manual' });
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get('location') as string);
    expect([
      location.searchParams.get('error'),
      location.searchParams.get('error_description'),
      location.searchParams.get('state'),
    ]).toEqual([
      'invalid_authorization_details',
      'authorization_details[0] /instructedAmount/amount: String does not match pattern.',
      's',
    ]);
  });
});
