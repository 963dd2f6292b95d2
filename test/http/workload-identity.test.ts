import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintUserToken } from '../../src/cli/demo-kit.js';
import { jwtBearerAssertionType } from '../../src/core/clients/client-auth.js';
import { grants, postToken, tokenTypes } from '../support/baton.js';
import { consentedCode, redeemCode } from '../support/consent.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

const kubernetes = 'https://kubernetes.acme.test';
const spiffe = 'https://spiffe.acme.test';
const orchestratorAccount = 'system:serviceaccount:payments:orchestrator';

let baton: MemoryBaton;
let key: CryptoKey;
let otherKey: CryptoKey;
const registryDir = mkdtempSync(join(tmpdir(), 'baton-registry-'));
const registryFile = join(registryDir, 'registry.json');

beforeAll(async () => {
  const pair = await generateKeyPair('EdDSA', { extractable: true });
  key = pair.privateKey;
  otherKey = (await generateKeyPair('EdDSA')).privateKey;
  const jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'workload-1', alg: 'EdDSA', use: 'sig' }] };
  cpSync('policies/registry.json', registryFile);
  const registry = JSON.parse(readFileSync(registryFile, 'utf8')) as Record<string, unknown[]>;
  // An agent with no key of its own: only its workload identity proves it.
  registry.agents?.push({
    id: 'batch-worker',
    tenant: 'acme',
    name: 'Batch worker',
    owner: 'alice',
    scope: ['payments:read'],
  });
  registry.workload_issuers = [
    {
      issuer: kubernetes,
      tenant: 'acme',
      jwks,
      subjects: [
        { subject: orchestratorAccount, agent: 'orchestrator' },
        { subject: 'system:serviceaccount:batch:*', agent: 'batch-worker' },
      ],
    },
    {
      issuer: spiffe,
      tenant: 'acme',
      jwks,
      audiences: ['spiffe://baton.acme.test'],
      typ: 'JWT',
      subjects: [{ subject: 'spiffe://acme.test/ns/payments/sa/*', agent: 'payments-subagent' }],
    },
  ];
  writeFileSync(registryFile, JSON.stringify(registry));
  baton = await memoryBaton({ BATON_REGISTRY: registryFile });
});
afterAll(async () => {
  await baton?.close();
  rmSync(registryDir, { recursive: true, force: true });
});

const now = () => Math.floor(Date.now() / 1000);

/** A workload token of the Kubernetes issuer; `undefined` removes a claim. */
async function workloadToken(
  claims: Record<string, unknown> = {},
  options: { readonly signer?: CryptoKey; readonly typ?: string } = {},
): Promise<string> {
  const payload: JWTPayload = {
    iss: kubernetes,
    sub: orchestratorAccount,
    aud: baton.issuer,
    iat: now(),
    exp: now() + 3600,
    jti: 'kubernetes-token-1',
    ...claims,
  };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'EdDSA', kid: 'workload-1', ...(options.typ === undefined ? {} : { typ: options.typ }) })
    .sign(options.signer ?? key);
}

const exchange = async (actorToken: string) =>
  postToken(baton, {
    grant_type: grants.exchange,
    subject_token: await mintUserToken('alice', { audience: baton.issuer }),
    subject_token_type: tokenTypes.jwt,
    actor_token: actorToken,
    actor_token_type: tokenTypes.jwt,
    audience: 'payments',
    scope: 'payments:read',
  });

describe('a workload identity token as actor_token', () => {
  it('proves the agent its subject maps to, and may be presented again', async () => {
    const token = await workloadToken();
    for (const attempt of [1, 2]) {
      const result = await exchange(token);
      expect(result.status, `attempt ${attempt}: ${JSON.stringify(result.body)}`).toBe(200);
      const claims = decodeJwt(result.body.access_token as string);
      expect(claims.sub).toBe('alice');
      expect(claims.act).toEqual({ sub: 'orchestrator' });
    }
  });

  it('maps a "*" segment to one whole segment only', async () => {
    const spiffeToken = (sub: string) =>
      workloadToken({ iss: spiffe, sub, aud: 'spiffe://baton.acme.test' }, { typ: 'JWT' });
    const ok = await exchange(await spiffeToken('spiffe://acme.test/ns/payments/sa/settlement'));
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(decodeJwt(ok.body.access_token as string).act).toEqual({ sub: 'payments-subagent' });
    for (const sub of ['spiffe://acme.test/ns/payments/sa/a/b', 'spiffe://acme.test/ns/payments/sa/']) {
      const refused = await exchange(await spiffeToken(sub));
      expect({ sub, status: refused.status, body: refused.body }).toEqual({
        sub,
        status: 400,
        body: { error: 'invalid_request', error_description: 'actor_token subject is not mapped to an agent' },
      });
    }
  });

  // The audit reason adds the detail kept for logs, when there is one.
  it.each<[string, () => Promise<string>, string, string | undefined]>([
    [
      'an untrusted issuer',
      () => workloadToken({ iss: 'https://kubernetes.initech.test' }),
      'actor_token is issued neither by Baton nor by a registered agent',
      undefined,
    ],
    [
      'a subject mapped to no agent',
      () => workloadToken({ sub: 'system:serviceaccount:payments:intruder' }),
      'actor_token subject is not mapped to an agent',
      undefined,
    ],
    [
      'a wrong audience',
      () => workloadToken({ aud: 'https://elsewhere.test' }),
      'actor_token is not intended for this audience',
      'unexpected "aud" claim value',
    ],
    [
      'an expired token',
      () => workloadToken({ iat: now() - 7200, exp: now() - 3600 }),
      'actor_token is expired',
      '"exp" claim timestamp check failed',
    ],
    [
      'a token without exp',
      () => workloadToken({ exp: undefined }),
      'actor_token lacks the "exp" claim',
      'missing required "exp" claim',
    ],
    [
      'a subject that is not a string',
      () => workloadToken({ sub: 42 }),
      'actor_token has an invalid "sub" claim: must be a non-empty string',
      undefined,
    ],
    [
      'another key',
      () => workloadToken({}, { signer: otherKey }),
      'actor_token has an invalid signature',
      'signature verification failed',
    ],
    [
      'a missing typ where the issuer requires one',
      () => workloadToken({ iss: spiffe, sub: 'spiffe://acme.test/ns/payments/sa/x', aud: 'spiffe://baton.acme.test' }),
      'actor_token has an unexpected token type (typ)',
      'unexpected "typ" JWT header value',
    ],
  ])('refuses %s, and audits the refusal', async (_name, token, description, detail) => {
    const before = baton.storage.state.head.seq;
    const result = await exchange(await token());
    expect({ status: result.status, body: result.body }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: description },
    });
    const reason = `invalid_request: ${description}${detail === undefined ? '' : ` (${detail})`}`;
    const entries = baton.auditEntries(before);
    expect(entries.map((e) => [e.type, e.decision, e.reason, e.client, e.actor_chain])).toEqual([
      ['token.exchange', 'refused', reason, 'agent-platform', []],
    ]);
  });
});

