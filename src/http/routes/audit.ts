import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { signedAt, verifyAgainstCheckpoints, verifyCheckpoint } from '../../core/audit/checkpoint.js';
import type { AuditLine } from '../../core/audit/chain.js';
import { explorerCookie, openSession, sessionCaller } from '../../core/audit/explorer-session.js';
import { ocsfOfLine } from '../../core/audit/ocsf.js';
import { entryMatches, filters, parseAuditFilter } from '../../core/audit/search.js';
import { operatorScopes } from '../../core/clients/callers.js';
import { actionIdRule, actionIdSyntax } from '../../core/decisions/authorize.js';
import { invalidRequest } from '../../core/errors.js';
import type { AppDeps } from '../app-deps.js';
import { requireScope } from '../callers.js';
import { noStore } from '../oauth-errors.js';
import { errorsAs, known, type Env } from '../request.js';

/** A sequence-number query parameter, once at most; undefined when absent. */
function seqParam(c: Context<Env>, name: string): number | undefined {
  const values = c.req.queries(name);
  if (values === undefined) return undefined;
  if (values.length > 1) throw invalidRequest(`${name} is repeated`);
  const [raw = ''] = values;
  if (!/^\d{1,15}$/.test(raw)) throw invalidRequest(`${name} must be a non-negative integer`);
  return Number(raw);
}

/**
 * Admits an auditor: a caller with the audit scope (Bearer token), or else a browser signed in to
 * the audit explorer (its sealed session cookie), scoped to its tenant exactly as the token is. A
 * request with an Authorization header is judged by it alone.
 */
export function requireAuditor(): MiddlewareHandler<Env> {
  const byToken = requireScope(operatorScopes.audit);
  return async (c, next) => {
    if (c.req.header('authorization') === undefined) {
      const session = await openSession(c.get('service'), getCookie(c, explorerCookie));
      if (session !== undefined) {
        c.set('caller', known(c, sessionCaller(session)));
        return next();
      }
    }
    return byToken(c, next);
  };
}

