#!/usr/bin/env node
import { createReadStream, existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { sha256Hex } from '../adapters/node-hash.js';
import type { Jwks } from '../core/registry/schema.js';
import { verifyExport } from './audit-verify.js';
import { signedAt, verifyCheckpoint, type Checkpoint } from '../core/audit/checkpoint.js';
import { importPublicJwks } from '../core/tokens/jwks.js';
import { runDemo } from './demo.js';
import { generateSigningKeys } from '../adapters/signing-keys.js';
import { registryJsonSchema } from '../core/registry/json-schema.js';
import { mintAgentAssertion, mintUserToken } from './demo-kit.js';
import { applyRegistryCommand } from './registry-apply.js';
import { openPostgres } from '../adapters/db/postgres.js';
import { loadConfig } from '../node/config.js';

const usage = `usage: baton <command> [options]

commands:
  demo [--url URL]                          walk alice -> orchestrator -> payments-subagent against a running Baton
  mint-user <user> [--tenant acme|globex] [--aud ISSUER] [--scope S] [--may-act AGENT] [--ttl SECONDS]
                                            print a demo identity provider token for a user
  assert <agent> [--aud ISSUER]             print a single-use actor assertion signed with a demo agent key
  schema                                    print the registry's JSON Schema (published as schemas/registry.schema.json)
  keys [--alg EdDSA|ES256]                  print a new private signing key set (current and next) for BATON_SIGNING_KEYS
  registry apply <file> [--dry-run] [--database URL]
                                            show what the registry file changes in the stored registry (DATABASE_URL,
                                            BATON_DATABASE_SCHEMA, BATON_ISSUER as the server reads them) and apply it
                                            in one edit; --dry-run only shows it. The same file again changes nothing
  audit verify <export.jsonl> --key <audit-keys.json> [--checkpoints DIR] [--witness FILE]
                                            verify an audit export offline against the audit keys (GET /audit/keys),
                                            its checkpoints and those published in DIR; exits 1 naming the first bad
                                            entry or the checkpoint it contradicts. FILE keeps the newest checkpoint
                                            seen: an older one later is refused, and FILE is updated when valid

--url and --aud default to http://localhost:$PORT (PORT defaults to 8080).`;

/** The checkpoints published in a directory (`<size>.jws` files, as Baton writes them). */
function readPublished(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => /^\d+\.jws$/.test(n))
    .sort()
    .map((n) => readFileSync(join(dir, n), 'utf8').trim());
}