describe('a workload identity token in the code flow', () => {
  it('proves the agent the code was issued for', async () => {
    const { code, verifier } = await consentedCode(baton);
    const result = await redeemCode(baton, code, verifier, await workloadToken());
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    expect(decodeJwt(result.body.access_token as string).act).toEqual({ sub: 'orchestrator' });
  });

  it.each<[string, Record<string, unknown>, string]>([
    [
      'a subject mapped to no agent',
      { sub: 'system:serviceaccount:payments:intruder' },
      'actor_token subject is not mapped to an agent',
    ],
    [
      'a subject mapped to another agent',
      { sub: 'system:serviceaccount:batch:nightly' },
      'actor_token does not prove the requested actor',
    ],
  ])('refuses %s', async (_name, claims, description) => {
    const { code, verifier } = await consentedCode(baton);
    const result = await redeemCode(baton, code, verifier, await workloadToken(claims));
    expect({ status: result.status, body: result.body }).toEqual({
      status: 400,
      body: { error: 'invalid_grant', error_description: description },
    });
  });
});

describe('a workload identity token as client assertion', () => {
  const clientCredentials = async (assertion: string, extra: Record<string, string> = {}) =>
    postToken(
      baton,
      {
        grant_type: 'client_credentials',
        client_assertion_type: jwtBearerAssertionType,
        client_assertion: assertion,
        scope: 'payments:read',
        ...extra,
      },
      {},
    );

  it('authenticates an agent that has no key of its own', async () => {
    const token = await workloadToken({ sub: 'system:serviceaccount:batch:nightly' });
    for (const attempt of [1, 2]) {
      const result = await clientCredentials(token);
      expect(result.status, `attempt ${attempt}: ${JSON.stringify(result.body)}`).toBe(200);
      const claims = decodeJwt(result.body.access_token as string);
      expect([claims.sub, claims.client_id, claims.scope]).toEqual(['batch-worker', 'batch-worker', 'payments:read']);
    }
  });

  it.each<[string, () => Promise<string>, Record<string, string>, string]>([
    [
      'a subject mapped to no agent',
      () => workloadToken({ sub: 'system:serviceaccount:payments:intruder' }),
      {},
      'client_assertion subject is not mapped to an agent',
    ],
    [
      'an expired token',
      () => workloadToken({ iat: now() - 7200, exp: now() - 3600 }),
      {},
      'client_assertion is expired',
    ],
    [
      'a client_id naming another client',
      () => workloadToken(),
      { client_id: 'payments-subagent' },
      'client_id does not match the client_assertion',
    ],
  ])('refuses %s', async (_name, token, extra, description) => {
    const result = await clientCredentials(await token(), extra);
    expect({ status: result.status, body: result.body }).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: description },
    });
  });

  it('does not let a keyless agent sign an RFC 7523 assertion of its own', async () => {
    const assertion = await new SignJWT({ jti: 'x' })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'workload-1' })
      .setIssuer('batch-worker')
      .setSubject('batch-worker')
      .setAudience(baton.issuer)
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(key);
    const lines = baton.logger.lines.length;
    const result = await clientCredentials(assertion);
    expect({ status: result.status, body: result.body }).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'client authentication failed' },
    });
    // Client authentication failures are tallied, not audited one by one; the log keeps the detail.
    const logged = baton.logger.lines.slice(lines).map((l) => JSON.stringify(l));
    expect(logged.filter((l) => l.includes('client batch-worker has no keys of its own'))).toHaveLength(1);
  });
});
