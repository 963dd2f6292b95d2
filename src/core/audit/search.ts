import { actionIdRule, actionIdSyntax } from '../decisions/authorize.js';
import { invalidRequest } from '../errors.js';
import type { AuditFilter } from './filter.js';

export type { AuditFilter, AuditSearch } from './filter.js';

export const auditDecisions = ['granted', 'refused', 'allow', 'deny', 'applied'] as const;
const nameSyntax = /^[\x20-\x7E\u00A0-\uFFFF]{1,256}$/;
const typeSyntax = /^[a-z]+(\.[a-z_]+){0,3}$/;
/** RFC 3339 date-time, with an offset or Z. */
const dateTimeSyntax = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** The filter parameters, with the names the query string uses. */
export const filterParams = ['action_id', 'user', 'agent', 'client', 'decision', 'type', 'since', 'until'] as const;

/** Reads one parameter, refusing repeats and empty values: undefined when absent. */
function one(query: (name: string) => string[] | undefined, name: string): string | undefined {
  const values = query(name);
  if (values === undefined) return undefined;
  if (values.length > 1) throw invalidRequest(`${name} is repeated`);
  const [value = ''] = values;
  return value;
}

function time(name: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const at = new Date(value);
  if (!dateTimeSyntax.test(value) || Number.isNaN(at.getTime()))
    throw invalidRequest(`${name} must be an RFC 3339 date-time (2026-01-31T12:00:00Z)`);
  return at;
}

/** Parses the filter of a query string (`/audit/entries`, `/audit/search`), refusing what no entry could match by syntax. */
export function parseAuditFilter(query: (name: string) => string[] | undefined): AuditFilter {
  const actionId = one(query, 'action_id');
  if (actionId !== undefined && !actionIdSyntax.test(actionId)) throw invalidRequest(`action_id ${actionIdRule}`);
  const named: Partial<Record<'user' | 'agent' | 'client', string>> = {};
  for (const name of ['user', 'agent', 'client'] as const) {
    const value = one(query, name);
    if (value === undefined) continue;
    if (!nameSyntax.test(value)) throw invalidRequest(`${name} must be 1–256 characters, no control characters`);
    named[name] = value;
  }
  const decision = one(query, 'decision');
  if (decision !== undefined && !(auditDecisions as readonly string[]).includes(decision))
    throw invalidRequest(`decision must be one of ${auditDecisions.join(', ')}`);
  const type = one(query, 'type');
  if (type !== undefined && !typeSyntax.test(type))
    throw invalidRequest('type must be an entry type such as token.exchange or decision');
  const since = time('since', one(query, 'since'));
  const until = time('until', one(query, 'until'));
  if (since !== undefined && until !== undefined && since.getTime() > until.getTime())
    throw invalidRequest('since must not be later than until');
  return {
    ...(actionId === undefined ? {} : { actionId }),
    ...named,
    ...(decision === undefined ? {} : { decision }),
    ...(type === undefined ? {} : { type }),
    ...(since === undefined ? {} : { since }),
    ...(until === undefined ? {} : { until }),
  };
}

/** Whether a filter names anything. */
export function filters(filter: AuditFilter): boolean {
  return Object.keys(filter).length > 0;
}

/** Whether an entry (as stored, parsed) matches the filter: the same test as the database's search. */
export function entryMatches(entry: unknown, filter: AuditFilter): boolean {
  if (typeof entry !== 'object' || entry === null) return false;
  const e = entry as Record<string, unknown>;
  if (filter.actionId !== undefined && e.action_id !== filter.actionId) return false;
  if (filter.user !== undefined && e.user !== filter.user) return false;
  if (filter.client !== undefined && e.client !== filter.client) return false;
  if (filter.decision !== undefined && e.decision !== filter.decision) return false;
  if (filter.type !== undefined && e.type !== filter.type) return false;
  if (filter.agent !== undefined && !(Array.isArray(e.actor_chain) && e.actor_chain.includes(filter.agent)))
    return false;
  if (filter.since !== undefined || filter.until !== undefined) {
    const at = typeof e.time === 'string' ? Date.parse(e.time) : Number.NaN;
    if (Number.isNaN(at)) return false;
    if (filter.since !== undefined && at < filter.since.getTime()) return false;
    if (filter.until !== undefined && at > filter.until.getTime()) return false;
  }
  return true;
}
