import { echo, invalidRequest } from '../core/errors.js';
import { shownName, textProblem } from '../core/input/storable-text.js';
import type { FormParams } from '../core/grants/token-request.js';

/**
 * Parses an `application/x-www-form-urlencoded` body, refusing repeated parameters
 * except the repeatable ones (RFC 6749 §3.2: parameters must not be included more than once),
 * and any name or value holding text that cannot be stored (a NUL, sent as %00). The result has
 * no prototype, so a parameter named `constructor` or `__proto__` is a parameter like any other.
 */
export function parseForm(body: string, repeatable: ReadonlySet<string>): FormParams {
  const params: FormParams = Object.create(null) as FormParams;
  for (const [name, value] of new URLSearchParams(body)) {
    const nameProblem = textProblem(name);
    if (nameProblem !== undefined) throw invalidRequest(`a parameter name contains ${nameProblem}`);
    const valueProblem = textProblem(value);
    if (valueProblem !== undefined)
      throw invalidRequest(`${shownName(name) === name ? name : 'a parameter'} contains ${valueProblem}`);
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
