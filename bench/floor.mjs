// The in-process floor of a token exchange: what one exchange must do with no HTTP and no
// database, timed one at a time on this process's event loop. See bench/README.md ("Method").
//
//   npm run build && node bench/floor.mjs [--exchanges 5000]
//
// bench/ratios.mjs measures it in turns with Baton's exchange hop 1 (`prepareFloor`).
//
// Per exchange: the subject token's signature and claims (a user token from the demo identity
// provider, verified with its trusted-issuer key set), the actor token's (an agent token Baton
// issued, verified with Baton's keys), one Cedar `delegate` decision with the shipped policies,
// and one signing of the new token, each with the same Baton functions, keys and crypto path
// (jose and Web Crypto to verify, node:crypto to sign) the token endpoint uses. Every exchange
// asks Cedar about another user of the tenant, so each decision is evaluated, never answered from
// the policy set's memory of earlier ones; and the two tokens are checked in full each time
// (verifyJwt without `remember`).

import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { loadCedarPolicySet } from '../dist/adapters/cedar/cedar-engine.js';
import { nodeSigner } from '../dist/adapters/node-signer.js';
import { generateSigningKeys, importSigningKeys } from '../dist/adapters/signing-keys.js';
import { mintUserToken } from '../dist/cli/demo-kit.js';
import { batonAlgorithms } from '../dist/core/tokens/baton-token.js';
import { randomId } from '../dist/core/secrets.js';
import { signAccessToken, verifyJwt } from '../dist/core/tokens/jwt.js';
import { delegationRequest } from '../dist/core/decisions/policy.js';
import { readJsonFile, readPolicyFolder } from '../dist/node/files.js';
import { compileRegistry } from '../dist/core/registry/compile.js';
import { integerOption, print, readCommandLine } from './harness.mjs';

// As in Baton's entry point (src/node/v8-flags.ts): set before cedar-wasm is loaded.
setFlagsFromString('--no-turbo-inline-js-wasm-calls');
const cedar = await import('@cedar-policy/cedar-wasm/nodejs');

const root = join(import.meta.dirname, '..');
const issuer = 'http://localhost:8080';
/** Exchanges before the timed ones when run alone (bench/ratios.mjs has its own --floor-warmup). */
const warmupExchanges = 1000;

/**
 * The floor's parts, built once: fresh keys, the demo registry, the shipped policies and the two
 * tokens. `run()` then times exchanges one after another on this event loop: `exchanges` of them,
 * or as many as `seconds` allow.
 */
export async function prepareFloor() {
  const keys = await importSigningKeys(await generateSigningKeys('EdDSA'), nodeSigner);
  const registry = await compileRegistry(readJsonFile(join(root, 'policies', 'registry.json')), {
    issuer,
    file: 'policies/registry.json',
  });
  const engine = loadCedarPolicySet(cedar, readPolicyFolder(join(root, 'policies')));
  const clock = { now: () => Date.now() };
  const now = Math.floor(Date.now() / 1000);

  const subjectToken = await mintUserToken('alice', {
    audience: issuer,
    lifetimeSeconds: 3600,
    scope: 'payments:read payments:transfer',
  });
  const idp = registry.issuers.get('https://id.acme.example');
  if (idp === undefined) throw new Error('the demo registry has no trusted issuer https://id.acme.example');
  const actorToken = await signAccessToken(keys, {
    iss: issuer,
    sub: 'orchestrator',
    aud: issuer,
    exp: now + 3600,
    iat: now,
    jti: randomId(),
    client_id: 'orchestrator',
    tenant: 'acme',
  });

  const verifySubject = () =>
    verifyJwt(subjectToken, {
      param: 'subject_token',
      errorCode: 'invalid_request',
      resolve: idp.resolve,
      algorithms: idp.algorithms,
      issuer: idp.issuer,
      audience: idp.audiences,
      requiredClaims: ['sub', 'exp'],
      clock,
      clockToleranceSeconds: 30,
    });
  const verifyActor = () =>
    verifyJwt(actorToken, {
      param: 'actor_token',
      errorCode: 'invalid_request',
      resolve: keys.resolve,
      algorithms: batonAlgorithms,
      issuer,
      typ: 'at+jwt',
      requiredClaims: ['sub', 'exp', 'iat', 'jti', 'tenant', 'client_id'],
      clock,
      clockToleranceSeconds: 30,
    });
  const scope = ['payments:read', 'payments:transfer'];
  const audience = ['https://payments.example'];

  let asked = 0;
  async function exchange() {
    const subject = await verifySubject();
    const actor = await verifyActor();
    asked += 1;
    const decision = engine.evaluate(
      delegationRequest(registry, {
        tenant: 'acme',
        actor: actor.payload.sub,
        user: `${subject.payload.sub}-${asked}`,
        clientId: 'agent-platform',
        audience,
        scope,
        authorizationDetails: [],
        chain: [actor.payload.sub],
      }),
    );
    if (!decision.allowed) throw new Error(`the floor's delegation was denied: ${JSON.stringify(decision)}`);
    const iat = Math.floor(Date.now() / 1000);
    return signAccessToken(keys, {
      iss: issuer,
      sub: subject.payload.sub,
      aud: audience[0],
      exp: iat + 300,
      iat,
      jti: randomId(),
      client_id: 'agent-platform',
      tenant: 'acme',
      scope: scope.join(' '),
      act: { sub: actor.payload.sub },
    });
  }

  return {
    /** Times `exchanges` exchanges, or as many as fit in `seconds`, one after another. */
    async run({ exchanges = Infinity, seconds = Infinity }) {
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      const until = started + seconds * 1000;
      let done = 0;
      while (done < exchanges && performance.now() < until) {
        await exchange();
        done += 1;
      }
      const elapsedMs = performance.now() - started;
      const cpu = process.cpuUsage(cpuBefore);
      return {
        exchanges: done,
        usPerExchange: (elapsedMs * 1000) / done,
        perSecond: (done * 1000) / elapsedMs,
        // Web Crypto runs on libuv's thread pool, so the process may use more than the elapsed time.
        cpuUsPerExchange: (cpu.user + cpu.system) / done,
      };
    },
  };
}

const usage = `usage: node bench/floor.mjs [--exchanges N]      (after npm run build)

  --exchanges N  timed exchanges, after ${warmupExchanges} untimed (default 5000)
`;

async function main() {
  const { exchanges } = readCommandLine(usage, { exchanges: { type: 'string', default: '5000' } }, (values) => ({
    exchanges: integerOption('exchanges', values.exchanges, 1, 10_000_000),
  }));
  const floor = await prepareFloor();
  await floor.run({ exchanges: warmupExchanges });
  const result = await floor.run({ exchanges });
  print(
    `in-process floor: ${result.usPerExchange.toFixed(1)} µs per exchange (${Math.round(result.perSecond)}/s on one event loop), ${result.cpuUsPerExchange.toFixed(1)} µs CPU per exchange, ${result.exchanges} exchanges`,
  );
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
