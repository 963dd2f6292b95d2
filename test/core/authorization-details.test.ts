import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  attenuateAuthorizationDetails,
  compileDetailType,
  DetailTypeError,
  describeDetail,
  matchDecision,
  parseAuthorizationDetails,
  type AuthorizationDetail,
} from '../../src/core/authorization-details.js';
import { OAuthError } from '../../src/core/errors.js';
import { loadDetailTypes } from '../../src/node/files.js';

const types = loadDetailTypes('schemas/authorization-details');
const refusal = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    if (error instanceof OAuthError) return `${error.code}: ${error.description}`;
    throw error;
  }
  return 'accepted';
};

describe('authorization_details types as data', () => {
  it('ships payment_initiation and tool_invocation', () => {
    expect([...types.keys()]).toEqual(['payment_initiation', 'tool_invocation']);
  });

  it('refuses a declaration that leaves a field without a rule, or a rule without a field', () => {
    const doc = { type: 'x', description: 'x', sentence: 'x', schema: { type: 'object', properties: { type: { const: 'x' }, limit: { type: 'integer' }, nested: { type: 'object', properties: { a: { type: 'string' } } } } }, attenuation: { '/limit': 'max', '/other': 'equal' } };
    expect(() => compileDetailType('x.json', doc)).toThrow(DetailTypeError);
    expect(() => compileDetailType('x.json', doc)).toThrow('x.json: /attenuation: the field /nested/a has no attenuation rule');
    expect(() => compileDetailType('x.json', doc)).toThrow('x.json: /attenuation~1other: the schema declares no field /other');
  });

  it.each([
    ['not JSON', '[', 'authorization_details is not valid JSON'],
    ['not an array', '{}', 'authorization_details must be a JSON array'],
    ['an entry that is not an object', '[1]', 'authorization_details[0] must be an object'],
    ['an unknown type', '[{"type":"crypto_swap"}]', 'authorization_details[0] has unknown type "crypto_swap"'],
    ['a schema failure, with its pointer', '[{"type":"payment_initiation","actions":["initiate"],"instructedAmount":{"currency":"EUR","amount":100}}]', 'authorization_details[0] /instructedAmount/amount: Instance type "number" is invalid. Expected "string".'],
    ['a missing member', '[{"type":"tool_invocation","tool":"search"}]', 'authorization_details[0] /: Instance does not have required property "actions".'],
    ['an undeclared member', '[{"type":"tool_invocation","tool":"search","actions":["q"],"colour":"red"}]', 'authorization_details[0] /colour: is not a member this type declares'],
    ['too many entries', JSON.stringify(Array.from({ length: 3 }, () => ({ type: 'tool_invocation', tool: 't', actions: ['a'] }))), 'authorization_details has more than 2 entries'],
  ])('refuses %s with invalid_authorization_details', (_name, raw, description) => {
    expect(refusal(() => parseAuthorizationDetails(raw, types, 2))).toBe(`invalid_authorization_details: ${description}`);
  });

  it('says each entry in plain words', () => {
    const payment: AuthorizationDetail = { type: 'payment_initiation', actions: ['initiate'], instructedAmount: { currency: 'EUR', amount: '100.00' }, creditorAccount: { iban: 'DE89370400440532013000' } };
    expect(describeDetail(types, payment)).toBe('transfer up to 100.00 EUR to account DE89370400440532013000');
    expect(describeDetail(types, { ...payment, actions: ['initiate', 'status'], creditorName: 'Merchant A' })).toBe('transfer and check the status of payments up to 100.00 EUR to account DE89370400440532013000 (Merchant A)');
    expect(describeDetail(types, { type: 'tool_invocation', tool: 'calendar', actions: ['read', 'list'], max_calls: 5 })).toBe('use the tool calendar to read and list, at most 5 times');
  });

  it.each([
    ['de', 'überweisen und den Status von Zahlungen abfragen bis zu 100.00 EUR an das Konto DE89370400440532013000 (Merchant A)', 'das Werkzeug calendar verwenden für read und list, höchstens 5-mal'],
    ['fr', 'virer et consulter l’état des paiements jusqu’à 100.00 EUR vers le compte DE89370400440532013000 (Merchant A)', 'utiliser l’outil calendar pour read et list, au plus 5 fois'],
    ['ja', 'transfer and check the status of payments up to 100.00 EUR to account DE89370400440532013000 (Merchant A)', 'use the tool calendar to read and list, at most 5 times'],
    ['constructor', 'transfer and check the status of payments up to 100.00 EUR to account DE89370400440532013000 (Merchant A)', 'use the tool calendar to read and list, at most 5 times'],
  ])('says each entry in %s when the type has it, in English otherwise', (language, payment, tool) => {
    const entry: AuthorizationDetail = { type: 'payment_initiation', actions: ['initiate', 'status'], instructedAmount: { currency: 'EUR', amount: '100.00' }, creditorAccount: { iban: 'DE89370400440532013000' }, creditorName: 'Merchant A' };
    expect(describeDetail(types, entry, language)).toBe(payment);
    expect(describeDetail(types, { type: 'tool_invocation', tool: 'calendar', actions: ['read', 'list'], max_calls: 5 }, language)).toBe(tool);
  });
});

