// What every benchmark harness needs: progress on stderr, clean-ups that run on success, failure
// and Ctrl-C (so no Baton process or bench database outlives the harness), free loopback ports,
// Baton's log tail, and how idle the machine is.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

/** Loopback only: every benchmark talks to its own Baton on this machine. */
export const host = '127.0.0.1';

/** A line of progress on stderr (the results table goes to stdout). */
export const progress = (line) => process.stderr.write(`bench: ${line}\n`);

/** Undo actions, newest last; `runCleanups` pops them. */
export const cleanups = [];
/** Baton processes still running, killed outright if the harness exits without clean-ups. */
export const liveChildren = new Set();
/** Clean-up passes run one after the other, so Ctrl-C during one waits for it instead of exiting halfway. */
let cleaning = Promise.resolve();
let stopping = false;

/** True once Ctrl-C (or SIGTERM) has begun stopping everything: a failing load is then expected. */
export const isStopping = () => stopping;

/** Undoes, newest first, everything registered after the first `keep` clean-ups. */
export function runCleanups(keep = 0) {
  const pass = cleaning.then(async () => {
    while (cleanups.length > keep) {
      const undo = cleanups.pop();
      try {
        await undo();
      } catch (error) {
        progress(`clean-up failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  });
  cleaning = pass;
  return pass;
}

// Last resort if the harness dies without running its clean-ups: never leave a Baton behind.
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    progress(`${signal}: stopping`);
    stopping = true;
    void runCleanups().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

/** A port that is free right now: bind port 0 on loopback, read it, release it. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The last lines of Baton's log; `skipInfo` leaves out the per-request access lines. */
export function logTail(file, { lines = 20, skipInfo = false } = {}) {
  try {
    const all = readFileSync(file, 'utf8').trimEnd().split('\n');
    return (skipInfo ? all.filter((line) => !line.includes('"level":"info"')) : all).slice(-lines).join('\n') || '(nothing)';
  } catch {
    return '(no log)';
  }
}

/** How a child process ended, in words. */
export const describeExit = ({ code, signal }) => (signal === null ? `exit code ${code}` : `signal ${signal}`);

/** The share of all CPUs' time spent idle over the next second. */
export async function idlePercent() {
  const times = () => cpus().reduce((sum, cpu) => ({ idle: sum.idle + cpu.times.idle, all: sum.all + Object.values(cpu.times).reduce((a, b) => a + b, 0) }), { idle: 0, all: 0 });
  const before = times();
  await sleep(1_000);
  const after = times();
  return Math.round((100 * (after.idle - before.idle)) / Math.max(1, after.all - before.all));
}
