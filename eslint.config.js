import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// eslint's flat config is loaded as the module's default export.
// eslint-disable-next-line no-restricted-syntax
export default tseslint.config(
  { ignores: ['dist/', 'packages/*/dist/', 'node_modules/', '.baton-data/', 'coverage/', '.wrangler/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' }],
      // One import statement per module, and none kept at run time only for its types.
      'no-duplicate-imports': 'error',
      '@typescript-eslint/no-import-type-side-effects': 'error',
    },
  },
  {
    // The core is the domain: no runtime, HTTP or SQL imports.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            'node:*',
            'hono',
            'hono/*',
            'postgres',
            '@electric-sql/*',
            '**/http/*',
            '**/adapters/*',
            '**/node/*',
            '**/workers/*',
            '**/cli/*',
          ],
        },
      ],
    },
  },
);