const currency = fc.constantFrom('EUR', 'USD');
const amount = fc.integer({ min: 0, max: 20000 }).map((cents) => `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`);
const actions = fc.subarray(['initiate', 'status', 'cancel'], { minLength: 1 });
const iban = fc.option(fc.constantFrom('DE89370400440532013000', 'FR1420041010050500013M02606'), { nil: undefined });
const payment = fc.record({ currency, amount, actions, iban }).map(({ currency, amount, actions, iban }): AuthorizationDetail => ({
  type: 'payment_initiation',
  actions,
  instructedAmount: { currency, amount },
  ...(iban === undefined ? {} : { creditorAccount: { iban } }),
}));

/** The coverage rule, written out independently of the engine. */
function covered(parent: AuthorizationDetail, child: AuthorizationDetail): boolean {
  const p = parent as unknown as { actions: string[]; instructedAmount: { currency: string; amount: string }; creditorAccount?: { iban: string } };
  const c = child as unknown as typeof p;
  return (
    c.actions.every((a) => p.actions.includes(a)) &&
    c.instructedAmount.currency === p.instructedAmount.currency &&
    Math.round(Number(c.instructedAmount.amount) * 100) <= Math.round(Number(p.instructedAmount.amount) * 100) &&
    (p.creditorAccount === undefined || c.creditorAccount?.iban === p.creditorAccount.iban)
  );
}

describe('attenuation (property-based)', () => {
  it('grants a child exactly when a held entry covers it, and never more than the parent', () => {
    fc.assert(
      fc.property(payment, payment, (parent, child) => {
        const outcome = refusal(() => attenuateAuthorizationDetails(types, [child], [parent], 'the subject token'));
        expect(outcome === 'accepted').toBe(covered(parent, child));
        if (outcome === 'accepted') expect(covered(parent, attenuateAuthorizationDetails(types, [child], [parent], 'the subject token')[0] as AuthorizationDetail)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('carries the parent over unchanged when nothing is asked', () => {
    fc.assert(
      fc.property(fc.array(payment, { maxLength: 3 }), (held) => {
        expect(attenuateAuthorizationDetails(types, undefined, held, 'the subject token')).toEqual(held);
      }),
    );
  });

  it('names the field that is not covered', () => {
    const parent: AuthorizationDetail = { type: 'payment_initiation', actions: ['initiate'], instructedAmount: { currency: 'EUR', amount: '100.00' }, creditorAccount: { iban: 'DE89370400440532013000' } };
    expect(refusal(() => attenuateAuthorizationDetails(types, [{ ...parent, instructedAmount: { currency: 'EUR', amount: '100.01' } }], [parent], 'the subject token'))).toBe(
      'invalid_authorization_details: authorization_details[0] is not covered by the subject token: /instructedAmount/amount exceeds the granted "100.00"',
    );
    const widened: AuthorizationDetail = { type: 'payment_initiation', actions: ['initiate'], instructedAmount: { currency: 'EUR', amount: '100.00' } };
    expect(refusal(() => attenuateAuthorizationDetails(types, [widened], [parent], 'the subject token'))).toBe(
      'invalid_authorization_details: authorization_details[0] is not covered by the subject token: /creditorAccount/iban is missing, but the grant restricts it',
    );
  });
});

describe('matching a decision to a held entry', () => {
  const grant: AuthorizationDetail = { type: 'payment_initiation', actions: ['initiate'], instructedAmount: { currency: 'EUR', amount: '100.00' } };
  it.each([
    [{ amount: 100, currency: 'EUR' }, true, undefined],
    [{ amount: '99.99', currency: 'EUR' }, true, undefined],
    [{ amount: 100.01, currency: 'EUR' }, false, 'payment_initiation /instructedAmount/amount exceeds the granted "100.00"'],
    [{ amount: 50, currency: 'USD' }, false, 'payment_initiation /instructedAmount/currency must equal the granted value'],
    [{ currency: 'EUR' }, false, 'payment_initiation /instructedAmount/amount is missing, but the grant restricts it'],
  ])('%j', (context, ok, reason) => {
    const match = matchDecision(types, [grant], 'payments:transfer', context);
    expect(match).toEqual({ applies: true, entry: ok ? grant : undefined, reason });
  });

  it('does not apply to ungoverned actions or tokens without details', () => {
    expect(matchDecision(types, [grant], 'payments:read', {})).toEqual({ applies: false });
    expect(matchDecision(types, [], 'payments:transfer', { amount: 5 })).toEqual({ applies: false });
  });

  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'])('takes the action %s as an ordinary ungoverned action', (action) => {
    expect(matchDecision(types, [grant], action, { amount: 5, currency: 'EUR' })).toEqual({ applies: false });
  });
});

describe('plain words for values that are JavaScript object keys', () => {
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])('shows an action %s as itself, not as a label', (action) => {
    expect(describeDetail(types, { type: 'payment_initiation', actions: [action, 'initiate'], instructedAmount: { currency: 'EUR', amount: '5' } })).toBe(`${action} and transfer up to 5 EUR`);
  });
});
