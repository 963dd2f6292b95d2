import { readFileSync } from 'node:fs';
import { parseConfig, type Config } from '../config.js';

/** Reads the configuration once from the environment and the file BATON_CONFIG names (see `parseConfig`). */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  return parseConfig(env, (name) => readFileSync(name, 'utf8'));
}
