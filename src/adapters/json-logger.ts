import type { Logger, LogFields } from '../core/ports.js';

/** One JSON object per line on the given sink (stdout by default). */
export function jsonLogger(write: (line: string) => void, base: LogFields = {}): Logger {
  const emit = (level: string, message: string, fields: LogFields = {}): void => {
    write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...base, ...fields })}\n`);
  };
  return {
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
  };
}
