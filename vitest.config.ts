import { defineConfig } from 'vitest/config';

export const config = defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});

// vitest reads its configuration from the module's default export.
// eslint-disable-next-line no-restricted-syntax
export default config;
