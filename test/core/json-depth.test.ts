import { describe, expect, it } from 'vitest';
import { jsonNestingDepth, maxJsonDepth } from '../../src/core/input/json-depth.js';

const nested = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;

describe('jsonNestingDepth', () => {
  it.each([
    ['a scalar', '1', 0],
    ['an empty object', '{}', 1],
    ['an object in an array', '[{"a":1}]', 2],
    ['brackets inside strings', '{"a":"[[[{{{"}', 1],
    ['an escaped quote inside a string', '{"a":"\\"[[["}', 1],
    ['an escaped backslash before the closing quote', '{"a":"\\\\","b":[[1]]}', 3],
    ['siblings', '[[1],[[2]],[3]]', 3],
    ['the limit', nested(maxJsonDepth), maxJsonDepth],
    ['one past the limit', nested(maxJsonDepth + 1), maxJsonDepth + 1],
  ])('%s', (_name, text, depth) => {
    expect(jsonNestingDepth(text)).toBe(depth);
  });
});
