import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { OAuthError } from '../../src/core/errors.js';
import {
  assertStorableText,
  describePath,
  findUnstorableText,
  storable,
  textProblem,
} from '../../src/core/input/storable-text.js';

describe('text PostgreSQL and Cedar cannot hold', () => {
  it.each([
    ['plain ASCII', 'alice', undefined],
    ['non-ASCII text', 'Zoë 東京', undefined],
    ['a surrogate pair (an emoji)', '\uD83D\uDE80 launch', undefined],
    ['control characters other than NUL', 'tab\tnew\nline\u0001', undefined],
    ['a NUL', 'al\u0000ice', 'a NUL character'],
    ['a NUL alone', '\u0000', 'a NUL character'],
    ['a lone high surrogate', 'a\uD800b', 'an unpaired UTF-16 surrogate'],
    ['a lone high surrogate at the end', 'ab\uDBFF', 'an unpaired UTF-16 surrogate'],
    ['a lone low surrogate', '\uDC00ab', 'an unpaired UTF-16 surrogate'],
    ['a pair in the wrong order', '\uDE80\uD83D', 'an unpaired UTF-16 surrogate'],
    ['a pair followed by a lone high surrogate', '\uD83D\uDE80\uD83D', 'an unpaired UTF-16 surrogate'],
  ])('%s', (_name, text, problem) => {
    expect(textProblem(text)).toBe(problem);
  });

  it.each([
    ['a string', 'x\u0000', { path: [], problem: 'contains a NUL character' }],
    [
      'a member',
      { a: 'ok', b: { c: 'x\uD800' } },
      { path: ['b', 'c'], problem: 'contains an unpaired UTF-16 surrogate' },
    ],
    ['an item', { list: ['ok', 'also ok', '\u0000'] }, { path: ['list', 2], problem: 'contains a NUL character' }],
    [
      'a member name',
      { outer: { 'na\u0000me': 1 } },
      { path: ['outer'], problem: 'has a member name with a NUL character' },
    ],
    [
      'the first of two, in document order',
      { a: ['x\u0000'], b: '\uD800' },
      { path: ['a', 0], problem: 'contains a NUL character' },
    ],
    ['nothing wrong, numbers and nulls included', { a: [1, null, true, { b: 'Zoë' }] }, undefined],
  ])('finds %s', (_name, value, found) => {
    expect(findUnstorableText(value)).toEqual(found);
  });

  it('walks a value nested far deeper than the call stack allows', () => {
    let deep: unknown = 'x\u0000';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(findUnstorableText(deep)?.path).toHaveLength(200_000);
  });

  it('names a place without repeating a member name that is not short printable ASCII', () => {
    expect(describePath(['resource', 'properties', 'note'])).toBe('resource.properties.note');
    expect(describePath(['act', 'sub'], 'subject_token')).toBe('subject_token.act.sub');
    expect(describePath(['context', 'line\nbreak', 0, 'x'.repeat(65)])).toBe('context.(member).0.(member)');
  });

  it('refuses with the error code asked for, naming the place', () => {
    const refusal = (fn: () => void) => {
      try {
        fn();
      } catch (error) {
        if (error instanceof OAuthError) return error.toJSON();
        throw error;
      }
      return 'accepted';
    };
    expect(refusal(() => assertStorableText({ user: 'a\u0000' }, ''))).toEqual({
      error: 'invalid_request',
      error_description: 'user contains a NUL character',
    });
    expect(refusal(() => assertStorableText({ sub: '\uDC00' }, 'token', 'invalid_client'))).toEqual({
      error: 'invalid_client',
      error_description: 'token.sub contains an unpaired UTF-16 surrogate',
    });
    expect(refusal(() => assertStorableText({ user: 'alice' }, ''))).toBe('accepted');
  });

  it('adds an issue at the path to a zod schema, after its own checks', () => {
    const schema = storable(z.object({ id: z.string(), properties: z.record(z.string(), z.unknown()).optional() }));
    expect(schema.safeParse({ id: 'a', properties: { note: ['ok', 'x\u0000'] } }).error?.issues).toEqual([
      { code: 'custom', path: ['properties', 'note', 1], message: 'contains a NUL character' },
    ]);
    expect(schema.safeParse({ id: 5, properties: { note: 'x\u0000' } }).error?.issues.map((i) => i.code)).toEqual([
      'invalid_type',
    ]);
    expect(schema.safeParse({ id: '\uD83D\uDE80', ignored: '\u0000' }).data).toEqual({ id: '\uD83D\uDE80' });
  });
});
