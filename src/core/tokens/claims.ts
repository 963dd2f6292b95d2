import type { JWTPayload } from 'jose';
import { parseActClaim } from './act-chain.js';
import { authorizationDetailsClaim } from './authorization-details.js';
import { OAuthError, type OAuthErrorCode } from '../errors.js';
import { describePath, findUnstorableText } from '../input/storable-text.js';

/** How deep an `act` claim may nest in any token; the configured chain length is checked where a chain is used. */
const maxActNesting = 32;

/** Claims that name someone or something: when present, a non-empty string. */
const identifiers = ['iss', 'sub', 'jti', 'tenant', 'client_id'] as const;
/** NumericDate claims (RFC 7519 §2): when present, a finite number (JSON's 1e400 parses as Infinity). */
const times = ['exp', 'iat', 'nbf'] as const;

const isName = (value: unknown): value is string => typeof value === 'string' && value !== '';

/**
 * Type-checks every claim Baton reads, in every JWT it accepts (its own tokens, upstream subject
 * tokens, assertions), before any of them is used: a validly signed token with an object where
 * a string belongs, or an empty subject, is refused like a token with a bad signature. Text that
 * PostgreSQL or Cedar cannot hold (see storable-text.ts) is refused in any claim.
 */
export function checkClaims(payload: JWTPayload, param: string, errorCode: OAuthErrorCode): void {
  const refuse = (claim: string, why: string): OAuthError =>
    new OAuthError(errorCode, `${param} has an invalid "${claim}" claim: ${why}`);
  for (const name of identifiers)
    if (payload[name] !== undefined && !isName(payload[name])) throw refuse(name, 'must be a non-empty string');
  for (const name of times)
    if (payload[name] !== undefined && !Number.isFinite(payload[name])) throw refuse(name, 'must be a finite number');
  const {
    aud,
    scope,
    scp,
    may_act: mayAct,
  } = payload as { aud?: unknown; scope?: unknown; scp?: unknown; may_act?: unknown };
  if (aud !== undefined && !isName(aud) && !(Array.isArray(aud) && aud.length > 0 && aud.every(isName)))
    throw refuse('aud', 'must be a non-empty string or a list of them');
  if (scope !== undefined && typeof scope !== 'string') throw refuse('scope', 'must be a string');
  if (scp !== undefined && !(Array.isArray(scp) && scp.every((s) => typeof s === 'string')))
    throw refuse('scp', 'must be a list of strings');
  parseActClaim(payload.act, param, maxActNesting, errorCode);
  if (mayAct !== undefined) {
    const { sub, iss } = (typeof mayAct === 'object' && mayAct !== null && !Array.isArray(mayAct) ? mayAct : {}) as {
      sub?: unknown;
      iss?: unknown;
    };
    if (!isName(sub) || (iss !== undefined && typeof iss !== 'string'))
      throw new OAuthError(errorCode, `${param} has a malformed may_act claim`);
  }
  authorizationDetailsClaim(payload.authorization_details, param, errorCode);
  const text = findUnstorableText(payload);
  if (text !== undefined) throw refuse(describePath(text.path), `it ${text.problem}`);
}
