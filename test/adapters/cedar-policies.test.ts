import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCedarPolicySet, PolicySetError } from '../../src/adapters/cedar/cedar-engine.js';
import type { PolicyRequest } from '../../src/core/ports.js';
import { readPolicyFolder } from '../../src/node/files.js';

/** Runs every request file of `<dir>/tests/ALLOW` and `<dir>/tests/DENY` (the cedar-examples shape). */
export function policyCases(dir: string): [string, boolean, PolicyRequest & { description: string }][] {
  return (['ALLOW', 'DENY'] as const).flatMap((outcome) =>
    readdirSync(join(dir, 'tests', outcome))
      .filter((f) => f.endsWith('.json'))
      .map((f): [string, boolean, PolicyRequest & { description: string }] => [
        `${outcome}/${f}`,
        outcome === 'ALLOW',
        JSON.parse(readFileSync(join(dir, 'tests', outcome, f), 'utf8')),
      ]),
  );
}

const engine = loadCedarPolicySet(cedar, readPolicyFolder('policies'));

describe('shipped policies', () => {
  it('are validated in strict mode and keep their @id', () => {
    expect(engine.policyIds).toEqual([
      'delegate-within-tenant',
      'max-chain-depth',
      'transfer-up-to-100',
      'transfer-in-account-currency',
      'read-payments',
      'read-calendar',
    ]);
  });

  it.each(policyCases('policies'))('%s', (_file, allowed, request) => {
    const decision = engine.evaluate(request);
    expect(decision.allowed, `${request.description}: ${JSON.stringify(decision)}`).toBe(allowed);
  });

  it('names the deciding policies', () => {
    const [, , request] = policyCases('policies').find(([f]) => f === 'ALLOW/transfer-100.json') ?? [];
    expect(engine.evaluate(request as PolicyRequest)).toEqual({
      allowed: true,
      reasons: ['transfer-up-to-100'],
      errors: [],
    });
  });
});

describe('loading a policy set', () => {
  const schema = {
    file: 'p/s.cedarschema',
    content: 'entity User;\naction view appliesTo { principal: [User], resource: [User], context: { n?: Long } };\n',
  };
  const load = (text: string) => () =>
    loadCedarPolicySet(cedar, { schema, policies: [{ file: 'p/a.cedar', content: text }] });
  const problems = (text: string): string => {
    try {
      load(text)();
    } catch (error) {
      if (error instanceof PolicySetError) return error.message;
      throw error;
    }
    throw new Error('accepted');
  };

  it('refuses a syntax error with file, line and message', () => {
    expect(problems('permit (principal, action, resource);\n\npermit (principal, action resource);\n')).toBe(
      'invalid policy set:\n  p/a.cedar:3: unexpected token `resource` (expected `!=`, `)`, `,`, `:`, `<`, `<=`, `==`, `>`, `>=`, `in`, or `is`)',
    );
  });

  it('refuses a policy that strict validation rejects, at its line', () => {
    expect(
      problems(
        '// comment\n@id("p1")\npermit (principal, action == Action::"view", resource)\nwhen { context.n > 1 };\n',
      ),
    ).toMatch(/^invalid policy set:\n {2}p\/a\.cedar:4: .*attribute `n`/);
  });

  it('refuses duplicate ids and bad entity data', () => {
    expect(
      problems('@id("x") permit (principal, action, resource);\n@id("x") permit (principal, action, resource);'),
    ).toBe('invalid policy set:\n  p/a.cedar:2: duplicate policy id "x"');
    expect(() =>
      loadCedarPolicySet(cedar, {
        schema,
        policies: [{ file: 'p/a.cedar', content: 'permit (principal, action, resource);' }],
        entities: {
          file: 'p/entities.json',
          content: [{ uid: { type: 'User', id: 'u' }, attrs: { zzz: 1 }, parents: [] }],
        },
      }),
    ).toThrow(
      'p/entities.json: error during entity deserialization: attribute `zzz` on `User::"u"` should not exist according to the schema',
    );
  });

  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])(
    'loads a policy called %s like any other',
    (id) => {
      const engine = load(
        `@id("${id}") permit (principal, action, resource);\n@id("x") forbid (principal, action, resource) when { context has n && context.n == 1 };`,
      )();
      expect(engine.policyIds).toEqual([id, 'x']);
      const ask = (n: number) =>
        engine.evaluate({
          principal: { type: 'User', id: 'u' },
          action: 'view',
          resource: { type: 'User', id: 'r' },
          context: { n },
        });
      expect(ask(0)).toEqual({ allowed: true, reasons: [id], errors: [] });
      expect(ask(1)).toEqual({ allowed: false, reasons: ['x'], errors: [] });
    },
  );

  it('reads an attribute called __proto__ like any other', () => {
    const engine = loadCedarPolicySet(cedar, {
      schema: {
        file: 'p/s.cedarschema',
        content:
          'entity User { "__proto__"?: Long };\naction view appliesTo { principal: [User], resource: [User] };\n',
      },
      policies: [
        {
          file: 'p/a.cedar',
          content:
            '@id("proto") permit (principal, action, resource) when { principal has "__proto__" && principal["__proto__"] == 1 };',
        },
      ],
    });
    const ask = (value: unknown) =>
      engine.evaluate({
        principal: {
          type: 'User',
          id: 'u',
          attributes: JSON.parse(`{"__proto__": ${JSON.stringify(value)}}`) as Record<string, unknown>,
        },
        action: 'view',
        resource: { type: 'User', id: 'r' },
        context: {},
      });
    expect(ask(1)).toEqual({ allowed: true, reasons: ['proto'], errors: [] });
    expect(ask(2)).toEqual({ allowed: false, reasons: [], errors: [] });
  });

  it('refuses a folder without a schema', () => {
    expect(() => readPolicyFolder('test')).toThrow('test: must hold exactly one .cedarschema file (found 0)');
  });
});

