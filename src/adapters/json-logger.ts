import type { Logger, LogFields } from '../core/ports.js';
import { currentTrace } from './request-trace.js';

/** One JSON object per line on the given sink (stdout by default). */
export function jsonLogger(write: (line: string) => void, base: LogFields = {}): Logger {
  const emit = (level: string, message: string, fields: LogFields = {}): void => {
    // A line written while a request is served carries its trace, the same IDs as its audit entries.
    const trace = currentTrace();
    const traced = trace === undefined ? {} : { trace_id: trace.traceId, span_id: trace.spanId };
    write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...base, ...traced, ...fields })}\n`);
  };
  return {
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
  };
}
