// Types only, so that the ports can name a search without importing its parsing (and what that imports).

/** What an auditor may search the tenant's log by; every member optional but `limit`. */
export interface AuditFilter {
  readonly actionId?: string;
  readonly user?: string;
  /** An actor anywhere in the entry's actor chain. */
  readonly agent?: string;
  readonly client?: string;
  readonly decision?: string;
  readonly type?: string;
  /** Inclusive bounds on the entry's time. */
  readonly since?: Date;
  readonly until?: Date;
}

/** A page of a search: newest first, entries before `before` or after `after` (sequence numbers). */
export interface AuditSearch extends AuditFilter {
  readonly before?: number;
  readonly after?: number;
  readonly limit: number;
}