describe('the AuthZEN certification example policies', () => {
  const example = 'policies/examples/authzen-certification';
  const certification = loadCedarPolicySet(cedar, readPolicyFolder(example));
  it.each(policyCases(example))('%s', (_file, allowed, request) => {
    expect(certification.evaluate(request).allowed, request.description).toBe(allowed);
  });
});

describe('evaluating a request', () => {
  const schema = {
    file: 'p/s.cedarschema',
    content: [
      'entity User { ip?: ipaddr, limit?: decimal };',
      'action readOnly;',
      'action view in [readOnly] appliesTo { principal: [User], resource: [User], context: { amount?: decimal } };',
      'action edit appliesTo { principal: [User], resource: [User], context: { amount?: decimal } };',
    ].join('\n'),
  };
  const engine = loadCedarPolicySet(cedar, {
    schema,
    policies: [
      {
        file: 'p/a.cedar',
        content: [
          '@id("read-only-group") permit (principal, action in Action::"readOnly", resource) when { principal has ip && principal.ip.isInRange(ip("10.0.0.0/8")) };',
          '@id("edit-under-limit") permit (principal, action == Action::"edit", resource) when { principal has limit && context has amount && context.amount.lessThanOrEqual(principal.limit) };',
        ].join('\n'),
      },
    ],
  });
  const ask = (action: string, attributes: Record<string, unknown>, context: Record<string, unknown> = {}) =>
    engine.evaluate({
      principal: { type: 'User', id: 'u', attributes },
      action,
      resource: { type: 'User', id: 'r' },
      context,
    });

  it('honours action groups from the schema', () => {
    expect(ask('view', { ip: '10.1.2.3' })).toEqual({ allowed: true, reasons: ['read-only-group'], errors: [] });
    expect(ask('edit', { ip: '10.1.2.3' })).toEqual({ allowed: false, reasons: [], errors: [] });
  });

  it('reads extension values as their declared types', () => {
    expect(ask('view', { ip: '192.168.0.1' })).toEqual({ allowed: false, reasons: [], errors: [] });
    expect(ask('edit', { limit: '100' }, { amount: 100 })).toEqual({
      allowed: true,
      reasons: ['edit-under-limit'],
      errors: [],
    });
    expect(ask('edit', { limit: 100 }, { amount: '100.01' })).toEqual({ allowed: false, reasons: [], errors: [] });
    // Not a decimal: left out, so the policy that needs it does not apply.
    expect(ask('edit', { limit: 'lots' }, { amount: 1 })).toEqual({ allowed: false, reasons: [], errors: [] });
  });

  it('denies, with the reason, a request Cedar cannot read (an unpaired surrogate), rather than failing', () => {
    expect(ask('view', { ip: '10.1.2.3' }, {})).toEqual({ allowed: true, reasons: ['read-only-group'], errors: [] });
    const unreadable = engine.evaluate({
      principal: { type: 'User', id: 'u\uD800', attributes: { ip: '10.1.2.3' } },
      action: 'view',
      resource: { type: 'User', id: 'r' },
      context: {},
    });
    expect(unreadable).toEqual({
      allowed: false,
      reasons: [],
      errors: [expect.stringMatching(/^the request could not be read: /)],
    });
  });

  it('sends the whole context to a policy that compares it as a record', () => {
    const whole = loadCedarPolicySet(cedar, {
      schema: {
        file: 'p/s.cedarschema',
        content:
          'entity User { name?: String };\naction view appliesTo { principal: [User], resource: [User], context: { a: Long, b: Long } };\n',
      },
      policies: [
        {
          file: 'p/a.cedar',
          content: '@id("exact") permit (principal, action, resource) when { context == { "a": 1, "b": 2 } };',
        },
      ],
    });
    const view = (context: Record<string, unknown>) =>
      whole.evaluate({
        principal: { type: 'User', id: 'u' },
        action: 'view',
        resource: { type: 'User', id: 'r' },
        context,
      });
    expect(view({ a: 1, b: 2 })).toEqual({ allowed: true, reasons: ['exact'], errors: [] });
    expect(view({ a: 1, b: 3 })).toEqual({ allowed: false, reasons: [], errors: [] });
  });

  it('sends what a policy open to every action reads, whichever action is asked', () => {
    const engine = loadCedarPolicySet(cedar, {
      schema: {
        file: 'p/s.cedarschema',
        content:
          'entity User { blocked?: Bool, level?: Long };\naction view, edit appliesTo { principal: [User], resource: [User], context: { n?: Long } };\n',
      },
      policies: [
        {
          file: 'p/a.cedar',
          content: [
            '@id("view-by-level") permit (principal, action == Action::"view", resource) when { principal has level && principal.level > 1 };',
            '@id("edit") permit (principal, action == Action::"edit", resource);',
            '@id("blocked") forbid (principal, action, resource) when { principal has blocked && principal.blocked };',
          ].join('\n'),
        },
      ],
    });
    const ask = (action: string, attributes: Record<string, unknown>) =>
      engine.evaluate({
        principal: { type: 'User', id: 'u', attributes },
        action,
        resource: { type: 'User', id: 'r' },
        context: {},
      });
    expect(ask('edit', { blocked: true, level: 5 })).toEqual({ allowed: false, reasons: ['blocked'], errors: [] });
    expect(ask('edit', { blocked: false })).toEqual({ allowed: true, reasons: ['edit'], errors: [] });
    expect(ask('view', { level: 2 })).toEqual({ allowed: true, reasons: ['view-by-level'], errors: [] });
    expect(ask('view', { level: 2, blocked: true })).toEqual({ allowed: false, reasons: ['blocked'], errors: [] });
  });

  it('sends the entities the context refers to, with what the policies read of them', () => {
    const engine = loadCedarPolicySet(cedar, {
      schema: {
        file: 'p/s.cedarschema',
        content:
          'entity Team;\nentity User in [Team] { level?: Long };\naction view appliesTo { principal: [User], resource: [User], context: { owner: User } };\n',
      },
      policies: [
        {
          file: 'p/a.cedar',
          content:
            '@id("senior-owner") permit (principal, action, resource) when { context.owner has level && context.owner.level > 1 && context.owner in Team::"ops" };',
        },
      ],
    });
    const ask = (level: number) =>
      engine.evaluate({
        principal: { type: 'User', id: 'u1' },
        action: 'view',
        resource: { type: 'User', id: 'r' },
        context: { owner: { __entity: { type: 'User', id: 'u2' } } },
        entities: [{ type: 'User', id: 'u2', attributes: { level }, parents: [{ type: 'Team', id: 'ops' }] }],
      });
    expect(ask(5)).toEqual({ allowed: true, reasons: ['senior-owner'], errors: [] });
    expect(ask(1)).toEqual({ allowed: false, reasons: [], errors: [] });
  });
});

