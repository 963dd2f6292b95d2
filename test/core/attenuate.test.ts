import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileRegistry } from '../../src/core/registry/compile.js';
import type { Registry } from '../../src/core/registry/registry.js';
import {
  attenuateAudience,
  attenuateScope,
  audienceScopes,
  resolveTargets,
  scopeClaim,
  scopeTokens,
} from '../../src/core/tokens/attenuate.js';
import { refusalOf } from '../support/refusal.js';

let registry: Registry;
beforeAll(async () => {
  registry = await compileRegistry(JSON.parse(readFileSync('policies/registry.json', 'utf8')), {
    issuer: 'https://baton.example',
    file: 'policies/registry.json',
  });
});

const payments = 'https://payments.example';
const calendar = 'https://calendar.example';

describe('scope strings and claims', () => {
  it.each([
    [undefined, []],
    ['', []],
    ['payments:read', ['payments:read']],
    ['payments:read payments:transfer payments:read', ['payments:read', 'payments:transfer']],
  ])('splits %j into its tokens, once each', (scope, tokens) => {
    expect(scopeTokens(scope)).toEqual(tokens);
  });

  it.each([
    [
      'a scope string, its spaces tidied',
      { scope: ' payments:read \t payments:transfer ' },
      ['payments:read', 'payments:transfer'],
    ],
    [
      'an scp list, its strings only',
      { scp: ['payments:read', 7, 'payments:transfer'] },
      ['payments:read', 'payments:transfer'],
    ],
    ['scope before scp', { scope: 'calendar:read', scp: ['payments:read'] }, ['calendar:read']],
    ['scp when scope is not a string', { scope: ['calendar:read'], scp: ['payments:read'] }, ['payments:read']],
    ['neither', { sub: 'alice' }, []],
  ])('reads %s', (_name, payload, scope) => {
    expect(scopeClaim(payload)).toEqual(scope);
  });
});

describe('attenuateScope', () => {
  const client: readonly [string, ReadonlySet<string>] = [
    'what this client may request',
    new Set(['payments:read', 'payments:transfer', 'calendar:read']),
  ];
  const subject: readonly [string, ReadonlySet<string>] = [
    "the subject token's scope",
    new Set(['payments:transfer', 'payments:read']),
  ];
  const unbounded: readonly [string, undefined] = ['what the audience offers', undefined];

  it.each([
    [
      "nothing asked: what every bound allows, in the first bound's order",
      undefined,
      [client, subject, unbounded],
      ['payments:read', 'payments:transfer'],
    ],
    ['nothing asked and no bound', undefined, [unbounded], []],
    ['what every bound allows', 'payments:transfer', [client, subject, unbounded], ['payments:transfer']],
    ['a token asked twice, once', 'payments:read payments:read', [client, subject], ['payments:read']],
    ['anything, with no bound', 'anything', [unbounded], ['anything']],
  ])('grants %s', (_name, requested, bounds, granted) => {
    expect(attenuateScope(requested, bounds)).toEqual(granted);
  });

  it.each([
    [
      'a token beyond the first bound it exceeds',
      'payments:read admin',
      [client, subject],
      'scope "admin" exceeds what this client may request',
    ],
    [
      'a token only a later bound refuses',
      'calendar:read',
      [client, subject],
      'scope "calendar:read" exceeds the subject token\'s scope',
    ],
    [
      'a token with a control character, shown safely',
      'payments:read x\u0007y',
      [client],
      'scope "x\uFFFDy" exceeds what this client may request',
    ],
    [
      'a long token, cut',
      `${'s'.repeat(100)}`,
      [client],
      `scope "${'s'.repeat(64)}…" exceeds what this client may request`,
    ],
  ])('refuses %s', async (_name, requested, bounds, description) => {
    expect(await refusalOf(() => attenuateScope(requested, bounds))).toEqual({ code: 'invalid_scope', description });
  });
});

describe('resolveTargets', () => {
  it.each([
    ['a resource server by id', ['payments'], [], [payments]],
    ['a resource server by audience URI', [calendar], [], [calendar]],
    ['a resource (RFC 8707) by URI', [], [payments], [payments]],
    ['the same server named three ways, once', ['payments', payments], [payments], [payments]],
    ['nothing', [], [], []],
  ])('resolves %s', (_name, audience, resource, targets) => {
    expect(resolveTargets(registry, 'acme', audience, resource)).toEqual(targets);
  });

  it.each([
    ['an unknown audience', ['nowhere'], [], 'audience "nowhere" is not a known resource server'],
    ["another tenant's resource server", ['ledger'], [], 'audience "ledger" is not a known resource server'],
    ['a resource given by id rather than URI', [], ['payments'], 'resource "payments" is not a known resource server'],
    [
      'an unknown resource',
      [],
      ['https://unknown.example/api'],
      'resource "https://unknown.example/api" is not a known resource server',
    ],
    ['a name every object has', ['constructor'], [], 'audience "constructor" is not a known resource server'],
  ])('refuses %s', async (_name, audience, resource, description) => {
    expect(await refusalOf(() => resolveTargets(registry, 'acme', audience, resource))).toEqual({
      code: 'invalid_target',
      description,
    });
  });
});

describe('audienceScopes', () => {
  it.each([
    ['one resource server: its scopes', [payments], new Set(['payments:read', 'payments:transfer'])],
    ['two: the scopes of both', [payments, calendar], new Set(['payments:read', 'payments:transfer', 'calendar:read'])],
    ['Baton itself, which declares none: no bound', ['https://baton.example'], undefined],
    ['a server and Baton: no bound', [payments, 'https://baton.example'], undefined],
  ])('are %s', (_name, audience, scopes) => {
    expect(audienceScopes(registry, audience)).toEqual(scopes);
  });
});

describe('attenuateAudience', () => {
  it("keeps targets within the subject token's audience", () => {
    expect(attenuateAudience([payments], [payments, calendar])).toEqual([payments]);
  });

  it('refuses a target beyond it', async () => {
    expect(await refusalOf(() => attenuateAudience([payments, calendar], [payments]))).toEqual({
      code: 'invalid_target',
      description: `audience "${calendar}" is not within the subject token's audience`,
    });
  });
});
