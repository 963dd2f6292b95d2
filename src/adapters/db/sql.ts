/** Values Baton binds into SQL. */
export type SqlValue = string | number | boolean | Date | null | readonly (string | number | null)[];

/**
 * The tagged-template SQL client both database adapters provide, so one set of queries and
 * migrations runs on PostgreSQL and on PGlite.
 */
export interface Sql {
  <T extends object = Record<string, unknown>>(strings: TemplateStringsArray, ...values: SqlValue[]): Promise<T[]>;
  /** Runs trusted, parameterless SQL (migrations), possibly several statements. */
  script(text: string): Promise<void>;
  /** Runs `fn` in one transaction. */
  begin<T>(fn: (sql: Sql) => Promise<T>): Promise<T>;
}

/** Connections of their own, which their owner can destroy with whatever they carry. */
export interface Session {
  /** Its `application_name`, unique: another session can find this one's server processes by it. */
  readonly name: string;
  /** Statements on this session, with no deadline of their own: the owner keeps the time. */
  readonly sql: Sql;
  /** Closes its connections at once; what they carry fails. */
  destroy(): Promise<void>;
}

/** An open database: its SQL client and how to close it. */
export interface Database {
  readonly sql: Sql;
  readonly kind: 'postgres' | 'pglite';
  /** Opens a session of at most `max` connections (PostgreSQL; PGlite is one session in this process). */
  readonly openSession?: (max: number) => Session;
  /** Calls `onNotify` on each NOTIFY on `channel` (from any schema of the database); resolves to a function that stops listening. */
  listen(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
