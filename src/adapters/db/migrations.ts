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
  {
    version: 5,
    name: 'audit append in one statement',
    sql: `
      -- Appends a batch chained in the application on the head (after_seq, after_hash): locks the
      -- head row, writes nothing and answers the actual head if the head has moved (another
      -- instance appended first; the caller chains again from it), else inserts the token lineage
      -- and the entries and moves the head, in the caller's transaction or as one statement's.
      CREATE FUNCTION baton_audit_append(after_seq bigint, after_hash text, last_seq bigint, last_hash text, batch_entries text, batch_tokens text)
        RETURNS TABLE (appended boolean, head_seq bigint, head_hash text)
        LANGUAGE plpgsql AS $$
      DECLARE
        current_seq bigint;
        current_hash text;
        contiguous boolean;
      BEGIN
        SELECT h.seq, h.hash INTO current_seq, current_hash FROM audit_head h WHERE h.id = 1 FOR UPDATE;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'audit head is missing';
        END IF;
        IF current_seq <> after_seq OR current_hash <> after_hash THEN
          RETURN QUERY SELECT false, current_seq, current_hash;
          RETURN;
        END IF;
        IF batch_tokens IS NOT NULL THEN
          INSERT INTO tokens (tenant, jti, parent_jti, root_grant, subject, actor, client_id, expires_at)
          SELECT t.tenant, t.jti, t.parent_jti, t.root_grant, t.subject, t.actor, t.client_id, t.expires_at
          FROM json_to_recordset(batch_tokens::json)
            AS t(tenant text, jti text, parent_jti text, root_grant text, subject text, actor text, client_id text, expires_at timestamptz);
        END IF;
        WITH added AS (
          INSERT INTO audit_log (seq, tenant, type, action_id, jti, root_grant, recorded_at, canonical, prev_hash, hash)
          SELECT e.seq, e.tenant, e.type, e.action_id, e.jti, e.root_grant, e.recorded_at, e.canonical, e.prev_hash, e.hash
          FROM json_to_recordset(batch_entries::json)
            AS e(seq bigint, tenant text, type text, action_id text, jti text, root_grant text, recorded_at timestamptz, canonical text, prev_hash text, hash text)
          RETURNING audit_log.seq, audit_log.prev_hash, audit_log.hash
        )
        SELECT count(*) = last_seq - after_seq AND min(a.seq) = after_seq + 1 AND max(a.seq) = last_seq
            AND bool_and(a.seq <> after_seq + 1 OR a.prev_hash = after_hash) AND bool_or(a.seq = last_seq AND a.hash = last_hash)
          INTO contiguous FROM added a;
        -- Distinct sequence numbers, as many as the range holds: the batch continues the chain
        -- exactly at the head, linked to its hash, and ends where the new head says.
        IF contiguous IS NOT TRUE THEN
          RAISE EXCEPTION 'audit batch does not continue the chain from % to %', after_seq, last_seq;
        END IF;
        UPDATE audit_head SET seq = last_seq, hash = last_hash WHERE id = 1;
        RETURN QUERY SELECT true, last_seq, last_hash;
      END
      $$;
    `,
  },
  {
    version: 6,
    name: 'audit indexes that hold only what the trail reads',
    sql: `
      -- An action's trail looks up token entries by jti and consents by root grant; indexes of
      -- exactly those rows are read without filtering, and decisions (most of the log) no longer
      -- pay for an index entry nobody reads.
      CREATE INDEX audit_log_token_jti ON audit_log (tenant, jti) WHERE type LIKE 'token.%' AND jti IS NOT NULL;
      CREATE INDEX audit_log_consent_grant ON audit_log (tenant, root_grant) WHERE type = 'authorization.consent' AND root_grant IS NOT NULL;
      DROP INDEX audit_log_jti;
      DROP INDEX audit_log_grant;
    `,
  },
  {
    version: 7,
    name: 'revocations polled by time',
    sql: `
      -- Every instance polls revocations newer than the last id it saw or made in the last few
      -- seconds; without this index the second half scanned the whole table four times a second
      -- (about 30 ms of database time per poll at 100,000 revocations, under 1 ms with it).
      CREATE INDEX revocations_revoked_at ON revocations (revoked_at);
    `,
  },
  {
    version: 8,
    name: 'sign-in attempts',
    sql: `
      -- Password sign-in throttling (src/core/code-flow/sign-in-throttle.ts): one row per hashed user or
      -- address key, counted by every instance.
      CREATE TABLE sign_in_attempts (
        key          text        PRIMARY KEY,
        attempts     integer     NOT NULL,
        last_attempt timestamptz NOT NULL,
        locked_until timestamptz
      );
    `,
  },
  {
    version: 9,
    name: 'code-flow grants revoked as a whole',
    sql: `
      -- A code-flow grant (its code, its refresh-token family and every token issued under it),
      -- made with its code and revoked as a whole: a replayed code or refresh token, an RFC 7009
      -- revocation of a refresh token, a kill switch. A revocation locks the grant's row before it
      -- cascades; a token's lineage takes a share lock on the row of its root grant when it is
      -- written (trigger below). So a token issued while its grant is being revoked is either
      -- committed before the cascade reads the lineage, or written after the revocation committed
      -- and revoked as it is written: never neither, on any number of instances. Codes and refresh
      -- tokens are redeemed only while their grant is unrevoked, which supersedes
      -- refresh_tokens.revoked_at (carried over here, still honoured, no longer written).
      CREATE TABLE grants (
        tenant     text        NOT NULL,
        grant_id   text        NOT NULL,
        client_id  text        NOT NULL,
        subject    text        NOT NULL,
        agent      text,
        revoked_at timestamptz,
        PRIMARY KEY (tenant, grant_id)
      );
      CREATE INDEX grants_subject ON grants (tenant, subject);
      CREATE INDEX grants_agent ON grants (tenant, agent) WHERE agent IS NOT NULL;
      INSERT INTO grants (tenant, grant_id, client_id, subject, agent, revoked_at)
      SELECT c.tenant, c.grant_id, c.detail::json->>'clientId', c.detail::json->>'user', c.detail::json->>'agent',
        (SELECT max(r.revoked_at) FROM refresh_tokens r WHERE r.tenant = c.tenant AND r.family = c.grant_id)
      FROM authorization_codes c
      ON CONFLICT DO NOTHING;

      -- Rows are locked in key order, as revocations lock them, so two writers never wait on
      -- each other; only tokens of code-flow grants find a row (and so a lock) here.
      CREATE FUNCTION baton_revoke_tokens_of_revoked_grants() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM 1 FROM grants g
          WHERE (g.tenant, g.grant_id) IN (SELECT a.tenant, a.root_grant FROM added a)
          ORDER BY g.tenant, g.grant_id FOR SHARE;
        IF FOUND THEN
          INSERT INTO revocations (tenant, jti, expires_at)
          SELECT a.tenant, a.jti, a.expires_at FROM added a
            JOIN grants g ON g.tenant = a.tenant AND g.grant_id = a.root_grant
          WHERE g.revoked_at IS NOT NULL
          ON CONFLICT (tenant, jti) DO NOTHING;
        END IF;
        RETURN NULL;
      END
      $$;
      CREATE TRIGGER tokens_of_revoked_grants AFTER INSERT ON tokens REFERENCING NEW TABLE AS added
        FOR EACH STATEMENT EXECUTE FUNCTION baton_revoke_tokens_of_revoked_grants();
    `,
  },
  {
    version: 10,
    name: 'versions of shared state',
    sql: `
      -- One row per kind of state every instance keeps in memory (the registry, the policy set): its
      -- writer bumps the version in its own transaction and notifies channel baton_changes; each
      -- instance listens, and polls this table as the fallback (src/adapters/db/change-feed.ts).
      CREATE TABLE baton_versions (
        topic   text   PRIMARY KEY,
        version bigint NOT NULL
      );
    `,
  },
  {
    version: 11,
    name: 'registry documents',
    sql: `
      -- Every version of the registry document (the registry file's shape, as JSON text: kept
      -- byte for byte as written); the newest is in force. Writers serialize on an advisory lock
      -- and bump topic 'registry' in baton_versions (src/adapters/db/registry-store.ts).
      CREATE TABLE registry_documents (
        version    bigint      PRIMARY KEY,
        document   text        NOT NULL,
        changed_by text        NOT NULL,
        changed_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 12,
    name: 'policy set versions',
    sql: `
      -- Every policy set Baton has run, deployment-wide: its files as the RFC 8785 JSON text of
      -- {name: text} (what the digest hashes, so the digest can be checked against it), and the
      -- ids of its policies. Versions are never changed or deleted; a rollback activates an older one.
      CREATE TABLE policy_versions (
        version    bigint      PRIMARY KEY,
        digest     text        NOT NULL,
        files      text        NOT NULL,
        policy_ids text[]      NOT NULL,
        created_by text        NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      -- The one active version (a single row); writers lock this table, so versions are numbered in order.
      CREATE TABLE policy_active (
        singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
        version    bigint      NOT NULL REFERENCES policy_versions (version),
        changed_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 13,
    name: 'shared rate limit buckets',
    sql: `
      -- One token bucket per caller, shared by every instance (src/adapters/db/rate-limit-store.ts).
      -- Unlogged: a bucket is worth a few seconds, so it is not worth WAL; after a crash (or on a
      -- standby) the table is empty, and a missing bucket is a full one.
      CREATE UNLOGGED TABLE rate_limit_buckets (
        caller      text        PRIMARY KEY,
        tokens      float8      NOT NULL,
        refilled_at timestamptz NOT NULL
      );
    `,
  },
  {
    version: 14,
    name: 'last use of dynamically registered clients',
    sql: `
      -- When each dynamically registered client (RFC 7591) was last used, written at most once an
      -- hour per client (src/adapters/db/client-use-store.ts); the sweep removes the clients left
      -- unused for their tenant's unused_client_ttl_seconds. A client never used has no row.
      CREATE TABLE client_uses (
        client_id    text        PRIMARY KEY,
        last_used_at timestamptz NOT NULL
      );
    `,
  },
  {
    version: 15,
    name: 'audit sinks',
    sql: `
      -- Where each tenant's audit entries are pushed as OCSF events (src/adapters/db/audit-sink-store.ts).
      -- delivered_seq is the durable cursor: every entry of the tenant (and deployment-wide, '*') up
      -- to it was accepted by the sink. The instance holding the lease (lease_holder until
      -- lease_until) is the only one delivering; a cursor moves only under its lease, from the value
      -- it read. After a failure the next attempt waits until next_attempt_at.
      CREATE TABLE audit_sinks (
        tenant          text        NOT NULL,
        id              text        NOT NULL,
        kind            text        NOT NULL CHECK (kind IN ('webhook', 'splunk', 'datadog')),
        url             text        NOT NULL,
        credential      text,
        batch_size      integer     NOT NULL CHECK (batch_size BETWEEN 1 AND 1000),
        delivered_seq   bigint      NOT NULL DEFAULT 0,
        lease_holder    text,
        lease_until     timestamptz,
        failures        integer     NOT NULL DEFAULT 0,
        next_attempt_at timestamptz,
        last_error      text,
        created_by      text        NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, id)
      );
    `,
  },
];

/** Applies pending migrations under an advisory lock, so concurrent instances migrate once. */
export async function migrate(sql: Sql): Promise<number[]> {
  return sql.begin(async (tx) => {
    // Another instance may be migrating: waiting for it is not a stuck statement.
    await tx.script('SET LOCAL statement_timeout = 0; SELECT pg_advisory_xact_lock(7301865)');
    await tx.script(
      'CREATE TABLE IF NOT EXISTS baton_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const applied = new Set(
      (await tx<{ version: number }>`SELECT version FROM baton_migrations`).map((r) => r.version),
    );
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
