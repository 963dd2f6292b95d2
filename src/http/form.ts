import { echo, invalidRequest } from '../core/errors.js';
import type { FormParams } from '../core/token-request.js';

/**
 * Parses an `application/x-www-form-urlencoded` body, refusing repeated parameters
 * except the repeatable ones (RFC 6749 §3.2: parameters must not be included more than once).
 */
export function parseForm(body: string, repeatable: ReadonlySet<string>): FormParams {
  const params: FormParams = {};
  for (const [name, value] of new URLSearchParams(body)) {
    const existing = params[name];
    if (repeatable.has(name)) {
      params[name] = Array.isArray(existing) ? [...existing, value] : [value];
    } else if (existing !== undefined) {
      throw invalidRequest(`parameter ${echo(name)} is repeated`);
    } else {
      params[name] = value;
    }
  }
  return params;
}
