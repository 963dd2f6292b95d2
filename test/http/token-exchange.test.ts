import { createRemoteJWKSet, customFetch, decodeJwt, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSecret, mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { grants, postToken, tokenTypes } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton();
});
afterAll(async () => {
  await baton?.close();
});

const alice = (options: Parameters<typeof mintUserToken>[1] extends infer O ? Partial<O> : never = {}) =>
  mintUserToken('alice', { audience: baton.issuer, ...options });
const assertion = (agent: string) => mintAgentAssertion(agent, baton.issuer);

/** alice → orchestrator at payments; returns the issued token. */
async function firstHop(extra: Record<string, string> = {}): Promise<string> {
  const result = await postToken(baton, {
    grant_type: grants.exchange,
    subject_token: await alice(),
    subject_token_type: tokenTypes.jwt,
    actor_token: await assertion('orchestrator'),
    actor_token_type: tokenTypes.jwt,
    audience: 'payments',
    scope: 'payments:read payments:transfer',
    ...extra,
  });
  expect(result.status, JSON.stringify(result.body)).toBe(200);
  return result.body.access_token as string;
}

async function secondHop(subject: string, extra: Record<string, string> = {}) {
  return postToken(baton, {
    grant_type: grants.exchange,
    subject_token: subject,
    subject_token_type: tokenTypes.accessToken,
    actor_token: await assertion('payments-subagent'),
    actor_token_type: tokenTypes.jwt,
    ...extra,
  });
}

