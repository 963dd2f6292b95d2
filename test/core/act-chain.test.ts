import { describe, expect, it } from 'vitest';
import type { ActClaim } from '../../src/core/ports.js';
import { delegate, parseActClaim } from '../../src/core/tokens/act-chain.js';
import { refusalOf } from '../support/refusal.js';

const nested = (...subs: string[]): ActClaim | undefined =>
  subs.reduceRight<ActClaim | undefined>((act, sub) => (act === undefined ? { sub } : { sub, act }), undefined);

describe('parseActClaim', () => {
  it.each([
    ['no act claim', undefined, []],
    ['one actor', { sub: 'orchestrator' }, ['orchestrator']],
    ['an actor with its issuer', { sub: 'orchestrator', iss: 'https://baton.example' }, ['orchestrator']],
    [
      'a chain, current actor first',
      nested('payments-subagent', 'orchestrator'),
      ['payments-subagent', 'orchestrator'],
    ],
    ['a chain exactly as deep as allowed', nested('a', 'b', 'c'), ['a', 'b', 'c']],
  ])('reads %s', (_name, act, chain) => {
    expect(parseActClaim(act, 'subject_token', 3)).toEqual({ act, chain });
  });

  it.each([
    ['a string', 'orchestrator', 'subject_token has a malformed act claim'],
    ['null', null, 'subject_token has a malformed act claim'],
    ['an array', [{ sub: 'orchestrator' }], 'subject_token has a malformed act claim'],
    ['a numeric issuer', { sub: 'orchestrator', iss: 5 }, 'subject_token has a malformed act claim'],
    ['a nested act that is a string', { sub: 'orchestrator', act: 'x' }, 'subject_token has a malformed act claim'],
    ['no subject', { iss: 'https://baton.example' }, 'subject_token has an act claim without a subject'],
    ['an empty subject', { sub: '' }, 'subject_token has an act claim without a subject'],
    ['an object subject', { sub: { id: 'orchestrator' } }, 'subject_token has an act claim without a subject'],
    [
      'a nested actor without a subject',
      { sub: 'a', act: { sub: 5 } },
      'subject_token has an act claim without a subject',
    ],
    ['a chain deeper than allowed', nested('a', 'b', 'c', 'd'), 'subject_token has an act claim nested deeper than 3'],
  ])('refuses %s', async (_name, act, description) => {
    expect(await refusalOf(() => parseActClaim(act, 'subject_token', 3))).toEqual({
      code: 'invalid_request',
      description,
    });
  });

  it('refuses a chain deeper than allowed before walking the rest of it', async () => {
    const deep = { sub: 'a', act: { sub: 'b', act: 'not even an object' } };
    expect(await refusalOf(() => parseActClaim(deep, 'token', 2))).toEqual({
      code: 'invalid_request',
      description: 'token has an act claim nested deeper than 2',
    });
  });

  it('refuses with the error code it is given', async () => {
    expect(await refusalOf(() => parseActClaim('x', 'actor_token', 4, 'invalid_grant'))).toEqual({
      code: 'invalid_grant',
      description: 'actor_token has a malformed act claim',
    });
  });
});

describe('delegate', () => {
  it.each([
    [
      'a token without actor: the first hop',
      'orchestrator',
      undefined,
      { act: { sub: 'orchestrator' }, chain: ['orchestrator'], newHop: true },
    ],
    [
      'another actor: a hop in front of the chain',
      'payments-subagent',
      nested('orchestrator'),
      { act: nested('payments-subagent', 'orchestrator'), chain: ['payments-subagent', 'orchestrator'], newHop: true },
    ],
    [
      'the current actor: no new hop',
      'orchestrator',
      nested('orchestrator'),
      { act: nested('orchestrator'), chain: ['orchestrator'], newHop: false },
    ],
    [
      'an earlier actor: a new hop (refused elsewhere, as shortening the chain)',
      'orchestrator',
      nested('payments-subagent', 'orchestrator'),
      {
        act: nested('orchestrator', 'payments-subagent', 'orchestrator'),
        chain: ['orchestrator', 'payments-subagent', 'orchestrator'],
        newHop: true,
      },
    ],
  ])('from %s', (_name, actor, prior, expected) => {
    expect(delegate(actor, parseActClaim(prior, 'subject_token', 16))).toEqual(expected);
  });
});