/** The checkpoint a witness file holds, checked against the audit keys; none before the first run. */
async function readWitness(file: string, jwks: Jwks): Promise<Checkpoint | undefined> {
  if (!existsSync(file)) return undefined;
  const saved = JSON.parse(readFileSync(file, 'utf8')) as { seq?: unknown; hash?: unknown; jws?: unknown };
  if (typeof saved.jws !== 'string') throw new Error(`witness file ${file} holds no checkpoint`);
  const checkpoint = await verifyCheckpoint(await importPublicJwks(jwks), saved.jws).catch((error: unknown) => {
    throw new Error(
      `witness file ${file}: its checkpoint does not verify with the audit keys (${error instanceof Error ? error.message : String(error)})`,
    );
  });
  if (checkpoint.seq !== saved.seq || checkpoint.hash !== saved.hash)
    throw new Error(`witness file ${file}: seq or hash differ from its signed checkpoint`);
  return checkpoint;
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      aud: { type: 'string' },
      tenant: { type: 'string', default: 'acme' },
      alg: { type: 'string', default: 'EdDSA' },
      key: { type: 'string' },
      checkpoints: { type: 'string' },
      witness: { type: 'string' },
      scope: { type: 'string' },
      'may-act': { type: 'string' },
      ttl: { type: 'string' },
      database: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, name] = positionals;
  const base = `http://localhost:${process.env.PORT ?? '8080'}`;
  if (values.help === true || command === undefined) {
    process.stdout.write(`${usage}\n`);
    return command === undefined && values.help !== true ? 2 : 0;
  }
  switch (command) {
    case 'demo':
      await runDemo(values.url ?? base, (line) => process.stdout.write(`${line}\n`));
      return 0;
    case 'mint-user': {
      if (name === undefined) throw new Error('mint-user needs a user name, for example: baton mint-user alice');
      const ttl = values.ttl === undefined ? undefined : Number.parseInt(values.ttl, 10);
      if (ttl !== undefined && !(ttl > 0)) throw new Error('--ttl must be a positive number of seconds');
      const token = await mintUserToken(name, {
        tenant: values.tenant,
        audience: values.aud ?? base,
        ...(values.scope === undefined ? {} : { scope: values.scope }),
        ...(values['may-act'] === undefined ? {} : { mayAct: values['may-act'] }),
        ...(ttl === undefined ? {} : { lifetimeSeconds: ttl }),
      });
      process.stdout.write(`${token}\n`);
      return 0;
    }
    case 'assert':
      if (name === undefined) throw new Error('assert needs an agent id, for example: baton assert orchestrator');
      process.stdout.write(`${await mintAgentAssertion(name, values.aud ?? base)}\n`);
      return 0;
    case 'keys': {
      if (values.alg !== 'EdDSA' && values.alg !== 'ES256') throw new Error('--alg must be EdDSA or ES256');
      process.stdout.write(`${JSON.stringify(await generateSigningKeys(values.alg))}\n`);
      return 0;
    }
    case 'audit': {
      const file = positionals[2];
      if (name !== 'verify' || file === undefined || values.key === undefined)
        throw new Error(
          'usage: baton audit verify <export.jsonl> --key <audit-keys.json> [--checkpoints DIR] [--witness FILE]',
        );
      const jwks = JSON.parse(readFileSync(values.key, 'utf8')) as Jwks;
      const witness = values.witness === undefined ? undefined : await readWitness(values.witness, jwks);
      const published = values.checkpoints === undefined ? [] : readPublished(values.checkpoints);
      // Streamed line by line: an export can be larger than the longest string V8 holds.
      const verdict = await verifyExport(
        createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 }),
        jwks,
        sha256Hex,
        { checkpoints: published, ...(witness === undefined ? {} : { witness }) },
      );
      if (
        verdict.ok &&
        values.witness !== undefined &&
        verdict.newest !== undefined &&
        (witness === undefined || verdict.newest.seq > witness.seq)
      ) {
        const { seq, hash, jws } = verdict.newest;
        // Whole or not at all: a witness file cut short would forget what it saw.
        writeFileSync(
          `${values.witness}.tmp`,
          `${JSON.stringify({ seq, hash, signed_at: signedAt(verdict.newest), jws })}\n`,
        );
        renameSync(`${values.witness}.tmp`, values.witness);
      }
      (verdict.ok ? process.stdout : process.stderr).write(`${verdict.message}\n`);
      return verdict.ok ? 0 : 1;
    }
    case 'registry': {
      const file = positionals[2];
      if (name !== 'apply' || file === undefined)
        throw new Error('usage: baton registry apply <file> [--dry-run] [--database URL]');
      const config = loadConfig(process.env);
      const url = values.database ?? config.databaseUrl;
      if (url === undefined)
        throw new Error(
          'registry apply needs DATABASE_URL or --database (the embedded default applies its file with a reload: SIGHUP or POST /admin/registry/reload)',
        );
      const database = await openPostgres(
        url,
        config.databaseSchema === undefined ? {} : { schema: config.databaseSchema },
      );
      try {
        await applyRegistryCommand(database, file, {
          issuer: config.issuer ?? base,
          dryRun: values['dry-run'] === true,
          write: (line) => process.stdout.write(`${line}\n`),
        });
      } finally {
        await database.close();
      }
      return 0;
    }
    case 'schema':
      process.stdout.write(`${JSON.stringify(registryJsonSchema(), null, 2)}\n`);
      return 0;
    default:
      process.stderr.write(`unknown command ${command}\n${usage}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`baton: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
