import { OAuthError, type OAuthErrorCode } from '../errors.js';
import type { ActClaim } from '../ports.js';

/**
 * Validates an RFC 8693 §4.1 `act` claim and returns it with the actor chain it encodes,
 * current actor first. Nesting deeper than `maxDepth` is refused before it is walked further.
 */
export function parseActClaim(
  value: unknown,
  param: string,
  maxDepth: number,
  errorCode: OAuthErrorCode = 'invalid_request',
): { act: ActClaim | undefined; chain: string[] } {
  const chain: string[] = [];
  let node = value;
  while (node !== undefined) {
    if (chain.length >= maxDepth)
      throw new OAuthError(errorCode, `${param} has an act claim nested deeper than ${maxDepth}`);
    if (typeof node !== 'object' || node === null || Array.isArray(node))
      throw new OAuthError(errorCode, `${param} has a malformed act claim`);
    const { sub, iss, act } = node as { sub?: unknown; iss?: unknown; act?: unknown };
    if (typeof sub !== 'string' || sub.length === 0)
      throw new OAuthError(errorCode, `${param} has an act claim without a subject`);
    if (iss !== undefined && typeof iss !== 'string')
      throw new OAuthError(errorCode, `${param} has a malformed act claim`);
    chain.push(sub);
    node = act;
  }
  return { act: value as ActClaim | undefined, chain };
}

/** The `act` claim of a token issued to `actor` from a subject whose current `act` is `prior`. */
export function delegate(
  actor: string,
  prior: { act: ActClaim | undefined; chain: readonly string[] },
): { act: ActClaim; chain: string[]; newHop: boolean } {
  if (prior.act !== undefined && prior.chain[0] === actor) {
    // The current actor narrows its own token: no new hop.
    return { act: prior.act, chain: [...prior.chain], newHop: false };
  }
  return {
    act: prior.act === undefined ? { sub: actor } : { sub: actor, act: prior.act },
    chain: [actor, ...prior.chain],
    newHop: true,
  };
}
