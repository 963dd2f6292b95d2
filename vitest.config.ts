import { defineConfig } from 'vitest/config';
import { isKnownDriverFault, isLostConnection } from './src/node/driver-guard.js';

export const config = defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    // Everything Baton logs during the run is scanned for tokens and secrets at the end.
    globalSetup: ['test/support/log-scan.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // As the entry point does (src/node/v8-flags.ts): no inlined JS-to-Wasm calls on Node 20.
    execArgv: ['--no-turbo-inline-js-wasm-calls'],
    // The outage test cuts PostgreSQL connections, which can trip a known postgres.js fault
    // (see src/node/driver-guard.ts); Baton's entry point survives it, so the test run does too.
    onUnhandledError: (error) => !(isKnownDriverFault(error) || isLostConnection(error)),
  },
});

// vitest reads its configuration from the module's default export.
// eslint-disable-next-line no-restricted-syntax
export default config;
