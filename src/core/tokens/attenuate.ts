import { OAuthError, echo } from '../errors.js';
import type { Registry, ResourceServer } from '../registry/registry.js';

/** Splits an RFC 6749 scope string (already validated) into its tokens. */
export function scopeTokens(scope: string | undefined): string[] {
  return scope === undefined || scope === '' ? [] : [...new Set(scope.split(' '))];
}

/** Reads the `scope` claim (space-delimited string, or an `scp` array) of a verified token. */
export function scopeClaim(payload: Readonly<Record<string, unknown>>): string[] {
  if (typeof payload.scope === 'string') return scopeTokens(payload.scope.trim().replace(/\s+/g, ' '));
  if (Array.isArray(payload.scp)) return payload.scp.filter((s): s is string => typeof s === 'string');
  return [];
}

/**
 * Grants the requested scope only if each token is within every bound; without a request,
 * grants what the bounds have in common. `bounds` are [name, allowed] pairs for error messages.
 */
export function attenuateScope(
  requested: string | undefined,
  bounds: readonly (readonly [string, ReadonlySet<string> | undefined])[],
): string[] {
  const limits = bounds.filter((b): b is readonly [string, ReadonlySet<string>] => b[1] !== undefined);
  if (requested === undefined) {
    const [first, ...rest] = limits;
    if (first === undefined) return [];
    return [...first[1]].filter((s) => rest.every(([, allowed]) => allowed.has(s)));
  }
  const tokens = scopeTokens(requested);
  for (const s of tokens) {
    for (const [name, allowed] of limits) {
      if (!allowed.has(s)) throw new OAuthError('invalid_scope', `scope "${echo(s)}" exceeds ${name}`);
    }
  }
  return tokens;
}

/**
 * Resolves `audience` (a resource server id or audience URI) and `resource` (RFC 8707 URI) values
 * to registered resource servers of the tenant. Servers of other tenants are reported as unknown.
 */
export function resolveTargets(
  registry: Registry,
  tenant: string,
  audience: readonly string[],
  resource: readonly string[],
): string[] {
  const found = new Set<string>();
  const lookup = (value: string, param: string): void => {
    const server: ResourceServer | undefined =
      registry.audiences.get(value) ?? (param === 'audience' ? registry.resourceServers.get(value) : undefined);
    if (server === undefined || server.tenant !== tenant) {
      throw new OAuthError('invalid_target', `${param} "${echo(value, 120)}" is not a known resource server`);
    }
    found.add(server.audience);
  };
  audience.forEach((a) => lookup(a, 'audience'));
  resource.forEach((r) => lookup(r, 'resource'));
  return [...found];
}

/**
 * The scopes the given audiences understand, or undefined (no bound) when one of them
 * declares none, such as Baton itself.
 */
export function audienceScopes(registry: Registry, audience: readonly string[]): ReadonlySet<string> | undefined {
  const scopes = new Set<string>();
  for (const aud of audience) {
    const server = registry.audiences.get(aud);
    if (server === undefined || server.scopes.length === 0) return undefined;
    server.scopes.forEach((s) => scopes.add(s));
  }
  return scopes;
}

/** Refuses any target outside what the subject token was issued for. */
export function attenuateAudience(targets: readonly string[], subjectAudience: readonly string[]): string[] {
  for (const t of targets) {
    if (!subjectAudience.includes(t))
      throw new OAuthError('invalid_target', `audience "${echo(t, 120)}" is not within the subject token's audience`);
  }
  return [...targets];
}
