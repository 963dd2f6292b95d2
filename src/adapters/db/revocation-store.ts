import { withinDeadline } from './deadline.js';
import type { Logger, RevocationTarget, Revocations } from '../../core/ports.js';
import type { Sql } from './sql.js';

export interface RevocationOptions {
  readonly logger: Logger;
  /**
   * Called when a follow-up pass revoked more tokens (derived from revoked ones while the first
   * pass ran), so each such revocation is explained in the audit log.
   */
  readonly onFollowUp?: (tenant: string, target: RevocationTarget, revoked: readonly string[]) => Promise<void>;
  /** How often to pick up revocations made by other instances. */
  readonly pollMilliseconds?: number;
  readonly deadlineMs?: number;
}

const key = (tenant: string, jti: string): string => `${tenant}\u0000${jti}`;

/**
 * Revokes every live token the target reaches that was issued by `issuedBy` (database time), and
 * every token derived from them whenever it was issued (one recursive statement).
 */
function cascadeTokens(sql: Sql, tenant: string, target: RevocationTarget, issuedBy: Date): Promise<{ jti: string }[]> {
  const agent = target.kind === 'agent' ? target.agent : null;
  const user = target.kind === 'user' ? target.user : null;
  const client = target.kind === 'client' ? target.client : null;
  const jti = target.kind === 'token' ? target.jti : null;
  const grant = target.kind === 'grant' ? target.grant : null;
  return sql<{ jti: string }>`
    WITH RECURSIVE tree(jti) AS (
      SELECT jti FROM tokens
      WHERE tenant = ${tenant} AND expires_at > now() AND issued_at <= ${issuedBy}
        AND (jti = ${jti} OR actor = ${agent} OR subject = ${agent} OR subject = ${user} OR root_grant = ${grant}
          OR client_id = ${client})
      UNION
      SELECT t.jti FROM tokens t JOIN tree ON t.parent_jti = tree.jti WHERE t.tenant = ${tenant}
    )
    INSERT INTO revocations (tenant, jti, expires_at)
    SELECT ${tenant}, t.jti, t.expires_at FROM tokens t JOIN tree ON t.jti = tree.jti
    WHERE t.tenant = ${tenant} AND t.expires_at > now()
    ON CONFLICT (tenant, jti) DO NOTHING
    RETURNING jti`;
}

/** What a revocation pass revoked, and the database time that bounds what it reaches. */
export interface CascadeResult {
  readonly revoked: string[];
  /** Tokens of the target issued after this are not the target's: a later pass reaches only their descendants of revoked tokens. */
  readonly at: Date;
}

/**
 * Revokes the target and every live token derived from it; returns the jtis newly revoked. A
 * grant, and every grant of a user, consented to an agent or made to a client, is first marked revoked under its
 * row lock (in key order, as lineage writes take their share locks), so its codes and refresh
 * tokens stop working and a token of it whose lineage is written meanwhile is revoked too: the
 * cascade reads the lineage only once every writer holding the lock has committed, and a writer
 * that waited on the lock finds the grant revoked (see migration 9).
 */
export async function cascadeRevocation(
  sql: Sql,
  tenant: string,
  target: RevocationTarget,
  issuedBy?: Date,
): Promise<CascadeResult> {
  const grant = target.kind === 'grant' ? target.grant : null;
  const user = target.kind === 'user' ? target.user : null;
  const agent = target.kind === 'agent' ? target.agent : null;
  const client = target.kind === 'client' ? target.client : null;
  return sql.begin(async (tx) => {
    // now() is the transaction's start: the moment this revocation reaches back from.
    const [clock] = await tx<{ at: Date }>`SELECT now() AS at`;
    const at = issuedBy ?? (clock as { at: Date }).at;
    if (target.kind === 'token')
      return { revoked: (await cascadeTokens(tx, tenant, target, at)).map((r) => r.jti), at };
    await tx`
      UPDATE grants SET revoked_at = coalesce(revoked_at, now())
      WHERE (tenant, grant_id) IN (
        SELECT tenant, grant_id FROM grants
        WHERE tenant = ${tenant}
          AND (grant_id = ${grant} OR subject = ${user} OR agent = ${agent} OR client_id = ${client})
        ORDER BY tenant, grant_id FOR UPDATE)`;
    return { revoked: (await cascadeTokens(tx, tenant, target, at)).map((r) => r.jti), at };
  });
}

/**
 * Revocations over SQL with an in-memory set: loaded at start, extended by polling for rows newer
 * than the last seen id, and by this instance's own revocations at once. A revocation writes one
 * row per token in the lineage below the target (a recursive query), and repeats the cascade a
 * little later to catch tokens that were being issued from a revoked parent at that moment.
 */
export async function createRevocations(
  sql: Sql,
  options: RevocationOptions,
): Promise<Revocations & { stop(): void; refresh(): Promise<void> }> {
  const revoked = new Set<string>();
  let lastId = 0;
  const deadline = options.deadlineMs ?? 3000;
  const pending = new Set<ReturnType<typeof setTimeout>>();

  async function refresh(): Promise<void> {
    // Ids are taken at insert but become visible at commit, possibly out of order: rows from the
    // last few seconds are read again so one committed late is not skipped.
    const rows = await sql<{ id: string | number; tenant: string; jti: string }>`
      SELECT id, tenant, jti FROM revocations
      WHERE (id > ${lastId} OR revoked_at > now() - interval '10 seconds') AND expires_at > now()
      ORDER BY id LIMIT 100000`;
    for (const r of rows) {
      revoked.add(key(r.tenant, r.jti));
      lastId = Math.max(lastId, Number(r.id));
    }
  }
  await refresh();

  async function cascade(tenant: string, target: RevocationTarget, issuedBy?: Date): Promise<CascadeResult> {
    const result = await cascadeRevocation(sql, tenant, target, issuedBy);
    for (const jti of result.revoked) revoked.add(key(tenant, jti));
    return result;
  }

  const poll = setInterval(() => {
    refresh().catch((error: unknown) =>
      options.logger.warn('revocation poll failed; will retry', {
        detail: error instanceof Error ? error.message : String(error),
      }),
    );
  }, options.pollMilliseconds ?? 250);
  poll.unref();

  return {
    isRevoked: (tenant, jti) => revoked.has(key(tenant, jti)),
    async revoke(tenant, target) {
      const first = await withinDeadline(cascade(tenant, target), deadline);
      // A child issued from a revoked parent while the cascade ran is caught by a later pass. The
      // passes reach only what the first one did (the target's tokens issued by then) and what
      // derives from revoked tokens: a token the target gets afterwards is not revoked by them.
      for (const delay of [1500, 4000]) {
        const timer = setTimeout(() => {
          pending.delete(timer);
          cascade(tenant, target, first.at)
            .then((more) => (more.revoked.length > 0 ? options.onFollowUp?.(tenant, target, more.revoked) : undefined))
            .catch((error: unknown) =>
              options.logger.warn('revocation follow-up failed', {
                detail: error instanceof Error ? error.message : String(error),
              }),
            );
        }, delay);
        timer.unref();
        pending.add(timer);
      }
      return first.revoked;
    },
    refresh,
    stop() {
      clearInterval(poll);
      for (const timer of pending) clearTimeout(timer);
    },
  };
}
