// Offline verification of Baton access tokens by the SDK (packages/sdk), warm key cache, one core:
// batonVerifier().verify() flat out over distinct tokens, beside jose's jwtVerify with the key
// in hand (the floor: one EdDSA check and the claim checks jose makes). Run: `npx tsc -p
// packages/sdk/tsconfig.json && node bench/sdk-verify.mjs`.
// Options: --duration SECONDS (default 5), --tokens N distinct tokens cycled (default 1000).

/* global Response */
import { stdout } from 'node:process';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { batonVerifier } from '../packages/sdk/dist/index.js';

const { values } = parseArgs({
  options: { duration: { type: 'string', default: '5' }, tokens: { type: 'string', default: '1000' } },
});
const durationMs = Number(values.duration) * 1000;
const count = Number(values.tokens);
const issuer = 'https://baton.bench';
const audience = 'https://payments.example';

const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-1', alg: 'EdDSA', use: 'sig' };
const now = Math.floor(Date.now() / 1000);
const tokens = await Promise.all(
  Array.from({ length: count }, (_, i) =>
    new SignJWT({
      client_id: 'agent-platform',
      tenant: 'acme',
      scope: 'payments:read payments:transfer',
      act: { sub: 'payments-subagent', act: { sub: 'orchestrator' } },
    })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'bench-1', typ: 'at+jwt' })
      .setIssuer(issuer)
      .setSubject(`user-${i}`)
      .setAudience(audience)
      .setJti(`jti-${i}`)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(privateKey),
  ),
);
// The key set is served from memory: what is measured is verification with a warm cache, not HTTP.
const verifierOf = (rememberTokens) =>
  batonVerifier({
    issuer,
    jwksUri: `${issuer}/.well-known/jwks.json`,
    fetch: () => Promise.resolve(Response.json({ keys: [jwk] })),
    rememberTokens,
  });
// Tokens seen before (a resource server receives the same token on every call of an agent's
// session) cost no signature check; tokens never seen before cost one each.
const remembering = verifierOf(10_000);
const fresh = verifierOf(0);

/** Verifications per second of `verify` over the tokens, after a warm-up, for the duration. */
async function rate(verify) {
  for (let i = 0; i < Math.min(count, 500); i++) await verify(tokens[i]);
  let done = 0;
  const started = performance.now();
  while (performance.now() - started < durationMs) {
    for (let i = 0; i < 100; i++) await verify(tokens[(done + i) % count]);
    done += 100;
  }
  return done / ((performance.now() - started) / 1000);
}

const sdk = await rate((token) => remembering.verify(token, { audience }));
const cold = await rate((token) => fresh.verify(token, { audience }));
const floor = await rate((token) =>
  jwtVerify(token, publicKey, { issuer, audience, typ: 'at+jwt', algorithms: ['EdDSA'] }),
);
const format = (n) => Math.round(n).toLocaleString('en-US');
stdout.write(
  `SDK batonVerifier().verify, warm JWKS cache, ${format(count)} tokens seen before: ${format(sdk)} tokens/s (target >= 20,000)\n`,
);
stdout.write(
  `SDK batonVerifier().verify, warm JWKS cache, every token new (rememberTokens: 0): ${format(cold)} tokens/s\n`,
);
stdout.write(
  `jose jwtVerify with the key in hand (floor): ${format(floor)} tokens/s; new-token SDK/floor = ${(cold / floor).toFixed(3)}\n`,
);