describe('remembering decisions', () => {
  const schema = {
    file: 'p/s.cedarschema',
    content:
      'entity User { level?: Long };\naction view appliesTo { principal: [User], resource: [User], context: { n?: Long, note?: String } };\n',
  };
  const policies = [
    {
      file: 'p/a.cedar',
      content:
        '@id("level") permit (principal, action, resource) when { principal has level && context has n && principal.level > context.n && !(context has note && context.note == "stop") };',
    },
  ];
  /** A policy set over a cedar-wasm that counts the evaluations it is asked for. */
  const counted = () => {
    const calls = { count: 0 };
    const engine = loadCedarPolicySet(
      { ...cedar, statefulIsAuthorized: (call) => (calls.count++, cedar.statefulIsAuthorized(call)) },
      { schema, policies },
    );
    const ask = (level: number, n: number, note?: string) =>
      engine.evaluate({
        principal: { type: 'User', id: 'u', attributes: { level } },
        action: 'view',
        resource: { type: 'User', id: 'r' },
        context: { n, ...(note === undefined ? {} : { note }) },
      });
    return { calls, ask };
  };

  it('answers the same question again without evaluating it again', () => {
    const { calls, ask } = counted();
    expect(ask(5, 1)).toEqual({ allowed: true, reasons: ['level'], errors: [] });
    expect(ask(5, 1)).toEqual({ allowed: true, reasons: ['level'], errors: [] });
    expect(calls.count).toBe(1);
  });

  it('evaluates any question that differs in what Cedar is sent', () => {
    const { calls, ask } = counted();
    expect(ask(5, 1)).toEqual({ allowed: true, reasons: ['level'], errors: [] });
    expect(ask(5, 7)).toEqual({ allowed: false, reasons: [], errors: [] });
    expect(ask(9, 7)).toEqual({ allowed: true, reasons: ['level'], errors: [] });
    expect(calls.count).toBe(3);
  });

  it('keeps its memory per policy set: a reloaded set evaluates afresh', () => {
    const first = counted();
    const second = counted();
    first.ask(5, 1);
    expect(second.ask(5, 1)).toEqual({ allowed: true, reasons: ['level'], errors: [] });
    expect(second.calls.count).toBe(1);
  });

  it('does not keep a question longer than 4,096 characters of JSON', () => {
    const { calls, ask } = counted();
    const long = 'x'.repeat(5000);
    expect(ask(5, 1, long)).toEqual({ allowed: true, reasons: ['level'], errors: [] });
    expect(ask(5, 1, long)).toEqual({ allowed: true, reasons: ['level'], errors: [] });
    expect(calls.count).toBe(2);
  });

  it('holds at most 4,096 decisions, forgetting the oldest first', () => {
    const { calls, ask } = counted();
    for (let n = 0; n <= 4096; n++) ask(5000, n);
    expect(calls.count).toBe(4097);
    ask(5000, 4096);
    expect(calls.count).toBe(4097);
    ask(5000, 0);
    expect(calls.count).toBe(4098);
  });

  it('hands out decisions no caller can change', () => {
    const { ask } = counted();
    const decision = ask(5, 1);
    expect(() => (decision.reasons as string[]).push('forged')).toThrow(TypeError);
    expect(ask(5, 1)).toEqual({ allowed: true, reasons: ['level'], errors: [] });
  });
});
