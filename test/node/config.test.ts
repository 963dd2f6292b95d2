import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { loadConfig } from '../../src/node/config.js';

function problems(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('configuration was accepted');
}

describe('configuration', () => {
  it('has working defaults for the embedded setup', () => {
    expect(loadConfig({})).toEqual({
      port: 8080,
      host: '127.0.0.1',
      dataDir: '.baton-data',
      registryFile: 'policies/registry.json',
      policyDir: 'policies',
      detailTypesDir: 'schemas/authorization-details',
      signingAlg: 'EdDSA',
      limits: {
        maxChainLength: 4,
        maxTokenLifetimeSeconds: 300,
        codeLifetimeSeconds: 60,
        refreshTokenLifetimeSeconds: 86400,
        maxSubAgentLifetimeSeconds: 3600,
        clockToleranceSeconds: 30,
        maxAssertionLifetimeSeconds: 300,
        maxAuthorizationDetails: 16,
        maxTokenBytes: 8192,
      },
      maxBodyBytes: 65536,
      checkpointIntervalSeconds: 60,
      workers: 1,
      drainTimeoutSeconds: 10,
      rateLimitPerSecond: 1000,
      refusalIntervalSeconds: 60,
      agentSweepIntervalSeconds: 60,
      auditSinkIntervalMs: 1000,
      auditSinkBackoffMs: 1000,
      auditSinkMaxBackoffMs: 60_000,
      auditSinkLeaseMs: 30_000,
      auditSinkTimeoutMs: 10_000,
      cimdAllowHttpLoopback: false,
    });
  });

  it('reads the environment', () => {
    const config = loadConfig({
      PORT: '9000',
      DATABASE_URL: 'postgres://db/baton',
      BATON_ISSUER: 'https://sts.example',
      BATON_MAX_CHAIN_LENGTH: '2',
    });
    expect(config).toMatchObject({
      port: 9000,
      databaseUrl: 'postgres://db/baton',
      issuer: 'https://sts.example',
      limits: { maxChainLength: 2 },
    });
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT: must be an integer from 0 to 65535 (got "eighty")'],
    [{ PORT: '70000' }, 'PORT: must be an integer from 0 to 65535 (got "70000")'],
    [{ BATON_MAX_CHAIN_LENGTH: '0' }, 'BATON_MAX_CHAIN_LENGTH: must be an integer from 1 to 16 (got "0")'],
    [{ BATON_MAX_TOKEN_LIFETIME: '1.5' }, 'BATON_MAX_TOKEN_LIFETIME: must be an integer from 10 to 86400 (got "1.5")'],
    [{ BATON_SIGNING_ALG: 'HS256' }, 'BATON_SIGNING_ALG: must be EdDSA or ES256 (got "HS256")'],
    [{ BATON_ISSUER: 'ftp://x' }, 'BATON_ISSUER: must be an http(s) URL (got "ftp://x")'],
    [
      { BATON_ISSUER: 'https://sts.example/' },
      'BATON_ISSUER: must have no trailing slash, query or fragment (got "https://sts.example/")',
    ],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL: must be a postgres:// or postgresql:// URL'],
    [
      { BATON_SIGNING_KEYS: '{}', BATON_SIGNING_KEYS_FILE: 'k.json' },
      'BATON_SIGNING_KEYS and BATON_SIGNING_KEYS_FILE: set one, not both',
    ],
    [{ BATON_WORKERS: '0' }, 'BATON_WORKERS: must be an integer from 1 to 64 (got "0")'],
    [
      { BATON_WORKERS: '2' },
      'BATON_WORKERS: more than 1 needs DATABASE_URL (the embedded database belongs to one process)',
    ],
    [{ BATON_DRAIN_TIMEOUT: '0' }, 'BATON_DRAIN_TIMEOUT: must be an integer from 1 to 3600 (got "0")'],
    [{ BATON_DRAIN_TIMEOUT: '3601' }, 'BATON_DRAIN_TIMEOUT: must be an integer from 1 to 3600 (got "3601")'],
    [{ BATON_DRAIN_TIMEOUT: '2.5' }, 'BATON_DRAIN_TIMEOUT: must be an integer from 1 to 3600 (got "2.5")'],
  ])('refuses %j', (env, message) => {
    expect(problems(env)).toEqual([message]);
  });

  it('reports every bad value at once', () => {
    expect(problems({ PORT: '-1', BATON_CLOCK_TOLERANCE: 'soon' })).toEqual([
      'PORT: must be an integer from 0 to 65535 (got "-1")',
      'BATON_CLOCK_TOLERANCE: must be an integer from 0 to 300 (got "soon")',
    ]);
  });

  it('reads a config file, names it in errors, and lets the environment win', () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-config-'));
    const file = join(dir, 'baton.json');
    writeFileSync(file, JSON.stringify({ port: 7000, maxChainLength: 3 }));
    expect(loadConfig({ BATON_CONFIG: file, PORT: '7001' })).toMatchObject({
      port: 7001,
      limits: { maxChainLength: 3 },
    });
    writeFileSync(file, JSON.stringify({ maxChainLength: 99, colour: 'blue' }));
    expect(problems({ BATON_CONFIG: file })).toEqual([
      `${file}: colour: unknown setting`,
      `${file}: maxChainLength: must be an integer from 1 to 16`,
    ]);
    writeFileSync(file, '{"constructor": 1, "toString": "x", "__proto__": {"port": 1}}');
    expect(problems({ BATON_CONFIG: file })).toEqual([
      `${file}: constructor: unknown setting`,
      `${file}: toString: unknown setting`,
      `${file}: __proto__: unknown setting`,
    ]);
    writeFileSync(file, '{ nope');
    expect(problems({ BATON_CONFIG: file })[0]).toMatch(new RegExp(`^BATON_CONFIG \\(${file}\\): .*JSON`));
  });
});
