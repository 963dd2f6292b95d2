import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  attenuateAuthorizationDetails,
  checkHeldDetails,
  compileDetailType,
  DetailTypeError,
  describeDetail,
  matchDecision,
  parseAuthorizationDetails,
  readGovernedContext,
  type AuthorizationDetail,
  type GovernedContext,
} from '../../src/core/tokens/authorization-details.js';
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
    const doc = {
      type: 'x',
      description: 'x',
      sentence: 'x',
      schema: {
        type: 'object',
        properties: {
          type: { const: 'x' },
          limit: { type: 'integer' },
          nested: { type: 'object', properties: { a: { type: 'string' } } },
        },
      },
      attenuation: { '/limit': 'max', '/other': 'equal' },
    };
    expect(() => compileDetailType('x.json', doc)).toThrow(DetailTypeError);
    expect(() => compileDetailType('x.json', doc)).toThrow(
      'x.json: /attenuation: the field /nested/a has no attenuation rule',
    );
    expect(() => compileDetailType('x.json', doc)).toThrow(
      'x.json: /attenuation~1other: the schema declares no field /other',
    );
  });

  it.each([
    ['not JSON', '[', 'authorization_details is not valid JSON'],
    ['not an array', '{}', 'authorization_details must be a JSON array'],
    ['an entry that is not an object', '[1]', 'authorization_details[0] must be an object'],
    ['an unknown type', '[{"type":"crypto_swap"}]', 'authorization_details[0] has unknown type "crypto_swap"'],
    [
      'a schema failure, with its pointer',
      '[{"type":"payment_initiation","actions":["initiate"],"instructedAmount":{"currency":"EUR","amount":100}}]',
      'authorization_details[0] /instructedAmount/amount: Instance type "number" is invalid. Expected "string".',
    ],
    [
      'a missing member',
      '[{"type":"tool_invocation","tool":"search"}]',
      'authorization_details[0] /: Instance does not have required property "actions".',
    ],
    [
      'an undeclared member',
      '[{"type":"tool_invocation","tool":"search","actions":["q"],"colour":"red"}]',
      'authorization_details[0] /colour: is not a member this type declares',
    ],
    [
      'too many entries',
      JSON.stringify(Array.from({ length: 3 }, () => ({ type: 'tool_invocation', tool: 't', actions: ['a'] }))),
      'authorization_details has more than 2 entries',
    ],
  ])('refuses %s with invalid_authorization_details', (_name, raw, description) => {
    expect(refusal(() => parseAuthorizationDetails(raw, types, 2))).toBe(
      `invalid_authorization_details: ${description}`,
    );
  });

  it('says each entry in plain words', () => {
    const payment: AuthorizationDetail = {
      type: 'payment_initiation',
      actions: ['initiate'],
      instructedAmount: { currency: 'EUR', amount: '100.00' },
      creditorAccount: { iban: 'DE89370400440532013000' },
    };
    expect(describeDetail(types, payment)).toBe('transfer up to 100.00 EUR to account DE89370400440532013000');
    expect(describeDetail(types, { ...payment, actions: ['initiate', 'status'], creditorName: 'Merchant A' })).toBe(
      'transfer and check the status of payments up to 100.00 EUR to account DE89370400440532013000 (Merchant A)',
    );
    expect(
      describeDetail(types, { type: 'tool_invocation', tool: 'calendar', actions: ['read', 'list'], max_calls: 5 }),
    ).toBe('use the tool calendar to read and list, at most 5 times');
  });

  it.each([
    [
      'de',
      'überweisen und den Status von Zahlungen abfragen bis zu 100.00 EUR an das Konto DE89370400440532013000 (Merchant A)',
      'das Werkzeug calendar verwenden für read und list, höchstens 5-mal',
    ],
    [
      'fr',
      'virer et consulter l’état des paiements jusqu’à 100.00 EUR vers le compte DE89370400440532013000 (Merchant A)',
      'utiliser l’outil calendar pour read et list, au plus 5 fois',
    ],
    [
      'ja',
      'transfer and check the status of payments up to 100.00 EUR to account DE89370400440532013000 (Merchant A)',
      'use the tool calendar to read and list, at most 5 times',
    ],
    [
      'constructor',
      'transfer and check the status of payments up to 100.00 EUR to account DE89370400440532013000 (Merchant A)',
      'use the tool calendar to read and list, at most 5 times',
    ],
  ])('says each entry in %s when the type has it, in English otherwise', (language, payment, tool) => {
    const entry: AuthorizationDetail = {
      type: 'payment_initiation',
      actions: ['initiate', 'status'],
      instructedAmount: { currency: 'EUR', amount: '100.00' },
      creditorAccount: { iban: 'DE89370400440532013000' },
      creditorName: 'Merchant A',
    };
    expect(describeDetail(types, entry, language)).toBe(payment);
    expect(
      describeDetail(
        types,
        { type: 'tool_invocation', tool: 'calendar', actions: ['read', 'list'], max_calls: 5 },
        language,
      ),
    ).toBe(tool);
  });
});

