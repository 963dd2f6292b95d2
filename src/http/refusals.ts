import type { Context } from 'hono';
import type { Refusal } from '../core/audit/refusal-tally.js';
import type { AppDeps } from './app-deps.js';
import { requestIdOf, type Env } from './request.js';

/** A method as a refusal's route names it: a caller's own spelling never becomes a key of the tally. */
const knownMethod = (method: string): string =>
  /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$/.test(method) ? method : 'other method';

/**
 * Counts a refusal that has no audit entry of its own (refused before the endpoint's logic:
 * content type, form, body size, credentials…) in the tally, by who sent it as far as it is known,
 * and writes the entries the tally says to write now; it bounds how many entries a flood from one
 * source can write (see RefusalTally).
 */
export async function tally(
  c: Context<Env>,
  deps: Pick<AppDeps, 'refusals' | 'remoteAddress'>,
  refusal: Pick<Refusal, 'status' | 'code' | 'description' | 'detail'>,
): Promise<void> {
  const who = c.get('who') ?? {};
  const address = deps.remoteAddress?.(c);
  const written = deps.refusals.note({
    source:
      who.client !== undefined ? `client ${who.client}` : address !== undefined ? `address ${address}` : 'unknown',
    tenant: who.tenant ?? 'unknown',
    client: who.client ?? null,
    route: `${knownMethod(c.req.method)} ${c.req.routePath}`,
    ...refusal,
    requestId: requestIdOf(c),
  });
  await Promise.all(written.map((event) => c.get('service').audit.append(event)));
}
