import type { Context } from 'hono';
import { invalidRequest } from '../core/errors.js';
import { jsonNestingDepth, maxJsonDepth } from '../core/input/json-depth.js';

/** Reads a JSON object body, refusing other content types, empty bodies, nesting too deep and malformed JSON. */
export function readJsonBody(c: Context, text: string): unknown {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json(;|$)/i.test(type.trim())) throw invalidRequest('content type must be application/json');
  if (text.trim() === '') throw invalidRequest('request body is empty');
  if (jsonNestingDepth(text) > maxJsonDepth)
    throw invalidRequest(`request body nests deeper than ${maxJsonDepth} levels`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw invalidRequest('request body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalidRequest('request body must be a JSON object');
  return body;
}
