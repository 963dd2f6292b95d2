import type { Logger } from '../../core/ports.js';
import type { Database, Sql } from './sql.js';

/** The channel every instance listens on; a notification only wakes it, the versions are read from its own schema. */
const channel = 'baton_changes';

/**
 * Moves `topic` to its next version inside the writer's transaction and notifies the instances
 * (PostgreSQL delivers the notification at commit, and not at all on rollback). Returns the new version.
 */
export async function bumpVersion(tx: Sql, topic: string): Promise<number> {
  const [row] = await tx<{ version: string | number }>`
    INSERT INTO baton_versions (topic, version) VALUES (${topic}, 1)
    ON CONFLICT (topic) DO UPDATE SET version = baton_versions.version + 1
    RETURNING version`;
  await tx`SELECT pg_notify(${channel}, ${topic})`;
  return Number((row as { version: string | number }).version);
}

/** The current version of `topic` (0 before its first write). */
export async function currentVersion(sql: Sql, topic: string): Promise<number> {
  const [row] = await sql<{ version: string | number }>`SELECT version FROM baton_versions WHERE topic = ${topic}`;
  return row === undefined ? 0 : Number(row.version);
}

export interface FollowOptions {
  /** Called with a topic's version each time it is higher than the last one handled; a rejection is logged and retried at the next wake-up. */
  readonly onChange: (topic: string, version: number) => Promise<void>;
  /** The versions this instance already holds (read at start); topics absent start at 0. */
  readonly known?: ReadonlyMap<string, number>;
  readonly logger: Logger;
  /** The fallback when a notification is lost (the listening connection dropped): default 500 ms. */
  readonly pollMilliseconds?: number;
}

/** What follows the versions: `check` runs one pass now (a writer calls it after its own commit). */
export interface ChangeFollower {
  check(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Follows the versions of `topics`: on every notification on the channel, and every poll interval,
 * reads them and calls `onChange` for each that moved. Passes never overlap; a wake-up during a
 * pass runs one more pass after it, so a change committed meanwhile is not missed.
 */
export async function followChanges(
  database: Database,
  topics: readonly string[],
  options: FollowOptions,
): Promise<ChangeFollower> {
  const handled = new Map<string, number>(topics.map((t) => [t, options.known?.get(t) ?? 0]));
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  async function pass(): Promise<void> {
    const rows = await database.sql<{ topic: string; version: string | number }>`
      SELECT topic, version FROM baton_versions WHERE topic = ANY(${topics})`;
    for (const row of rows) {
      const version = Number(row.version);
      if (version <= (handled.get(row.topic) ?? 0)) continue;
      try {
        await options.onChange(row.topic, version);
        handled.set(row.topic, version);
      } catch (error) {
        options.logger.warn('applying a shared change failed; will retry', {
          topic: row.topic,
          version,
          detail: error instanceof Error ? error.message : String(error),
        });
      }
    }
  }

  function check(): Promise<void> {
    if (stopped) return Promise.resolve();
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await pass().catch((error: unknown) =>
          options.logger.warn('reading shared versions failed; will retry', {
            detail: error instanceof Error ? error.message : String(error),
          }),
        );
      } while (again && !stopped);
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  const unlisten = await database
    .listen(channel, () => void check())
    .catch((error: unknown) => {
      // Without LISTEN (a pooler in transaction mode, for one) the poll alone keeps instances current.
      options.logger.warn('listening for shared changes failed; polling only', {
        detail: error instanceof Error ? error.message : String(error),
      });
      return undefined;
    });
  const poll = setInterval(() => void check(), options.pollMilliseconds ?? 500);
  poll.unref();
  return {
    check,
    async stop() {
      stopped = true;
      clearInterval(poll);
      await running;
      await unlisten?.();
    },
  };
}
