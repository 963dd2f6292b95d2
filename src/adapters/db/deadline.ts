import { StorageUnavailableError } from '../../core/errors.js';

/**
 * Rejects with StorageUnavailableError when `work` fails or takes longer than `ms`, so a request
 * never waits on an unreachable database for long. The work may still finish later; callers
 * only ever act on what has resolved in time.
 */
export function withinDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StorageUnavailableError(new Error(`no answer within ${ms} ms`))), ms);
  });
  return Promise.race([
    work.catch((cause: unknown) =>
      Promise.reject(cause instanceof StorageUnavailableError ? cause : new StorageUnavailableError(cause)),
    ),
    deadline,
  ]).finally(() => clearTimeout(timer));
}