describe('the delegation chain alice → orchestrator → payments-subagent', () => {
  it('is driven by a stock OAuth client and verifies against the published JWKS', async () => {
    const issuer = new URL(baton.issuer);
    // The client's requests go to the app, as they would over a socket.
    const send = (url: string, init: oauth.CustomFetchOptions<string, unknown>) =>
      baton.fetch(url, init as RequestInit);
    const options = { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: send };
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { ...options, algorithm: 'oauth2' }),
    );
    const client: oauth.Client = { client_id: 'agent-platform' };
    const auth = oauth.ClientSecretBasic(demoSecret('agent-platform'));
    const exchange = async (params: Record<string, string>) =>
      oauth.processGenericTokenEndpointResponse(
        as,
        client,
        await oauth.genericTokenEndpointRequest(as, client, auth, grants.exchange, params, options),
      );

    const first = await exchange({
      subject_token: await alice(),
      subject_token_type: tokenTypes.jwt,
      actor_token: await assertion('orchestrator'),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
      scope: 'payments:read payments:transfer',
    });
    expect(first.token_type).toBe('bearer');
    expect(first.issued_token_type).toBe(tokenTypes.accessToken);
    expect(first.scope).toBe('payments:read payments:transfer');
    expect(first.expires_in).toBe(300);

    const second = await exchange({
      subject_token: first.access_token,
      subject_token_type: tokenTypes.accessToken,
      actor_token: await assertion('payments-subagent'),
      actor_token_type: tokenTypes.jwt,
      scope: 'payments:transfer',
    });

    const jwks = createRemoteJWKSet(new URL(as.jwks_uri as string), { [customFetch]: baton.fetch });
    const one = await jwtVerify(first.access_token, jwks, {
      issuer: baton.issuer,
      typ: 'at+jwt',
      audience: 'https://payments.example',
    });
    const two = await jwtVerify(second.access_token, jwks, {
      issuer: baton.issuer,
      typ: 'at+jwt',
      audience: 'https://payments.example',
    });

    expect(one.protectedHeader).toEqual({ alg: 'EdDSA', kid: baton.signingJwks.keys[0]?.kid, typ: 'at+jwt' });
    expect(one.payload).toEqual({
      iss: baton.issuer,
      sub: 'alice',
      aud: 'https://payments.example',
      exp: expect.any(Number),
      iat: expect.any(Number),
      jti: expect.any(String),
      client_id: 'agent-platform',
      tenant: 'acme',
      scope: 'payments:read payments:transfer',
      act: { sub: 'orchestrator' },
    });
    expect(two.payload).toEqual({
      iss: baton.issuer,
      sub: 'alice',
      aud: 'https://payments.example',
      exp: one.payload.exp,
      iat: expect.any(Number),
      jti: expect.any(String),
      client_id: 'agent-platform',
      tenant: 'acme',
      scope: 'payments:transfer',
      act: { sub: 'payments-subagent', act: { sub: 'orchestrator' } },
    });
    expect((one.payload.exp as number) - (one.payload.iat as number)).toBe(300);
  });

  it('records each token with its parent and root grant', async () => {
    const first = await firstHop();
    const second = await secondHop(first);
    expect(second.status).toBe(200);
    const { store } = baton.storage;
    const a = decodeJwt(first);
    const b = decodeJwt(second.body.access_token as string);
    const rowA = await store.findToken('acme', a.jti as string);
    const rowB = await store.findToken('acme', b.jti as string);
    expect(rowA).toEqual({
      tenant: 'acme',
      jti: a.jti,
      parentJti: null,
      rootGrant: a.jti,
      subject: 'alice',
      actor: 'orchestrator',
      clientId: 'agent-platform',
      expiresAt: new Date((a.exp as number) * 1000),
    });
    expect(rowB).toEqual({
      tenant: 'acme',
      jti: b.jti,
      parentJti: a.jti,
      rootGrant: a.jti,
      subject: 'alice',
      actor: 'payments-subagent',
      clientId: 'agent-platform',
      expiresAt: new Date((b.exp as number) * 1000),
    });
  });

  it('answers with no-store and every RFC 8693 response member', async () => {
    const result = await postToken(baton, {
      grant_type: grants.exchange,
      subject_token: await alice(),
      subject_token_type: tokenTypes.jwt,
      actor_token: await assertion('orchestrator'),
      actor_token_type: tokenTypes.jwt,
      resource: 'https://payments.example',
      scope: 'payments:read',
      requested_token_type: tokenTypes.jwt,
    });
    expect(result.status).toBe(200);
    expect(result.headers.get('cache-control')).toBe('no-store');
    expect(result.body).toEqual({
      access_token: expect.any(String),
      issued_token_type: tokenTypes.jwt,
      token_type: 'Bearer',
      expires_in: 300,
      scope: 'payments:read',
    });
  });

  it('lets the current actor narrow its own token without adding a hop', async () => {
    const first = await firstHop();
    const narrowed = await postToken(baton, {
      grant_type: grants.exchange,
      subject_token: first,
      subject_token_type: tokenTypes.accessToken,
      actor_token: await assertion('orchestrator'),
      actor_token_type: tokenTypes.jwt,
      scope: 'payments:read',
    });
    expect(narrowed.status).toBe(200);
    expect(decodeJwt(narrowed.body.access_token as string)).toMatchObject({
      sub: 'alice',
      scope: 'payments:read',
      act: { sub: 'orchestrator' },
    });
  });

  it('accepts an agent token from client credentials as actor_token, reusable', async () => {
    const agentToken = await postToken(
      baton,
      { grant_type: 'client_credentials', ...(await asAgent('orchestrator')) },
      {},
    );
    expect(agentToken.status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const result = await postToken(baton, {
        grant_type: grants.exchange,
        subject_token: await alice(),
        subject_token_type: tokenTypes.jwt,
        actor_token: agentToken.body.access_token as string,
        actor_token_type: tokenTypes.accessToken,
        audience: 'https://payments.example',
      });
      expect(result.status).toBe(200);
      expect(decodeJwt(result.body.access_token as string)).toMatchObject({
        act: { sub: 'orchestrator' },
        scope: 'payments:read payments:transfer',
      });
    }
  });

  it('makes an agent that authenticates as itself the actor without an actor token', async () => {
    const result = await postToken(
      baton,
      {
        grant_type: grants.exchange,
        subject_token: await alice(),
        subject_token_type: tokenTypes.jwt,
        audience: 'payments',
        scope: 'payments:read',
        ...(await asAgent('orchestrator')),
      },
      {},
    );
    expect(result.status).toBe(200);
    expect(decodeJwt(result.body.access_token as string)).toMatchObject({
      client_id: 'orchestrator',
      act: { sub: 'orchestrator' },
    });
  });

  it('honours a may_act claim that names the actor', async () => {
    const result = await postToken(baton, {
      grant_type: grants.exchange,
      subject_token: await alice({ mayAct: 'orchestrator' }),
      subject_token_type: tokenTypes.jwt,
      actor_token: await assertion('orchestrator'),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    });
    expect(result.status).toBe(200);
  });
});

/** private_key_jwt client authentication (RFC 7523) as a demo agent, as body parameters. */
async function asAgent(agent: string): Promise<Record<string, string>> {
  return {
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: await mintAgentAssertion(agent, baton.issuer),
  };
}

describe('the lifetime of an issued token', () => {
  it('is exactly the configured one, iat to exp and in expires_in, however long the exchange took', async () => {
    // Every reading of this clock is 700 ms after the last: an exchange crosses second boundaries.
    let now = Date.now();
    const slow = await memoryBaton({}, { clock: { now: () => (now += 700) } });
    try {
      const result = await postToken(
        slow,
        {
          grant_type: grants.exchange,
          subject_token: await mintUserToken('alice', { audience: slow.issuer }),
          subject_token_type: tokenTypes.jwt,
          actor_token: await mintAgentAssertion('orchestrator', slow.issuer),
          actor_token_type: tokenTypes.jwt,
          audience: 'payments',
        },
        { authorization: `Basic ${btoa(`agent-platform:${demoSecret('agent-platform')}`)}` },
      );
      expect(result.status, JSON.stringify(result.body)).toBe(200);
      expect(result.body.expires_in).toBe(300);
      const claims = decodeJwt(result.body.access_token as string);
      expect((claims.exp as number) - (claims.iat as number)).toBe(300);
    } finally {
      await slow.close();
    }
  });
});
