/**
 * A loopback redirect URI as RFC 8252 §7.3 lets a native app use it: `http`, the literal
 * 127.0.0.1 or [::1] (never `localhost`, whose resolution Baton does not control), an optional
 * port, and the path and query. Read from the raw string, not through `URL`, so that nothing
 * a parser normalizes (userinfo, dot segments, percent-encoding, a default port, upper case)
 * can make two different strings compare equal.
 */
const loopback = /^http:\/\/(127\.0\.0\.1|\[::1\])(?::([1-9][0-9]{0,4}))?(\/[^?#]*)?(\?[^#]*)?$/;

interface LoopbackParts {
  readonly host: string;
  readonly port: number | undefined;
  readonly rest: string;
}

function loopbackParts(uri: string): LoopbackParts | undefined {
  const m = loopback.exec(uri);
  if (m === null) return undefined;
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && port > 65535) return undefined;
  return { host: m[1] as string, port, rest: `${m[3] ?? ''}${m[4] ?? ''}` };
}

/**
 * Whether `requested` is one of the `registered` redirect URIs: an exact match, or, for a
 * registered loopback URI, the same host, path and query on any port (RFC 8252 §7.3: a native
 * app's listener gets an ephemeral port). Nothing else is relaxed.
 */
export function redirectUriMatches(registered: readonly string[], requested: string): boolean {
  if (registered.includes(requested)) return true;
  const asked = loopbackParts(requested);
  if (asked === undefined) return false;
  return registered.some((uri) => {
    const own = loopbackParts(uri);
    return own !== undefined && own.host === asked.host && own.rest === asked.rest;
  });
}
