import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { Database, Sql, SqlValue } from './sql.js';

function wrap(pg: PGlite | Transaction): Sql {
  const tag = (async <T extends object>(strings: TemplateStringsArray, ...values: SqlValue[]) => {
    let text = strings[0] ?? '';
    for (let i = 1; i < strings.length; i++) text += `$${i}${strings[i]}`;
    return (await pg.query<T>(text, values)).rows;
  }) as Sql;
  tag.script = async (text) => {
    await pg.exec(text);
  };
  tag.begin = <T>(fn: (sql: Sql) => Promise<T>): Promise<T> => {
    if (!('transaction' in pg)) return fn(tag);
    return pg.transaction((tx) => fn(wrap(tx)));
  };
  return tag;
}

/** Opens embedded PostgreSQL (PGlite); `dataDir` undefined keeps it in memory. */
export async function openPglite(dataDir: string | undefined): Promise<Database> {
  const pg = dataDir === undefined ? new PGlite() : new PGlite(dataDir);
  await pg.waitReady;
  return {
    sql: wrap(pg),
    kind: 'pglite',
    listen: (channel, onNotify) => pg.listen(channel, () => onNotify()),
    close: () => pg.close(),
  };
}
