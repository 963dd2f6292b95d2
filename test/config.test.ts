import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config.js';

describe('configuration without files (Workers)', () => {
  it('gives the core its limits as one object', () => {
    expect(parseConfig({ BATON_MAX_CHAIN_LENGTH: '2', BATON_MAX_TOKEN_BYTES: '512' }).limits).toEqual({
      maxChainLength: 2,
      maxTokenLifetimeSeconds: 300,
      clockToleranceSeconds: 30,
      maxAssertionLifetimeSeconds: 300,
      maxAuthorizationDetails: 16,
      maxTokenBytes: 512,
      codeLifetimeSeconds: 60,
      refreshTokenLifetimeSeconds: 86400,
      maxSubAgentLifetimeSeconds: 3600,
    });
  });

  it('refuses BATON_CONFIG where no file can be read', () => {
    let problems: readonly string[] = [];
    try {
      parseConfig({ BATON_CONFIG: 'baton.json' });
    } catch (error) {
      if (error instanceof ConfigError) problems = error.problems;
    }
    expect(problems).toEqual([
      'BATON_CONFIG (baton.json): no configuration file can be read here: set each variable instead',
    ]);
  });

  it('reads BATON_CIMD_ALLOW_HTTP_LOOPBACK as true or false (off by default), refusing anything else', () => {
    expect(parseConfig({}).cimdAllowHttpLoopback).toBe(false);
    expect(parseConfig({ BATON_CIMD_ALLOW_HTTP_LOOPBACK: 'true' }).cimdAllowHttpLoopback).toBe(true);
    expect(parseConfig({ BATON_CIMD_ALLOW_HTTP_LOOPBACK: 'false' }).cimdAllowHttpLoopback).toBe(false);
    let problems: readonly string[] = [];
    try {
      parseConfig({ BATON_CIMD_ALLOW_HTTP_LOOPBACK: 'yes' });
    } catch (error) {
      if (error instanceof ConfigError) problems = error.problems;
    }
    expect(problems).toEqual(['BATON_CIMD_ALLOW_HTTP_LOOPBACK: must be true or false (got "yes")']);
  });

  it('takes BATON_CIMD_LOOPBACK_CA_FILE only with the development setting', () => {
    const both = { BATON_CIMD_ALLOW_HTTP_LOOPBACK: 'true', BATON_CIMD_LOOPBACK_CA_FILE: '/dev/ca.pem' };
    expect(parseConfig(both).cimdLoopbackCaFile).toBe('/dev/ca.pem');
    expect(parseConfig({}).cimdLoopbackCaFile).toBeUndefined();
    let problems: readonly string[] = [];
    try {
      parseConfig({ BATON_CIMD_LOOPBACK_CA_FILE: '/dev/ca.pem' });
    } catch (error) {
      if (error instanceof ConfigError) problems = error.problems;
    }
    expect(problems).toEqual([
      'BATON_CIMD_LOOPBACK_CA_FILE: needs BATON_CIMD_ALLOW_HTTP_LOOPBACK=true (development only)',
    ]);
  });
});
