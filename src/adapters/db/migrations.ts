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
  {
    version: 2,
    name: 'append-only audit log',
    sql: `
      CREATE TABLE audit_log (
        seq         bigint      PRIMARY KEY,
        tenant      text        NOT NULL,
        type        text        NOT NULL,
        action_id   text,
        jti         text,
        root_grant  text,
        recorded_at timestamptz NOT NULL,
        canonical   text        NOT NULL,
        prev_hash   text        NOT NULL,
        hash        text        NOT NULL
      );
      CREATE INDEX audit_log_action ON audit_log (tenant, action_id) WHERE action_id IS NOT NULL;
      CREATE INDEX audit_log_jti ON audit_log (tenant, jti) WHERE jti IS NOT NULL;
      CREATE INDEX audit_log_grant ON audit_log (tenant, root_grant) WHERE root_grant IS NOT NULL;

      -- The chain head: appends lock this row, so every instance extends one chain.
      CREATE TABLE audit_head (
        id   integer PRIMARY KEY CHECK (id = 1),
        seq  bigint  NOT NULL,
        hash text    NOT NULL
      );
      INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '${'0'.repeat(64)}');

      CREATE TABLE audit_checkpoints (
        seq       bigint      PRIMARY KEY,
        hash      text        NOT NULL,
        signed_at timestamptz NOT NULL,
        jws       text        NOT NULL
      );

      CREATE FUNCTION baton_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
      END
      $$;
      CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION baton_append_only();
      CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION baton_append_only();
      CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
        FOR EACH ROW EXECUTE FUNCTION baton_append_only();
      CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
        FOR EACH STATEMENT EXECUTE FUNCTION baton_append_only();
    `,
  },
  {
    version: 3,
    name: 'revocations',
    sql: `
      -- One row per revoked token: a revocation is materialized down the lineage when it is
      -- made, so checking a token is one lookup, never a walk up its ancestors.
      CREATE TABLE revocations (
        id         bigserial   PRIMARY KEY,
        tenant     text        NOT NULL,
        jti        text        NOT NULL,
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (tenant, jti)
      );
      CREATE INDEX tokens_actor ON tokens (tenant, actor);
      CREATE INDEX tokens_subject ON tokens (tenant, subject);
    `,
  },
  {
    version: 4,
    name: 'authorization codes and refresh tokens',
    sql: `
      -- Codes and refresh tokens are kept only as SHA-256 hashes.
      CREATE TABLE authorization_codes (
        code_hash   text        PRIMARY KEY,
        tenant      text        NOT NULL,
        grant_id    text        NOT NULL,
        detail      text        NOT NULL,
        expires_at  timestamptz NOT NULL,
        used_at     timestamptz
      );
      CREATE TABLE refresh_tokens (
        token_hash  text        PRIMARY KEY,
        tenant      text        NOT NULL,
        family      text        NOT NULL,
        detail      text        NOT NULL,
        expires_at  timestamptz NOT NULL,
        used_at     timestamptz,
        revoked_at  timestamptz
      );
      CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant, family);
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
