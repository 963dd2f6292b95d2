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

/** An open database: its SQL client and how to close it. */
export interface Database {
  readonly sql: Sql;
  readonly kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}