const currency = fc.constantFrom('EUR', 'USD');
const amount = fc
  .integer({ min: 0, max: 20000 })
  .map((cents) => `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`);
const actions = fc.subarray(['initiate', 'status', 'cancel'], { minLength: 1 });
const iban = fc.option(fc.constantFrom('DE89370400440532013000', 'FR1420041010050500013M02606'), { nil: undefined });
const payment = fc
  .record({ currency, amount, actions, iban })
  .map(({ currency, amount, actions, iban }): AuthorizationDetail => ({
    type: 'payment_initiation',
    actions,
    instructedAmount: { currency, amount },
    ...(iban === undefined ? {} : { creditorAccount: { iban } }),
  }));

/** The coverage rule, written out independently of the engine. */
function covered(parent: AuthorizationDetail, child: AuthorizationDetail): boolean {
  const p = parent as unknown as {
    actions: string[];
    instructedAmount: { currency: string; amount: string };
    creditorAccount?: { iban: string };
  };
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
        if (outcome === 'accepted')
          expect(
            covered(
              parent,
              attenuateAuthorizationDetails(types, [child], [parent], 'the subject token')[0] as AuthorizationDetail,
            ),
          ).toBe(true);
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
    const parent: AuthorizationDetail = {
      type: 'payment_initiation',
      actions: ['initiate'],
      instructedAmount: { currency: 'EUR', amount: '100.00' },
      creditorAccount: { iban: 'DE89370400440532013000' },
    };
    expect(
      refusal(() =>
        attenuateAuthorizationDetails(
          types,
          [{ ...parent, instructedAmount: { currency: 'EUR', amount: '100.01' } }],
          [parent],
          'the subject token',
        ),
      ),
    ).toBe(
      'invalid_authorization_details: authorization_details[0] is not covered by the subject token: /instructedAmount/amount exceeds the granted "100.00"',
    );
    const widened: AuthorizationDetail = {
      type: 'payment_initiation',
      actions: ['initiate'],
      instructedAmount: { currency: 'EUR', amount: '100.00' },
    };
    expect(refusal(() => attenuateAuthorizationDetails(types, [widened], [parent], 'the subject token'))).toBe(
      'invalid_authorization_details: authorization_details[0] is not covered by the subject token: /creditorAccount/iban is missing, but the grant restricts it',
    );
  });
});

describe('matching a decision to a held entry', () => {
  const grant: AuthorizationDetail = {
    type: 'payment_initiation',
    actions: ['initiate'],
    instructedAmount: { currency: 'EUR', amount: '100.00' },
  };
  it.each([
    [{ amount: 100, currency: 'EUR' }, true, undefined],
    [{ amount: '99.99', currency: 'EUR' }, true, undefined],
    [
      { amount: 100.01, currency: 'EUR' },
      false,
      'payment_initiation /instructedAmount/amount exceeds the granted "100.00"',
    ],
    [
      { amount: 50, currency: 'USD' },
      false,
      'payment_initiation /instructedAmount/currency must equal the granted value',
    ],
    [{ currency: 'EUR' }, false, 'payment_initiation /instructedAmount/amount is missing, but the grant restricts it'],
  ])('%j', (context, ok, reason) => {
    const match = matchDecision(readGovernedContext(types, 'payments:transfer', context), [grant]);
    expect(match).toEqual({ applies: true, entry: ok ? grant : undefined, reason });
  });

  it('does not apply to ungoverned actions or tokens without details', () => {
    expect(matchDecision(readGovernedContext(types, 'payments:read', {}), [grant])).toEqual({ applies: false });
    expect(matchDecision(readGovernedContext(types, 'payments:transfer', { amount: 5 }), [])).toEqual({
      applies: false,
    });
  });
});

