import type { Sql } from './sql.js';

/** Ordered schema migrations, shared by PostgreSQL and PGlite. Never edit one that has shipped. */
export const migrations: readonly { readonly version: number; readonly name: string; readonly sql: string }[] = [
  {
    version: 1,
    name: 'tokens and assertions',
    sql: `
      CREATE TABLE used_assertions (
        tenant     text        NOT NULL,
        issuer     text        NOT NULL,
        jti        text        NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (tenant, issuer, jti)
      );
      CREATE INDEX used_assertions_expiry ON used_assertions (expires_at);

      CREATE TABLE tokens (
        tenant     text        NOT NULL,
        jti        text        NOT NULL,
        parent_jti text,
        root_grant text        NOT NULL,
        subject    text        NOT NULL,
        actor      text,
        client_id  text        NOT NULL,
        expires_at timestamptz NOT NULL,
        issued_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, jti)
      );
      CREATE INDEX tokens_parent ON tokens (tenant, parent_jti);
      CREATE INDEX tokens_root ON tokens (tenant, root_grant);
    `,
  },
];

/** Applies pending migrations under an advisory lock, so concurrent instances migrate once. */
export async function migrate(sql: Sql): Promise<number[]> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(7301865)`;
    await tx.script('CREATE TABLE IF NOT EXISTS baton_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    const applied = new Set((await tx<{ version: number }>`SELECT version FROM baton_migrations`).map((r) => r.version));
    const ran: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      await tx.script(m.sql);
      await tx`INSERT INTO baton_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      ran.push(m.version);
    }
    return ran;
  });
}
