import { jwtVerify } from 'jose';
import type { ServiceContext } from '../context.js';
import { signInKeys } from '../code-flow/sign-in-throttle.js';
import type { UserRole } from '../registry/roles.js';
import { userKey, type Caller } from '../registry/registry.js';
import { randomId, secret } from '../secrets.js';
import { batonAlgorithms } from '../tokens/baton-token.js';
import { signJwt } from '../tokens/jwt.js';

/** A signed-in auditor of the explorer: carried sealed (signed by Baton's keys, as the code flow's requests are) in a cookie. */
export interface ExplorerSession {
  readonly tenant: string;
  readonly sub: string;
  readonly roles: readonly UserRole[];
  /** Sent back by the page in a header on every POST: the cookie alone never acts. */
  readonly csrf: string;
  /** Seconds since the epoch. */
  readonly exp: number;
}

const sessionType = 'baton-audit-session+jwt';
/** How long an explorer session lasts: a working session, not a day. */
export const explorerSessionSeconds = 30 * 60;
/** The cookie holding the sealed session, sent only to /audit. */
export const explorerCookie = 'baton_audit';
/** The double-submit cookie of the sign-in form. */
export const explorerCsrfCookie = 'baton_audit_csrf';

const audience = (issuer: string): string => `${issuer}/audit/`;

/** Seals a session for `sub` of `tenant`. */
export async function sealSession(
  ctx: ServiceContext,
  session: Omit<ExplorerSession, 'exp' | 'csrf'>,
): Promise<{ sealed: string; session: ExplorerSession }> {
  const now = Math.floor(ctx.clock.now() / 1000);
  const full: ExplorerSession = { ...session, csrf: secret(), exp: now + explorerSessionSeconds };
  const sealed = await signJwt(ctx.keys, sessionType, {
    session: { tenant: full.tenant, sub: full.sub, roles: full.roles, csrf: full.csrf },
    jti: randomId(),
    iss: ctx.issuer,
    aud: audience(ctx.issuer),
    iat: now,
    exp: full.exp,
  });
  return { sealed, session: full };
}

/**
 * The session a cookie holds, or undefined when it is missing, forged or expired. The user is
 * looked up again: one removed from the registry, or who lost the auditor role, is signed out.
 */
export async function openSession(
  ctx: ServiceContext,
  sealed: string | undefined,
): Promise<ExplorerSession | undefined> {
  if (sealed === undefined || sealed.length > 4096) return undefined;
  try {
    const { payload } = await jwtVerify(sealed, ctx.keys.resolve, {
      typ: sessionType,
      issuer: ctx.issuer,
      audience: audience(ctx.issuer),
      algorithms: [...batonAlgorithms],
      currentDate: new Date(ctx.clock.now()),
    });
    const s = payload.session as { tenant?: unknown; sub?: unknown; csrf?: unknown } | undefined;
    if (s === undefined || typeof s.tenant !== 'string' || typeof s.sub !== 'string' || typeof s.csrf !== 'string')
      return undefined;
    if (typeof payload.exp !== 'number') return undefined;
    const user = ctx.registry().users.get(userKey(s.tenant, s.sub));
    if (user === undefined || !user.roles.includes('auditor')) return undefined;
    return { tenant: s.tenant, sub: s.sub, roles: user.roles, csrf: s.csrf, exp: payload.exp };
  } catch {
    return undefined;
  }
}

/** The caller a session acts as: its tenant, named by the user (revocations record it as their client). */
export function sessionCaller(session: ExplorerSession): Caller {
  return {
    kind: 'client',
    id: session.sub,
    tenant: session.tenant,
    authMethod: 'none',
    secretSha256: undefined,
    resolve: undefined,
    grantTypes: new Set(),
    scope: undefined,
    agents: new Set(),
    authorizationDetails: [],
    redirectUris: [],
    name: session.sub,
    registeredAt: undefined,
  };
}

/** The outcome of an explorer sign-in. */
export type ExplorerSignIn =
  | { readonly kind: 'signed-in'; readonly sealed: string; readonly session: ExplorerSession }
  | { readonly kind: 'refused'; readonly message: string; readonly audited: boolean };

const wrong = 'The tenant, user name or password is not right, or the user is not an auditor.';

/**
 * Signs an auditor in through the same authenticator and sign-in throttle as the code flow's
 * sign-in page. Every refusal in a known tenant is audited as a refused `authorization.login`;
 * one naming no tenant has no tenant to be recorded in (the caller tallies it).
 */
export async function signInAuditor(
  ctx: ServiceContext,
  form: Readonly<Record<string, string>>,
  address: string | undefined,
): Promise<ExplorerSignIn> {
  const tenant = form.tenant ?? '';
  const username = form.username ?? '';
  if (ctx.registry().tenants.get(tenant) === undefined) return { kind: 'refused', message: wrong, audited: false };
  const refuse = async (reason: string, user: string | null, message = wrong): Promise<ExplorerSignIn> => {
    await ctx.audit.append({
      tenant,
      type: 'authorization.login',
      decision: 'refused',
      user,
      reason: `audit explorer: ${reason}`,
    });
    return { kind: 'refused', message, audited: true };
  };
  const keys = signInKeys(ctx.sha256, tenant, username, address);
  const lockedUntil = await ctx.signInThrottle.attempt(keys, new Date(ctx.clock.now()));
  if (lockedUntil !== undefined) {
    const seconds = Math.max(1, Math.ceil((lockedUntil.getTime() - ctx.clock.now()) / 1000));
    return refuse(
      'sign-in throttled: too many failed attempts',
      null,
      `Too many failed sign-ins. Try again in ${seconds} seconds.`,
    );
  }
  const sub = await ctx.authenticator.authenticate(tenant, form);
  if (sub === undefined) return refuse('wrong user name or password', null);
  await ctx.signInThrottle.succeeded(keys);
  const user = ctx.registry().users.get(userKey(tenant, sub));
  const roles = user?.roles ?? [];
  if (!roles.includes('auditor')) return refuse('the user does not hold the auditor role', sub);
  const { sealed, session } = await sealSession(ctx, { tenant, sub, roles });
  await ctx.audit.append({
    tenant,
    type: 'authorization.login',
    decision: 'granted',
    user: sub,
    reason: `audit explorer: signed in (${roles.join(', ')})`,
  });
  return { kind: 'signed-in', sealed, session };
}