describe('amounts: the schema decides before any rule', () => {
  const outside = (member: string, where: string, message: string) =>
    `invalid_request: context.${member} is outside the payment_initiation schema at ${where}: ${message}`;
  const pattern = 'String does not match pattern.';
  const amountPattern = outside('amount', '/instructedAmount/amount', pattern);
  const asked = (amount: unknown, currency: unknown = 'EUR') => {
    let governed: GovernedContext[] = [];
    const outcome = refusal(() => (governed = readGovernedContext(types, 'payments:transfer', { amount, currency })));
    return outcome === 'accepted' ? (governed[0]?.asked as { instructedAmount: unknown }).instructedAmount : outcome;
  };

  it.each([
    ['a JSON number', 50, 'EUR', { amount: '50', currency: 'EUR' }],
    ['decimal text', '50.5', 'EUR', { amount: '50.5', currency: 'EUR' }],
    ['zero (the policies decide that it is no transfer)', 0, 'EUR', { amount: '0', currency: 'EUR' }],
    ['-0 as a JSON number, which is zero', -0, 'EUR', { amount: '0', currency: 'EUR' }],
    ['1e2 as a JSON number, which is 100', JSON.parse('1e2') as number, 'EUR', { amount: '100', currency: 'EUR' }],
    ['whole yen', '10', 'JPY', { amount: '10', currency: 'JPY' }],
    ['three decimals of dinar', '10.001', 'KWD', { amount: '10.001', currency: 'KWD' }],
    ['four decimals of unidad de fomento', '10.0001', 'CLF', { amount: '10.0001', currency: 'CLF' }],
  ])('reads %s', (_name, amount, currency, expected) => {
    expect(asked(amount, currency)).toEqual(expected);
  });

  it.each([
    ['a negative number', -5, amountPattern],
    ['negative text', '-5', amountPattern],
    ['-0 as text', '-0', amountPattern],
    ['exponent text', '1e2', amountPattern],
    ['a small exponent number (1E-7)', JSON.parse('1E-7') as number, amountPattern],
    ['1e400, which JSON reads as Infinity', JSON.parse('1e400') as number, amountPattern],
    ['1e308', 1e308, amountPattern],
    ['a number beyond Number.MAX_SAFE_INTEGER', JSON.parse('9007199254740993') as number, amountPattern],
    ['text with more than twelve digits', '99999999999999999999', amountPattern],
    ['NaN as text', 'NaN', amountPattern],
    ['Infinity as text', 'Infinity', amountPattern],
    ['more decimals than the euro has', '10.001', amountPattern],
    ['a number with more decimals than the euro has', 10.001, amountPattern],
    ['decimals of yen', ['10.5', 'JPY'], amountPattern],
    ['a fourth decimal of dinar', ['10.0001', 'KWD'], amountPattern],
    [
      'a boolean',
      true,
      outside('amount', '/instructedAmount/amount', 'Instance type "boolean" is invalid. Expected "string".'),
    ],
    [
      'an object',
      { value: 5 },
      outside('amount', '/instructedAmount/amount', 'Instance type "object" is invalid. Expected "string".'),
    ],
  ])('refuses %s', (_name, amount, description) => {
    expect(Array.isArray(amount) ? asked(amount[0], amount[1]) : asked(amount)).toBe(description);
  });

  it('names the member for other fields too', () => {
    expect(asked('5.00', 'eur')).toBe(outside('currency', '/instructedAmount/currency', pattern));
  });

  it('makes max and min rules compare only values their schema accepts', () => {
    const parent: AuthorizationDetail = {
      type: 'payment_initiation',
      actions: ['initiate'],
      instructedAmount: { currency: 'EUR', amount: '100.00' },
    };
    const child = (amount: string): AuthorizationDetail => ({
      ...parent,
      instructedAmount: { currency: 'EUR', amount },
    });
    expect(refusal(() => attenuateAuthorizationDetails(types, [child('-5')], [parent], 'the subject token'))).toBe(
      'invalid_authorization_details: authorization_details[0] is not covered by the subject token: /instructedAmount/amount is outside the schema: String does not match pattern.',
    );
    expect(
      refusal(() => attenuateAuthorizationDetails(types, [child('1.00')], [child('-5')], 'the subject token')),
    ).toBe(
      'invalid_authorization_details: authorization_details[0] is not covered by the subject token: /instructedAmount/amount cannot be compared: the granted "-5" is outside the schema',
    );
    const tools: AuthorizationDetail = { type: 'tool_invocation', tool: 'search', actions: ['query'], max_calls: 5 };
    expect(
      refusal(() => attenuateAuthorizationDetails(types, [{ ...tools, max_calls: -1 }], [tools], 'the subject token')),
    ).toBe(
      'invalid_authorization_details: authorization_details[0] is not covered by the subject token: /max_calls is outside the schema: -1 is less than 1.',
    );
  });

  it('holds a min rule to its schema too', () => {
    const floor = compileDetailType('floor.json', {
      type: 'floor',
      description: 'x',
      sentence: 'x',
      schema: { type: 'object', properties: { type: { const: 'floor' }, level: { type: 'integer', minimum: 0 } } },
      attenuation: { '/level': 'min' },
    });
    const held = new Map([['floor', floor]]);
    const attenuate = (child: number, parent: unknown) =>
      refusal(() =>
        attenuateAuthorizationDetails(
          held,
          [{ type: 'floor', level: child }],
          [{ type: 'floor', level: parent }],
          'the subject token',
        ),
      );
    expect(attenuate(12, 10)).toBe('accepted');
    expect(attenuate(5, 10)).toBe(
      'invalid_authorization_details: authorization_details[0] is not covered by the subject token: /level is below the granted 10',
    );
    expect(attenuate(-1, -5)).toBe(
      'invalid_authorization_details: authorization_details[0] is not covered by the subject token: /level is outside the schema: -1 is less than 0.',
    );
    expect(attenuate(3, Number.POSITIVE_INFINITY)).toBe(
      'invalid_authorization_details: authorization_details[0] is not covered by the subject token: /level cannot be compared with the granted Infinity',
    );
  });

  it('remembers checked contexts without mistaking 1e400 (Infinity) for null', () => {
    const meter = compileDetailType('meter.json', {
      type: 'meter',
      description: 'x',
      sentence: 'x',
      schema: { type: 'object', properties: { type: { const: 'meter' }, reading: { type: 'number' } } },
      attenuation: { '/reading': 'max' },
      decisions: { 'meter:read': { context: { '/reading': 'reading' } } },
    });
    const meters = new Map([['meter', meter]]);
    const read = (reading: unknown) => refusal(() => readGovernedContext(meters, 'meter:read', { reading }));
    for (let i = 0; i < 2; i++) {
      expect(read(JSON.parse('1e400'))).toBe('accepted');
      expect(read(null)).toBe(
        'invalid_request: context.reading is outside the meter schema at /reading: Instance type "null" is invalid. Expected "number".',
      );
      expect(read(5)).toBe('accepted');
    }
  });

  it('refuses a held entry outside its schema', () => {
    const held: AuthorizationDetail = {
      type: 'payment_initiation',
      actions: ['initiate'],
      instructedAmount: { currency: 'EUR', amount: '-5' },
    };
    expect(refusal(() => checkHeldDetails(types, [held], 'subject_token'))).toBe(
      "invalid_request: subject_token has an authorization_details[0] outside its type's schema: /instructedAmount/amount: String does not match pattern.",
    );
    expect(refusal(() => checkHeldDetails(types, [{ type: 'unknown_type', anything: -5 }], 'subject_token'))).toBe(
      'accepted',
    );
  });

  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'])(
    'takes the action %s as an ordinary ungoverned action',
    (action) => {
      const held: AuthorizationDetail = {
        type: 'payment_initiation',
        actions: ['initiate'],
        instructedAmount: { currency: 'EUR', amount: '100.00' },
      };
      expect(readGovernedContext(types, action, { amount: 5, currency: 'EUR' })).toEqual([]);
      expect(matchDecision(readGovernedContext(types, action, { amount: 5, currency: 'EUR' }), [held])).toEqual({
        applies: false,
      });
    },
  );
});

describe('plain words for values that are JavaScript object keys', () => {
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])(
    'shows an action %s as itself, not as a label',
    (action) => {
      expect(
        describeDetail(types, {
          type: 'payment_initiation',
          actions: [action, 'initiate'],
          instructedAmount: { currency: 'EUR', amount: '5' },
        }),
      ).toBe(`${action} and transfer up to 5 EUR`);
    },
  );
});
