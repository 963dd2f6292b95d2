import postgres from 'postgres';
import type { Database, Sql, SqlValue } from './sql.js';

type PgSql = postgres.Sql | postgres.TransactionSql;

/** The Sql client over a `postgres` connection or transaction. */
export function wrapPostgres(pg: PgSql): Sql {
  const tag = (<T extends object>(strings: TemplateStringsArray, ...values: SqlValue[]) => pg(strings, ...values) as unknown as Promise<T[]>) as Sql;
  tag.script = async (text) => {
    await pg.unsafe(text);
  };
  tag.begin = <T>(fn: (sql: Sql) => Promise<T>): Promise<T> => {
    if (!('begin' in pg)) return fn(tag);
    return pg.begin((tx) => fn(wrapPostgres(tx))) as Promise<T>;
  };
  return tag;
}

export interface PostgresOptions {
  /** A schema to create and use, isolating this database's tables (tests give each suite its own). */
  readonly schema?: string;
  readonly max?: number;
}

/** Connects to PostgreSQL with the `postgres` driver. */
export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<Database> {
  const common = { max: options.max ?? 10, onnotice: () => {}, connect_timeout: 10 } as const;
  if (options.schema !== undefined) {
    const admin = postgres(url, { ...common, max: 1 });
    try {
      await admin.unsafe(`CREATE SCHEMA IF NOT EXISTS "${options.schema.replaceAll('"', '""')}"`);
    } catch (error) {
      // Instances starting together race to create it; whoever loses finds it made.
      const code = (error as { code?: string }).code;
      if (code !== '23505' && code !== '42P06') throw error;
    } finally {
      await admin.end();
    }
  }
  const pg = postgres(url, { ...common, ...(options.schema === undefined ? {} : { connection: { search_path: options.schema } }) });
  return { sql: wrapPostgres(pg), kind: 'postgres', close: () => pg.end({ timeout: 5 }) };
}
