import { z } from 'zod';
import type { Limits } from './core/context.js';

const int = (min: number, max: number, fallback: number) =>
  z.coerce
    .number({ error: `must be an integer from ${min} to ${max}` })
    .int({ error: `must be an integer from ${min} to ${max}` })
    .min(min, { error: `must be an integer from ${min} to ${max}` })
    .max(max, { error: `must be an integer from ${min} to ${max}` })
    .default(fallback);

/** Every setting, with its environment variable; a config file (BATON_CONFIG) may set the same keys. */
const settings = {
  port: ['PORT', int(0, 65535, 8080)],
  host: ['BATON_HOST', z.string().min(1).default('127.0.0.1')],
  issuer: [
    'BATON_ISSUER',
    z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .refine(
        (u) => !u.endsWith('/') && !u.includes('?') && !u.includes('#'),
        'must have no trailing slash, query or fragment',
      )
      .optional(),
  ],
  databaseUrl: [
    'DATABASE_URL',
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
  ],
  databaseSchema: [
    'BATON_DATABASE_SCHEMA',
    z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lowercase SQL identifier')
      .optional(),
  ],
  dataDir: ['BATON_DATA_DIR', z.string().min(1).default('.baton-data')],
  registryFile: ['BATON_REGISTRY', z.string().min(1).default('policies/registry.json')],
  policyDir: ['BATON_POLICY_DIR', z.string().min(1).default('policies')],
  detailTypesDir: ['BATON_AUTHORIZATION_DETAILS_DIR', z.string().min(1).default('schemas/authorization-details')],
  signingKeys: ['BATON_SIGNING_KEYS', z.string().min(1).optional()],
  signingKeysFile: ['BATON_SIGNING_KEYS_FILE', z.string().min(1).optional()],
  auditKeys: ['BATON_AUDIT_KEYS', z.string().min(1).optional()],
  auditKeysFile: ['BATON_AUDIT_KEYS_FILE', z.string().min(1).optional()],
  checkpointDir: ['BATON_CHECKPOINT_DIR', z.string().min(1).optional()],
  signingAlg: ['BATON_SIGNING_ALG', z.enum(['EdDSA', 'ES256'], { error: 'must be EdDSA or ES256' }).default('EdDSA')],
  maxChainLength: ['BATON_MAX_CHAIN_LENGTH', int(1, 16, 4)],
  maxTokenLifetimeSeconds: ['BATON_MAX_TOKEN_LIFETIME', int(10, 86400, 300)],
  codeLifetimeSeconds: ['BATON_CODE_LIFETIME', int(1, 60, 60)],
  refreshTokenLifetimeSeconds: ['BATON_REFRESH_TOKEN_LIFETIME', int(60, 2_592_000, 86_400)],
  maxSubAgentLifetimeSeconds: ['BATON_MAX_SUBAGENT_LIFETIME', int(60, 2_592_000, 3600)],
  clockToleranceSeconds: ['BATON_CLOCK_TOLERANCE', int(0, 300, 30)],
  maxAssertionLifetimeSeconds: ['BATON_MAX_ASSERTION_LIFETIME', int(10, 3600, 300)],
  maxAuthorizationDetails: ['BATON_MAX_AUTHORIZATION_DETAILS', int(1, 256, 16)],
  maxBodyBytes: ['BATON_MAX_BODY_BYTES', int(1024, 10_485_760, 65_536)],
  maxTokenBytes: ['BATON_MAX_TOKEN_BYTES', int(256, 65_536, 8192)],
  checkpointIntervalSeconds: ['BATON_CHECKPOINT_INTERVAL', int(1, 86_400, 60)],
  workers: ['BATON_WORKERS', int(1, 64, 1)],
  drainTimeoutSeconds: ['BATON_DRAIN_TIMEOUT', int(1, 3600, 10)],
  rateLimitPerSecond: ['BATON_RATE_LIMIT', int(0, 1_000_000, 1000)],
  refusalIntervalSeconds: ['BATON_REFUSAL_INTERVAL', int(1, 3600, 60)],
  agentSweepIntervalSeconds: ['BATON_AGENT_SWEEP_INTERVAL', int(1, 86_400, 60)],
  // Audit sinks: how often each instance looks for entries to push, the first retry's wait (doubling
  // up to the maximum), a sink's lease, and the time allowed per request to a sink.
  auditSinkIntervalMs: ['BATON_AUDIT_SINK_INTERVAL_MS', int(50, 60_000, 1000)],
  auditSinkBackoffMs: ['BATON_AUDIT_SINK_BACKOFF_MS', int(10, 60_000, 1000)],
  auditSinkMaxBackoffMs: ['BATON_AUDIT_SINK_MAX_BACKOFF_MS', int(10, 3_600_000, 60_000)],
  auditSinkLeaseMs: ['BATON_AUDIT_SINK_LEASE_MS', int(1000, 600_000, 30_000)],
  auditSinkTimeoutMs: ['BATON_AUDIT_SINK_TIMEOUT_MS', int(100, 60_000, 10_000)],
  // Development only: client metadata documents over plain http from 127.0.0.1, localhost or [::1].
  cimdAllowHttpLoopback: [
    'BATON_CIMD_ALLOW_HTTP_LOOPBACK',
    z
      .union([z.boolean(), z.enum(['true', 'false'])], { error: 'must be true or false' })
      .transform((v) => v === true || v === 'true')
      .default(false),
  ],
  // Development only, with the above: documents over https from those hosts too, trusting this CA (PEM file) there.
  cimdLoopbackCaFile: ['BATON_CIMD_LOOPBACK_CA_FILE', z.string().min(1).optional()],
} as const;

