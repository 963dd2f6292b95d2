import { policySetCanonical } from '../../core/decisions/policy-set.js';
import type { NewPolicyVersion, PolicyStore, PolicyVersion, PolicyVersionSummary } from '../../core/ports.js';
import { bumpVersion } from './change-feed.js';
import type { Sql } from './sql.js';

/** The topic every instance follows to swap in the active policy set. */
export const policiesTopic = 'policies';

interface VersionRow {
  version: string | number;
  digest: string;
  files?: string;
  policy_ids: string[];
  created_by: string;
  created_at: Date | string;
  active: boolean;
}

const summaryOf = (r: VersionRow): PolicyVersionSummary => ({
  version: Number(r.version),
  digest: r.digest,
  policyIds: r.policy_ids,
  createdBy: r.created_by,
  createdAt: new Date(r.created_at),
  active: r.active,
});

const versionOf = (r: VersionRow): PolicyVersion => ({
  ...summaryOf(r),
  files: JSON.parse(r.files as string) as Record<string, string>,
});

async function activeIn(sql: Sql): Promise<PolicyVersion | undefined> {
  const [row] = await sql<VersionRow>`
    SELECT v.version, v.digest, v.files, v.policy_ids, v.created_by, v.created_at, true AS active
    FROM policy_active a JOIN policy_versions v ON v.version = a.version`;
  return row === undefined ? undefined : versionOf(row);
}

/** Stores the next version (under the caller's lock) and makes it the active one. */
async function insertActive(tx: Sql, set: NewPolicyVersion): Promise<PolicyVersion> {
  const [row] = await tx<VersionRow>`
    INSERT INTO policy_versions (version, digest, files, policy_ids, created_by)
    SELECT coalesce(max(version), 0) + 1, ${set.digest}, ${policySetCanonical(set.files)}, ${set.policyIds},
           ${set.createdBy}
    FROM policy_versions
    RETURNING version, digest, files, policy_ids, created_by, created_at, true AS active`;
  const stored = versionOf(row as VersionRow);
  await setActive(tx, stored.version);
  return stored;
}

async function setActive(tx: Sql, version: number): Promise<void> {
  await tx`
    INSERT INTO policy_active (singleton, version) VALUES (true, ${version})
    ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, changed_at = now()`;
  await bumpVersion(tx, policiesTopic);
}

/**
 * Writers take an exclusive lock on policy_active for their transaction: a seed, a reload and a
 * rollback on different instances then run one after the other, each seeing the last one's
 * active version, and version numbers follow commit order. Readers are not blocked.
 */
const lock = (tx: Sql) => tx`LOCK TABLE policy_active IN EXCLUSIVE MODE`;

/** The policy versions in PostgreSQL (or PGlite), migration 12. */
export function sqlPolicyStore(sql: Sql): PolicyStore {
  return {
    active: () => activeIn(sql),
    seed: (set) =>
      sql.begin(async (tx) => {
        await lock(tx);
        return (await activeIn(tx)) ?? (await insertActive(tx, set));
      }),
    store: (set) =>
      sql.begin(async (tx) => {
        await lock(tx);
        const from = await activeIn(tx);
        if (from !== undefined && from.digest === set.digest) return { from, to: from, changed: false };
        return { from, to: await insertActive(tx, set), changed: true };
      }),
    activate: (version) =>
      sql.begin(async (tx) => {
        await lock(tx);
        const from = await activeIn(tx);
        const [row] = await tx<VersionRow>`
          SELECT version, digest, files, policy_ids, created_by, created_at, true AS active
          FROM policy_versions WHERE version = ${version}`;
        if (row === undefined) return undefined;
        await setActive(tx, version);
        return { from, to: versionOf(row) };
      }),
    async get(version) {
      const [row] = await sql<VersionRow>`
        SELECT v.version, v.digest, v.files, v.policy_ids, v.created_by, v.created_at,
               EXISTS (SELECT 1 FROM policy_active a WHERE a.version = v.version) AS active
        FROM policy_versions v WHERE v.version = ${version}`;
      return row === undefined ? undefined : versionOf(row);
    },
    async list() {
      const rows = await sql<VersionRow>`
        SELECT v.version, v.digest, v.policy_ids, v.created_by, v.created_at, (a.version IS NOT NULL) AS active
        FROM policy_versions v LEFT JOIN policy_active a ON a.version = v.version
        ORDER BY v.version DESC`;
      return rows.map(summaryOf);
    },
  };
}
