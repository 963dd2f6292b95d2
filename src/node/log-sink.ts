/**
 * Log lines for stdout, gathered and written with one write per turn of the event loop. When
 * stdout is a file, every write is a synchronous system call, and one per request line cost
 * about 4 % of a busy Baton's time. Whatever is still gathered is written on exit (an uncaught
 * error included); only a SIGKILL can lose the lines of the last turn.
 */
export function batchedStdout(): (line: string) => void {
  const pending: string[] = [];
  const flush = (): void => {
    if (pending.length > 0) process.stdout.write(pending.splice(0).join(''));
  };
  process.on('exit', flush);
  return (line) => {
    if (pending.push(line) === 1) setImmediate(flush);
  };
}
