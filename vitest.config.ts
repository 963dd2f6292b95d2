import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { isKnownDriverFault, isLostConnection } from './src/node/driver-guard.js';

export const config = defineConfig({
  // Examples import the SDK by its package name; tests run them against its source.
  resolve: { alias: { '@baton-sts/sdk': fileURLToPath(new URL('./packages/sdk/src/index.ts', import.meta.url)) } },
  test: {
    include: ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'examples/**/*.test.ts'],
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
