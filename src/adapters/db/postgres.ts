import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { StorageUnavailableError } from '../../core/errors.js';
import type { Database, Session, Sql, SqlValue } from './sql.js';

type PgSql = postgres.Sql | postgres.TransactionSql;

/**
 * The Sql client over a `postgres` connection or transaction. With `deadlineMs`, a statement not
 * answered in time fails as unavailable and `stuck` is called: the connection carrying it may be
 * silent for good (a partition, a lost NAT entry), and only destroying it frees what waits on it.
 */
export function wrapPostgres(pg: PgSql, deadlineMs?: number, stuck?: () => void): Sql {
  const tag = (<T extends object>(strings: TemplateStringsArray, ...values: SqlValue[]) => {
    const query = pg(strings, ...values) as unknown as Promise<T[]>;
    return deadlineMs === undefined ? query : statementDeadline(query, deadlineMs, stuck);
  }) as Sql;
  // Trusted scripts (migrations) may legitimately run long: no deadline.
  tag.script = async (text) => {
    await pg.unsafe(text);
  };
  tag.begin = <T>(fn: (sql: Sql) => Promise<T>): Promise<T> => {
    if (!('begin' in pg)) return fn(tag);
    return pg.begin((tx) => fn(wrapPostgres(tx, deadlineMs, stuck))) as Promise<T>;
  };
  return tag;
}

function statementDeadline<T>(query: Promise<T>, ms: number, stuck: (() => void) | undefined): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const missed = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      stuck?.();
      reject(new StorageUnavailableError(new Error(`no answer from the database within ${ms} ms`)));
    }, ms);
  });
  // The query fails too once its connection is destroyed; that rejection is expected, not lost.
  query.catch(() => undefined);
  return Promise.race([query, missed]).finally(() => clearTimeout(timer));
}

/**
 * Seconds before a connection lost with an error is tried again: jittered, at most 0.5 s. The
 * driver's default grows with a counter its whole pool shares (3^n / 100 s, up to 20 s), so one
 * outage that closes ten connections left every later reconnect 20 s away, long after the
 * database was back.
 */
function reconnectDelay(retries: number): number {
  return Math.min(0.05 * 2 ** Math.min(retries, 8), 0.5) * (0.5 + Math.random() / 2);
}

export interface PostgresOptions {
  /** A schema to create and use, isolating this database's tables (tests give each suite its own). */
  readonly schema?: string;
  readonly max?: number;
  /**
   * How long one statement may take, client and server side: past it the server cancels the
   * statement (and ends a transaction left idle that long), and the client gives up on the
   * connection carrying it. Default 3000.
   */
  readonly deadlineMs?: number;
}

/** Connects to PostgreSQL with the `postgres` driver. */
export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<Database> {
  const deadlineMs = options.deadlineMs ?? 3000;
  const client = (max: number, name: string) =>
    postgres(url, {
      max,
      onnotice: () => {},
      // A connection the database does not accept within 2 s is dropped and tried again.
      connect_timeout: 2,
      // Probes keep a NAT entry alive and let the kernel find a peer that vanished.
      keep_alive: 5,
      // Idle connections are not kept for long: one that went silent is not lent to a request.
      idle_timeout: 10,
      backoff: reconnectDelay,
      connection: {
        application_name: name,
        statement_timeout: deadlineMs,
        idle_in_transaction_session_timeout: deadlineMs,
        ...(options.schema === undefined ? {} : { search_path: options.schema }),
      },
    });
  if (options.schema !== undefined) {
    const admin = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
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
  // A statement that misses its deadline replaces the whole pool: the driver does not say which
  // connection carries it, and the others were opened over the same path. What they carry fails
  // (as unavailable), and the next statements go on new connections.
  let pool = client(options.max ?? 10, 'baton');
  const replace = (stuck: postgres.Sql) => {
    if (pool !== stuck) return;
    pool = client(options.max ?? 10, 'baton');
    void stuck.end({ timeout: 0 });
  };
  const sql = ((strings: TemplateStringsArray, ...values: SqlValue[]) => {
    const current = pool;
    return wrapPostgres(current, deadlineMs, () => replace(current))(strings, ...values);
  }) as Sql;
  sql.script = (text) => wrapPostgres(pool).script(text);
  sql.begin = (fn) => {
    const current = pool;
    return wrapPostgres(current, deadlineMs, () => replace(current)).begin(fn);
  };
  const openSession = (max: number): Session => {
    // A name of its own, so a later session can find this one's server processes and end them.
    const name = `baton-audit-${randomUUID()}`;
    const pg = client(max, name);
    return { name, sql: wrapPostgres(pg), destroy: () => pg.end({ timeout: 0 }) };
  };
  // LISTEN holds a connection of its own, which the driver reconnects and listens on again after a loss.
  let listener: postgres.Sql | undefined;
  const listen = async (channel: string, onNotify: () => void): Promise<() => Promise<void>> => {
    listener ??= client(1, 'baton-listen');
    const { unlisten } = await listener.listen(channel, () => onNotify());
    return unlisten;
  };
  return {
    sql,
    kind: 'postgres',
    openSession,
    listen,
    close: async () => {
      await listener?.end({ timeout: 1 });
      await pool.end({ timeout: 5 });
    },
  };
}
