-- Least privilege for the role Baton runs as. Run once, as the owner of Baton's tables, after
-- Baton has applied its migrations:
--   psql "$OWNER_URL" -v app=baton_app -f sql/least-privilege.sql
-- The audit log and its checkpoints are append-only for the application: it may read and
-- insert, never update, delete or truncate. The triggers of migration 2 refuse those
-- statements even to the owner; a superuser who bypasses both is caught by verification.

REVOKE ALL ON audit_log, audit_checkpoints, audit_head, tokens, used_assertions, baton_migrations FROM :"app";
GRANT SELECT, INSERT ON audit_log, audit_checkpoints TO :"app";
GRANT SELECT, UPDATE ON audit_head TO :"app";
GRANT SELECT, INSERT ON tokens TO :"app";
GRANT SELECT, INSERT, DELETE ON used_assertions TO :"app";
GRANT SELECT ON baton_migrations TO :"app";
GRANT SELECT, INSERT ON revocations TO :"app";
GRANT USAGE ON SEQUENCE revocations_id_seq TO :"app";
GRANT SELECT, INSERT, UPDATE ON authorization_codes, refresh_tokens TO :"app";
-- UPDATE also lets a token's lineage take its share lock on the row of its grant (migration 8).
GRANT SELECT, INSERT, UPDATE ON grants TO :"app";
GRANT SELECT, INSERT, UPDATE, DELETE ON rate_limit_buckets TO :"app";