type Settings = typeof settings;
type Values = { [K in keyof Settings]: z.output<Settings[K][1]> };

/** The settings that are the core's `Limits`: handed to it as one object, `config.limits`. */
const limitKeys = {
  maxChainLength: true,
  maxTokenLifetimeSeconds: true,
  clockToleranceSeconds: true,
  maxAssertionLifetimeSeconds: true,
  maxAuthorizationDetails: true,
  maxTokenBytes: true,
  codeLifetimeSeconds: true,
  refreshTokenLifetimeSeconds: true,
  maxSubAgentLifetimeSeconds: true,
} as const satisfies Record<keyof Limits, true>;

/** The validated configuration: every setting, the limits gathered in one object. */
export type Config = Omit<Values, keyof Limits> & { readonly limits: Limits };

/** A configuration that cannot be used; the message names every bad setting. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Validates the configuration, read once: the file named by BATON_CONFIG (JSON, keys as in
 * `settings`), then the environment, which wins. The file is read with `readFile`, which a runtime
 * without files (Workers) does not give. Throws ConfigError naming each bad value and where it
 * came from.
 */
export function parseConfig(
  env: Readonly<Record<string, string | undefined>>,
  readFile?: (name: string) => string,
): Config {
  const problems: string[] = [];
  let file: Record<string, unknown> = {};
  const fileName = env.BATON_CONFIG;
  if (fileName !== undefined && fileName !== '') {
    try {
      if (readFile === undefined) throw new Error('no configuration file can be read here: set each variable instead');
      const parsed: unknown = JSON.parse(readFile(fileName));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('must hold a JSON object');
      file = parsed as Record<string, unknown>;
      for (const key of Object.keys(file)) {
        // Own members only: a file may say "constructor" or "toString", which every object has.
        if (!Object.hasOwn(settings, key)) problems.push(`${fileName}: ${key}: unknown setting`);
      }
    } catch (error) {
      throw new ConfigError([`BATON_CONFIG (${fileName}): ${error instanceof Error ? error.message : String(error)}`]);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, [envName, schema]] of Object.entries(settings)) {
    const fromEnv = env[envName];
    const useEnv = fromEnv !== undefined && fromEnv !== '';
    const raw = useEnv ? fromEnv : file[key];
    const result = (schema as z.ZodType).safeParse(raw);
    if (result.success) out[key] = result.data;
    else {
      const where = useEnv ? envName : `${fileName}: ${key}`;
      const shown =
        typeof raw === 'string' && !envName.includes('KEYS') && !envName.includes('DATABASE')
          ? ` (got ${JSON.stringify(raw.slice(0, 80))})`
          : '';
      problems.push(`${where}: ${result.error.issues[0]?.message ?? 'is invalid'}${shown}`);
    }
  }
  if (out.signingKeys !== undefined && out.signingKeysFile !== undefined)
    problems.push('BATON_SIGNING_KEYS and BATON_SIGNING_KEYS_FILE: set one, not both');
  if (out.auditKeys !== undefined && out.auditKeysFile !== undefined)
    problems.push('BATON_AUDIT_KEYS and BATON_AUDIT_KEYS_FILE: set one, not both');
  if (typeof out.workers === 'number' && out.workers > 1 && out.databaseUrl === undefined)
    problems.push('BATON_WORKERS: more than 1 needs DATABASE_URL (the embedded database belongs to one process)');
  if (out.cimdLoopbackCaFile !== undefined && out.cimdAllowHttpLoopback !== true)
    problems.push('BATON_CIMD_LOOPBACK_CA_FILE: needs BATON_CIMD_ALLOW_HTTP_LOOPBACK=true (development only)');
  if (problems.length > 0) throw new ConfigError(problems);
  const limits: Record<string, unknown> = {};
  const config: Record<string, unknown> = { limits };
  for (const [key, value] of Object.entries(out)) (Object.hasOwn(limitKeys, key) ? limits : config)[key] = value;
  return config as Config;
}