/** The auditor API (`baton:audit`, each auditor sees its own tenant): an action's trail, the export, verification, checkpoints, and the public audit keys. */
export function auditRoutes({ service, auditQueries, checkpoints }: AppDeps): Hono<Env> {
  const routes = new Hono<Env>();
  const api = errorsAs('api');
  const auditor = requireAuditor();

  routes.get('/audit/actions/:actionId', api, auditor, async (c) => {
    const { tenant } = c.get('caller');
    const actionId = c.req.param('actionId') ?? '';
    // Every action id ever recorded has this syntax, so nothing else is looked up (a NUL, which
    // the database refuses, included).
    if (!actionIdSyntax.test(actionId)) throw invalidRequest(`action_id ${actionIdRule}`);
    const { entries, gaps } = await auditQueries.actionTrail(tenant, actionId);
    if (entries.length === 0) {
      // With entries missing from the log, "no such action" cannot be said: it may have been
      // among them. The gaps are the shared chain's, the same for any action id asked about.
      const missing = await auditQueries.gaps(100);
      if (missing.length === 0)
        return c.json({ error: 'not_found', error_description: 'no such action in your tenant' }, 404, noStore);
      const named = missing.map((g) => (g.from === g.to ? `${g.from}` : `${g.from}–${g.to}`)).join(', ');
      return c.json(
        {
          action_id: actionId,
          verified: false,
          reason: `no entry of this action remains in your tenant, and the log is missing entries ${named}: the chain is broken there, and the action may have been among them`,
          entries,
          gaps: missing,
        },
        200,
        noStore,
      );
    }
    const verified = gaps.length === 0 && entries.every((e) => e.verified);
    return c.json({ action_id: actionId, verified, entries, gaps }, 200, noStore);
  });
  routes.get('/audit/entries', api, auditor, async (c) => {
    const { tenant } = c.get('caller');
    const from = Math.max(1, seqParam(c, 'from') ?? 1);
    const limit = Math.min(10_000, Math.max(1, seqParam(c, 'limit') ?? 1000));
    const formats = c.req.queries('format') ?? [];
    if (formats.length > 1) throw invalidRequest('format is repeated');
    const [format = 'baton'] = formats;
    if (format !== 'baton' && format !== 'ocsf') throw invalidRequest('format must be baton or ocsf');
    const filter = parseAuditFilter((name) => c.req.queries(name));
    const read = await auditQueries.exportLines(tenant, from, limit);
    // A selection keeps every line of the chain: entries outside it are given as hashes only, as
    // another tenant's are, so the export still verifies offline (`baton audit verify`).
    const lines = filters(filter)
      ? read.map((l): AuditLine => {
          if (l.canonical === undefined) return l;
          let entry: unknown;
          try {
            entry = JSON.parse(l.canonical) as unknown;
          } catch {
            entry = undefined;
          }
          return entryMatches(entry, filter)
            ? l
            : { seq: l.seq, prev_hash: l.prev_hash, hash: l.hash, redacted: true as const };
        })
      : read;
    if (format === 'ocsf') {
      // Only the tenant's own entries become events (another tenant's redacted lines carry none),
      // so a page may hold fewer events than lines read: the header says where the next page starts.
      const events = lines.flatMap((l) =>
        l.canonical === undefined ? [] : [JSON.stringify(ocsfOfLine({ ...l, canonical: l.canonical }))],
      );
      const last = lines.at(-1);
      return c.body(events.length === 0 ? '' : `${events.join('\n')}\n`, 200, {
        ...noStore,
        'Content-Type': 'application/x-ndjson',
        ...(lines.length === limit && last !== undefined ? { 'Baton-Next-From': String(last.seq + 1) } : {}),
      });
    }
    const signed = await auditQueries.checkpointsFrom(from);
    const body = [
      ...lines.map((l) => JSON.stringify(l)),
      ...signed.map(({ jws }) => JSON.stringify({ checkpoint: jws })),
    ].join('\n');
    return c.body(body === '' ? '' : `${body}\n`, 200, { ...noStore, 'Content-Type': 'application/x-ndjson' });
  });
  routes.get('/audit/verify', api, auditor, async (c) => {
    const asked = { from: seqParam(c, 'from'), to: seqParam(c, 'to') };
    const head = await auditQueries.head();
    // A range that names no entries is a mistake of the caller's, never a verdict on the log:
    // `valid: false` reads as tampering to whatever watches it.
    if (asked.from !== undefined && asked.to !== undefined && asked.from > asked.to)
      throw invalidRequest('from must not be greater than to');
    if (asked.from !== undefined && asked.from > head.seq)
      throw invalidRequest(`from is beyond the last entry (${head.seq})`);
    if (asked.to !== undefined && asked.to < 1) throw invalidRequest('to must be at least 1');
    const from = Math.max(1, asked.from ?? 1);
    const to = Math.min(head.seq, asked.to ?? head.seq);
    return c.json(
      {
        from,
        to,
        ...(await verifyAgainstCheckpoints(auditQueries, checkpoints, service.issuer, { from, to, head: head.seq })),
      },
      200,
      noStore,
    );
  });
  routes.get('/audit/checkpoint', api, auditor, async (c) => {
    const checkpoint = await auditQueries.latestCheckpoint();
    if (checkpoint === undefined)
      return c.json({ error: 'not_found', error_description: 'no checkpoint has been signed yet' }, 404, noStore);
    // The time it was signed at is read from the signature; one that does not verify says so.
    const stated =
      checkpoints === undefined
        ? undefined
        : await verifyCheckpoint(checkpoints.resolve, checkpoint.jws, service.issuer).catch(() => undefined);
    return c.json(
      {
        ...checkpoint,
        signed_at: stated === undefined ? null : signedAt(stated),
        verified: stated !== undefined && stated.seq === checkpoint.seq && stated.hash === checkpoint.hash,
      },
      200,
      noStore,
    );
  });
  // The public half of the keys that sign checkpoints: open, like the token JWKS, so any witness can check them.
  routes.get('/audit/keys', api, (c) =>
    checkpoints === undefined
      ? c.json({ error: 'not_found', error_description: 'no audit key is configured on this deployment' }, 404, noStore)
      : c.json(checkpoints.publicJwks, 200, { 'Cache-Control': 'public, max-age=300' }),
  );
  return routes;
}
