import type { Clock } from '../core/ports.js';

/** The real wall clock. */
export const systemClock: Clock = { now: () => Date.now() };
