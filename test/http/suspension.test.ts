import { readFileSync } from 'node:fs';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { jwtBearerAssertionType } from '../../src/core/clients/client-auth.js';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { basic, bearerOf, exchangeHop, grants, postJson, postToken, tokenTypes } from '../support/baton.js';
import { isActive, pkce, read, redirectUri, submit, type Page } from '../support/consent.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

// Every grant path refuses a suspended agent, client or user, and an agent past its expiry, with
// the error code of that path; each refusal is audited. Each case is first run with everyone in
// good standing (it must be granted), then again with the suspension or expiry in the registry.

const kubernetes = 'https://kubernetes.acme.test';
const orchestratorAccount = 'system:serviceaccount:payments:orchestrator';
const demo = JSON.parse(readFileSync('policies/registry.json', 'utf8')) as Record<string, unknown>;

let baton: MemoryBaton;
let workloadKey: CryptoKey;
let workloadJwks: unknown;
/** The service clock runs `offset` ms ahead of the wall clock; it only grows (time never runs back). */
let offset = 0;
const clock = { now: () => Date.now() + offset };

/** What a case changes in the registry: suspensions (acme unless named), and agents' expiries. */
interface Standing {
  readonly suspend?: readonly { kind: 'agent' | 'client' | 'user'; id: string; tenant?: string }[];
  /** Agent id → ms from the service clock's now (negative: already expired). */
  readonly expire?: Readonly<Record<string, number>>;
}

async function applyRegistry(standing: Standing = {}): Promise<void> {
  const doc = structuredClone(demo) as { agents: Record<string, unknown>[] } & Record<string, unknown>;
  doc.workload_issuers = [
    {
      issuer: kubernetes,
      tenant: 'acme',
      jwks: workloadJwks,
      subjects: [{ subject: orchestratorAccount, agent: 'orchestrator' }],
    },
  ];
  doc.suspensions = (standing.suspend ?? []).map((s) => ({
    tenant: s.tenant ?? 'acme',
    kind: s.kind,
    id: s.id,
    reason: 'under investigation',
    since: '2026-12-01T09:00:00Z',
  }));
  for (const agent of doc.agents) {
    const inMs = standing.expire?.[agent.id as string];
    if (inMs !== undefined) agent.expires_at = new Date(clock.now() + inMs).toISOString();
  }
  // The whole document, as an operator's edit: a file applied would keep the suspensions in force.
  await baton.registryStore.edit('test', () => doc as never);
}

beforeAll(async () => {
  const pair = await generateKeyPair('EdDSA', { extractable: true });
  workloadKey = pair.privateKey;
  workloadJwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'workload-1', alg: 'EdDSA', use: 'sig' }] };
  baton = await memoryBaton({}, { clock });
});
beforeEach(async () => {
  await applyRegistry();
});
afterAll(async () => {
  await baton?.close();
});

const seconds = () => Math.floor(clock.now() / 1000);

async function workloadToken(): Promise<string> {
  return new SignJWT({
    iss: kubernetes,
    sub: orchestratorAccount,
    aud: baton.issuer,
    iat: seconds(),
    exp: seconds() + 600,
  })
    .setProtectedHeader({ alg: 'EdDSA', kid: 'workload-1' })
    .sign(workloadKey);
}

const alice = () => mintUserToken('alice', { audience: baton.issuer });

/** What a request came to: the status and JSON body, or for a redirect its status and query. */
interface Outcome {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

const outcomeOf = (result: { status: number; body: Record<string, unknown> }): Outcome => ({
  status: result.status,
  body: result.body,
});

/** A redirect back to the client, as its query; or the page's status when it is no redirect. */
function redirected(page: Page & { status?: number }): Outcome {
  if (page.location === null) return { status: 200, body: { page: Object.keys(page.fields).sort().join(' ') } };
  const url = new URL(page.location);
  return { status: 302, body: Object.fromEntries(url.searchParams) };
}

/** The agent's own client-credentials token for Baton, got with its assertion. */
async function agentToken(agent: string): Promise<string> {
  const result = await postToken(
    baton,
    {
      grant_type: 'client_credentials',
      client_assertion_type: jwtBearerAssertionType,
      client_assertion: await mintAgentAssertion(agent, baton.issuer),
    },
    {},
  );
  expect(result.status, JSON.stringify(result.body)).toBe(200);
  return result.body.access_token as string;
}

const exchangeWithActor = async (actorToken: string, actorTokenType: string) =>
  outcomeOf(
    await postToken(baton, {
      grant_type: grants.exchange,
      subject_token: await alice(),
      subject_token_type: tokenTypes.jwt,
      actor_token: actorToken,
      actor_token_type: actorTokenType,
      audience: 'payments',
      scope: 'payments:read',
    }),
  );

/** alice's token delegated to the orchestrator at payments. */
async function firstHop(): Promise<string> {
  const first = await exchangeHop(baton, await alice(), tokenTypes.jwt, 'orchestrator', {
    audience: 'payments',
    scope: 'payments:read payments:transfer',
  });
  expect(first.status, JSON.stringify(first.body)).toBe(200);
  return first.body.access_token as string;
}

const secondHop = async (subject: string) =>
  outcomeOf(await exchangeHop(baton, subject, tokenTypes.accessToken, 'payments-subagent'));

/** The authorization request of the code flow (agent-platform, for the orchestrator unless `agent` is null). */
async function authorizeRequest(agent: string | null = 'orchestrator'): Promise<Page & { verifier: string }> {
  const { verifier, challenge } = pkce();
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: 'agent-platform',
    redirect_uri: redirectUri,
    scope: 'payments:read payments:transfer',
    state: 's1',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(agent === null ? {} : { requested_actor: agent }),
  });
  const page = await read(await baton.fetch(`${baton.url}/oauth2/authorize?${query}`, { redirect: 'manual' }));
  return { ...page, verifier };
}

const signIn = (page: Page) =>
  submit(baton, '/oauth2/authorize/login', page, { username: 'alice', password: 'alice-demo-password' });
const approve = (page: Page) => submit(baton, '/oauth2/authorize/consent', page, { decision: 'approve' });

/** A code alice consented to, for the orchestrator unless `agent` is null. */
async function consentedCode(agent: string | null = 'orchestrator') {
  const start = await authorizeRequest(agent);
  const approved = await approve(await signIn(start));
  const code = approved.location === null ? null : new URL(approved.location).searchParams.get('code');
  if (code === null) throw new Error(`consent did not end in a code: ${approved.location}`);
  return { code, verifier: start.verifier };
}

async function redeem(code: string, verifier: string, agent: string | null = 'orchestrator'): Promise<Outcome> {
  return outcomeOf(
    await postToken(baton, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
      ...(agent === null
        ? {}
        : { actor_token: await mintAgentAssertion(agent, baton.issuer), actor_token_type: tokenTypes.jwt }),
    }),
  );
}

async function refreshToken(agent: string | null = 'orchestrator'): Promise<string> {
  const { code, verifier } = await consentedCode(agent);
  const redeemed = await redeem(code, verifier, agent);
  expect(redeemed.status, JSON.stringify(redeemed.body)).toBe(200);
  return redeemed.body.refresh_token as string;
}

const refresh = async (token: string) =>
  outcomeOf(
    await postToken(
      baton,
      { grant_type: 'refresh_token', refresh_token: token },
      { authorization: basic('agent-platform') },
    ),
  );

const transfer = async (token: string) =>
  outcomeOf(
    await postJson(
      baton,
      '/authorize',
      {
        token,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount: 1, currency: 'EUR' },
        action_id: 'standing-1',
      },
      { authorization: basic('payments') },
    ),
  );

/** The chain alice → orchestrator → payments-subagent at payments: the sub-agent's token. */
async function chainToken(): Promise<string> {
  const second = await secondHop(await firstHop());
  expect(second.status, JSON.stringify(second.body)).toBe(200);
  return second.body.access_token as string;
}

/** What a refusal's audit entry says: type, decision, reason, client, user, actor chain. */
type AuditLine = [string, string, string, string | null, string | null, string[]];

interface Case {
  readonly standing: Standing;
  /** Obtains what the request needs while everyone is in good standing; returns the request. */
  readonly prepare: () => Promise<() => Promise<Outcome>>;
  /** The status of the request when everyone is in good standing. */
  readonly granted: number;
  readonly refused: Outcome;
  readonly audit: readonly AuditLine[];
}

const error = (status: number, code: string, description: string): Outcome => ({
  status,
  body: { error: code, error_description: description },
});
const accessDenied = (description: string): Outcome => ({
  status: 302,
  body: { error: 'access_denied', error_description: description, state: 's1', iss: 'http://baton.test' },
});
const suspend = (kind: 'agent' | 'client' | 'user', id: string): Standing => ({ suspend: [{ kind, id }] });
const expired = (agent: string): Standing => ({ expire: { [agent]: -1000 } });

const cases: Record<string, Case> = {
  // Token exchange: the actor, however proven; the subject user; every actor already in the chain; the client.
  'exchange, actor by assertion suspended': {
    standing: suspend('agent', 'orchestrator'),
    prepare: async () => async () =>
      exchangeWithActor(await mintAgentAssertion('orchestrator', baton.issuer), tokenTypes.jwt),
    granted: 200,
    refused: error(400, 'invalid_request', 'agent orchestrator is suspended'),
    audit: [
      [
        'token.exchange',
        'refused',
        'invalid_request: agent orchestrator is suspended',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'exchange, actor by assertion expired': {
    standing: expired('orchestrator'),
    prepare: async () => async () =>
      exchangeWithActor(await mintAgentAssertion('orchestrator', baton.issuer), tokenTypes.jwt),
    granted: 200,
    refused: error(400, 'invalid_request', 'agent orchestrator has expired'),
    audit: [
      [
        'token.exchange',
        'refused',
        'invalid_request: agent orchestrator has expired',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'exchange, actor by Baton agent token suspended': {
    standing: suspend('agent', 'orchestrator'),
    prepare: async () => {
      const token = await agentToken('orchestrator');
      return () => exchangeWithActor(token, tokenTypes.accessToken);
    },
    granted: 200,
    refused: error(400, 'invalid_request', 'agent orchestrator is suspended'),
    audit: [
      [
        'token.exchange',
        'refused',
        'invalid_request: agent orchestrator is suspended',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'exchange, actor by Baton agent token expired': {
    standing: expired('orchestrator'),
    prepare: async () => {
      const token = await agentToken('orchestrator');
      return () => exchangeWithActor(token, tokenTypes.accessToken);
    },
    granted: 200,
    refused: error(400, 'invalid_request', 'agent orchestrator has expired'),
    audit: [
      [
        'token.exchange',
        'refused',
        'invalid_request: agent orchestrator has expired',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'exchange, actor by workload token suspended': {
    standing: suspend('agent', 'orchestrator'),
    prepare: async () => async () => exchangeWithActor(await workloadToken(), tokenTypes.jwt),
    granted: 200,
    refused: error(400, 'invalid_request', 'agent orchestrator is suspended'),
    audit: [
      [
        'token.exchange',
        'refused',
        'invalid_request: agent orchestrator is suspended',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'exchange, actor by workload token expired': {
    standing: expired('orchestrator'),
    prepare: async () => async () => exchangeWithActor(await workloadToken(), tokenTypes.jwt),
    granted: 200,
    refused: error(400, 'invalid_request', 'agent orchestrator has expired'),
    audit: [
      [
        'token.exchange',
        'refused',
        'invalid_request: agent orchestrator has expired',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'exchange, subject user suspended': {
    standing: suspend('user', 'alice'),
    prepare: async () => async () =>
      exchangeWithActor(await mintAgentAssertion('orchestrator', baton.issuer), tokenTypes.jwt),
    granted: 200,
    refused: error(400, 'invalid_request', 'user alice is suspended'),
    audit: [
      [
        'token.exchange',
        'refused',
        'invalid_request: user alice is suspended',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'exchange, subject user suspended, the subject token from Baton': {
    standing: suspend('user', 'alice'),
    prepare: async () => {
      const first = await firstHop();
      return () => secondHop(first);
    },
    granted: 200,
    refused: error(400, 'invalid_request', 'user alice is suspended'),
    audit: [
      [
        'token.exchange',
        'refused',
        'invalid_request: user alice is suspended',
        'agent-platform',
        'alice',
        ['payments-subagent', 'orchestrator'],
      ],
    ],
  },
  'exchange, an earlier actor of the chain suspended': {
    standing: suspend('agent', 'orchestrator'),
    prepare: async () => {
      const first = await firstHop();
      return () => secondHop(first);
    },
    granted: 200,
    refused: error(400, 'invalid_request', 'agent orchestrator is suspended'),
    audit: [
      [
        'token.exchange',
        'refused',
        'invalid_request: agent orchestrator is suspended',
        'agent-platform',
        'alice',
        ['payments-subagent', 'orchestrator'],
      ],
    ],
  },
  'exchange, an earlier actor of the chain expired': {
    standing: expired('orchestrator'),
    prepare: async () => {
      const first = await firstHop();
      return () => secondHop(first);
    },
    granted: 200,
    refused: error(400, 'invalid_request', 'agent orchestrator has expired'),
    audit: [
      [
        'token.exchange',
        'refused',
        'invalid_request: agent orchestrator has expired',
        'agent-platform',
        'alice',
        ['payments-subagent', 'orchestrator'],
      ],
    ],
  },
  'exchange, client suspended': {
    standing: suspend('client', 'agent-platform'),
    prepare: async () => async () =>
      exchangeWithActor(await mintAgentAssertion('orchestrator', baton.issuer), tokenTypes.jwt),
    granted: 200,
    refused: error(401, 'invalid_client', 'client agent-platform is suspended'),
    audit: [
      ['token.exchange', 'refused', 'invalid_client: client agent-platform is suspended', 'agent-platform', null, []],
    ],
  },
  'exchange by the agent as its own client, suspended': {
    standing: suspend('agent', 'orchestrator'),
    prepare: async () => async () =>
      outcomeOf(
        await postToken(
          baton,
          {
            grant_type: grants.exchange,
            subject_token: await alice(),
            subject_token_type: tokenTypes.jwt,
            audience: 'payments',
            client_assertion_type: jwtBearerAssertionType,
            client_assertion: await mintAgentAssertion('orchestrator', baton.issuer),
          },
          {},
        ),
      ),
    granted: 200,
    refused: error(401, 'invalid_client', 'agent orchestrator is suspended'),
    audit: [['token.exchange', 'refused', 'invalid_client: agent orchestrator is suspended', 'orchestrator', null, []]],
  },

  // Client credentials: the caller, by secret, by assertion, by workload token.
  'client credentials, client suspended': {
    standing: suspend('client', 'ops-console'),
    prepare: async () => async () =>
      outcomeOf(
        await postToken(
          baton,
          { grant_type: 'client_credentials', scope: 'baton:audit' },
          { authorization: basic('ops-console') },
        ),
      ),
    granted: 200,
    refused: error(401, 'invalid_client', 'client ops-console is suspended'),
    audit: [
      [
        'token.client_credentials',
        'refused',
        'invalid_client: client ops-console is suspended',
        'ops-console',
        null,
        [],
      ],
    ],
  },
  'client credentials, agent by assertion suspended': {
    standing: suspend('agent', 'orchestrator'),
    prepare: async () => async () =>
      outcomeOf(
        await postToken(
          baton,
          {
            grant_type: 'client_credentials',
            client_assertion_type: jwtBearerAssertionType,
            client_assertion: await mintAgentAssertion('orchestrator', baton.issuer),
          },
          {},
        ),
      ),
    granted: 200,
    refused: error(401, 'invalid_client', 'agent orchestrator is suspended'),
    audit: [
      [
        'token.client_credentials',
        'refused',
        'invalid_client: agent orchestrator is suspended',
        'orchestrator',
        null,
        [],
      ],
    ],
  },
  'client credentials, agent by assertion expired': {
    standing: expired('orchestrator'),
    prepare: async () => async () =>
      outcomeOf(
        await postToken(
          baton,
          {
            grant_type: 'client_credentials',
            client_assertion_type: jwtBearerAssertionType,
            client_assertion: await mintAgentAssertion('orchestrator', baton.issuer),
          },
          {},
        ),
      ),
    granted: 200,
    refused: error(401, 'invalid_client', 'agent orchestrator has expired'),
    audit: [
      [
        'token.client_credentials',
        'refused',
        'invalid_client: agent orchestrator has expired',
        'orchestrator',
        null,
        [],
      ],
    ],
  },
  'client credentials, agent by workload token expired': {
    standing: expired('orchestrator'),
    prepare: async () => async () =>
      outcomeOf(
        await postToken(
          baton,
          {
            grant_type: 'client_credentials',
            client_assertion_type: jwtBearerAssertionType,
            client_assertion: await workloadToken(),
          },
          {},
        ),
      ),
    granted: 200,
    refused: error(401, 'invalid_client', 'agent orchestrator has expired'),
    audit: [
      [
        'token.client_credentials',
        'refused',
        'invalid_client: agent orchestrator has expired',
        'orchestrator',
        null,
        [],
      ],
    ],
  },

  // The code flow: at /oauth2/authorize, after sign-in, at consent, at the token request.
  'authorize, client suspended': {
    standing: suspend('client', 'agent-platform'),
    prepare: async () => async () => redirected(await authorizeRequest()),
    granted: 200,
    refused: accessDenied('client agent-platform is suspended'),
    audit: [
      [
        'authorization.login',
        'refused',
        'access_denied: client agent-platform is suspended',
        'agent-platform',
        null,
        [],
      ],
    ],
  },
  'authorize, requested agent suspended': {
    standing: suspend('agent', 'orchestrator'),
    prepare: async () => async () => redirected(await authorizeRequest()),
    granted: 200,
    refused: accessDenied('agent orchestrator is suspended'),
    audit: [
      ['authorization.login', 'refused', 'access_denied: agent orchestrator is suspended', 'agent-platform', null, []],
    ],
  },
  'authorize, requested agent expired': {
    standing: expired('orchestrator'),
    prepare: async () => async () => redirected(await authorizeRequest()),
    granted: 200,
    refused: accessDenied('agent orchestrator has expired'),
    audit: [
      ['authorization.login', 'refused', 'access_denied: agent orchestrator has expired', 'agent-platform', null, []],
    ],
  },
  'sign-in, user suspended': {
    standing: suspend('user', 'alice'),
    prepare: async () => {
      const start = await authorizeRequest();
      return async () => redirected(await signIn(start));
    },
    granted: 200,
    refused: accessDenied('user alice is suspended'),
    audit: [
      [
        'authorization.login',
        'refused',
        'access_denied: user alice is suspended',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'sign-in, agent suspended since the request': {
    standing: suspend('agent', 'orchestrator'),
    prepare: async () => {
      const start = await authorizeRequest();
      return async () => redirected(await signIn(start));
    },
    granted: 200,
    refused: accessDenied('agent orchestrator is suspended'),
    audit: [
      [
        'authorization.login',
        'refused',
        'access_denied: agent orchestrator is suspended',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'consent, user suspended since sign-in': {
    standing: suspend('user', 'alice'),
    prepare: async () => {
      const consent = await signIn(await authorizeRequest());
      return async () => {
        const approved = await approve(consent);
        const outcome = redirected(approved);
        // Granted, the redirect carries a code: only its presence is compared.
        return outcome.body.code === undefined ? outcome : { status: 302, body: { code: 'issued' } };
      };
    },
    granted: 302,
    refused: accessDenied('user alice is suspended'),
    audit: [
      [
        'authorization.consent',
        'refused',
        'access_denied: user alice is suspended',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'code redemption, user suspended': {
    standing: suspend('user', 'alice'),
    prepare: async () => {
      const { code, verifier } = await consentedCode();
      return () => redeem(code, verifier);
    },
    granted: 200,
    refused: error(400, 'invalid_grant', 'user alice is suspended'),
    audit: [
      [
        'token.authorization_code',
        'refused',
        'invalid_grant: user alice is suspended',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'code redemption, agent suspended': {
    standing: suspend('agent', 'orchestrator'),
    prepare: async () => {
      const { code, verifier } = await consentedCode();
      return () => redeem(code, verifier);
    },
    granted: 200,
    refused: error(400, 'invalid_grant', 'agent orchestrator is suspended'),
    audit: [
      [
        'token.authorization_code',
        'refused',
        'invalid_grant: agent orchestrator is suspended',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'code redemption, agent expired': {
    standing: expired('orchestrator'),
    prepare: async () => {
      const { code, verifier } = await consentedCode();
      return () => redeem(code, verifier);
    },
    granted: 200,
    refused: error(400, 'invalid_grant', 'agent orchestrator has expired'),
    audit: [
      [
        'token.authorization_code',
        'refused',
        'invalid_grant: agent orchestrator has expired',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'code redemption, client suspended': {
    standing: suspend('client', 'agent-platform'),
    prepare: async () => {
      const { code, verifier } = await consentedCode();
      return () => redeem(code, verifier);
    },
    granted: 200,
    refused: error(401, 'invalid_client', 'client agent-platform is suspended'),
    audit: [
      [
        'token.authorization_code',
        'refused',
        'invalid_client: client agent-platform is suspended',
        'agent-platform',
        null,
        [],
      ],
    ],
  },

  // Refresh: the client, the agent and the user of the grant.
  'refresh, user suspended': {
    standing: suspend('user', 'alice'),
    prepare: async () => {
      const token = await refreshToken();
      return () => refresh(token);
    },
    granted: 200,
    refused: error(400, 'invalid_grant', 'user alice is suspended'),
    audit: [
      [
        'token.refresh',
        'refused',
        'invalid_grant: user alice is suspended',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'refresh, agent suspended': {
    standing: suspend('agent', 'orchestrator'),
    prepare: async () => {
      const token = await refreshToken();
      return () => refresh(token);
    },
    granted: 200,
    refused: error(400, 'invalid_grant', 'agent orchestrator is suspended'),
    audit: [
      [
        'token.refresh',
        'refused',
        'invalid_grant: agent orchestrator is suspended',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'refresh, agent expired': {
    standing: expired('orchestrator'),
    prepare: async () => {
      const token = await refreshToken();
      return () => refresh(token);
    },
    granted: 200,
    refused: error(400, 'invalid_grant', 'agent orchestrator has expired'),
    audit: [
      [
        'token.refresh',
        'refused',
        'invalid_grant: agent orchestrator has expired',
        'agent-platform',
        'alice',
        ['orchestrator'],
      ],
    ],
  },
  'refresh, client suspended': {
    standing: suspend('client', 'agent-platform'),
    prepare: async () => {
      const token = await refreshToken();
      return () => refresh(token);
    },
    granted: 200,
    refused: error(401, 'invalid_client', 'client agent-platform is suspended'),
    audit: [
      ['token.refresh', 'refused', 'invalid_client: client agent-platform is suspended', 'agent-platform', null, []],
    ],
  },

  // Bearer authentication at Baton's own APIs.
  "an operator's bearer token, client suspended": {
    standing: suspend('client', 'ops-console'),
    prepare: async () => {
      const headers = await bearerOf(baton, 'ops-console', 'baton:admin');
      return async () => outcomeOf(await postJson(baton, '/admin/revoke', { user: 'nobody' }, headers));
    },
    granted: 200,
    refused: error(401, 'invalid_client', 'client ops-console is suspended'),
    // Refused before it names a caller the API trusts: one line of the bounded refusal tally.
    audit: [
      [
        'request.refusal',
        'refused',
        'POST /admin/revoke from address 127.0.0.1: invalid_client (401): client ops-console is suspended',
        null,
        null,
        [],
      ],
    ],
  },
};

describe('suspension and expiry on every grant path', () => {
  it.each(Object.entries(cases))('%s', async (_name, c) => {
    const control = await (await c.prepare())();
    expect(control.status, JSON.stringify(control.body)).toBe(c.granted);

    const request = await c.prepare();
    await applyRegistry(c.standing);
    const before = baton.storage.state.head.seq;
    expect(await request()).toEqual(c.refused);
    const entries = baton.auditEntries(before);
    expect(entries.map((e) => [e.type, e.decision, e.reason, e.client, e.user, e.actor_chain])).toEqual(c.audit);
  });
});

describe('standing', () => {
  it('is per tenant: a suspension in one tenant leaves the same name in another alone', async () => {
    await applyRegistry({ suspend: [{ kind: 'user', id: 'alice', tenant: 'globex' }] });
    const granted = await exchangeWithActor(await mintAgentAssertion('orchestrator', baton.issuer), tokenTypes.jwt);
    expect(granted.status, JSON.stringify(granted.body)).toBe(200);
  });

  it('ends at expires_at by the service clock, with no registry change', async () => {
    await applyRegistry({ expire: { orchestrator: 10_000 } });
    const assertion = () => mintAgentAssertion('orchestrator', baton.issuer);
    expect((await exchangeWithActor(await assertion(), tokenTypes.jwt)).status).toBe(200);
    offset += 10_000;
    expect(await exchangeWithActor(await assertion(), tokenTypes.jwt)).toEqual(
      error(400, 'invalid_request', 'agent orchestrator has expired'),
    );
  });

  it('is restored by lifting the suspension: a fresh grant works again', async () => {
    await applyRegistry(suspend('agent', 'orchestrator'));
    const assertion = () => mintAgentAssertion('orchestrator', baton.issuer);
    expect(await exchangeWithActor(await assertion(), tokenTypes.jwt)).toEqual(
      error(400, 'invalid_request', 'agent orchestrator is suspended'),
    );
    await applyRegistry();
    expect((await exchangeWithActor(await assertion(), tokenTypes.jwt)).status).toBe(200);
  });

  it.each<[string, Standing, string, string]>([
    [
      'the current actor suspended',
      suspend('agent', 'payments-subagent'),
      'baton:suspended',
      'agent payments-subagent is suspended',
    ],
    ['an earlier actor expired', expired('orchestrator'), 'baton:expired', 'agent orchestrator has expired'],
    ['the user suspended', suspend('user', 'alice'), 'baton:suspended', 'user alice is suspended'],
    [
      'the client suspended',
      suspend('client', 'agent-platform'),
      'baton:suspended',
      'client agent-platform is suspended',
    ],
  ])(
    'denies a decision on a token whose chain holds %s, audits why, and introspects it as inactive',
    async (_name, standing, reason, detail) => {
      const token = await chainToken();
      expect(await transfer(token)).toEqual({
        status: 200,
        body: { decision: 'allow', action_id: 'standing-1', reasons: ['transfer-up-to-100'] },
      });
      expect(await isActive(baton, token)).toBe(true);
      await applyRegistry(standing);
      expect(await isActive(baton, token)).toBe(false);
      const before = baton.storage.state.head.seq;
      expect(await transfer(token)).toEqual({
        status: 200,
        body: { decision: 'deny', action_id: 'standing-1', reasons: [reason] },
      });
      expect(
        baton.auditEntries(before).map((e) => [e.type, e.decision, e.policy_ids, e.reason, e.actor_chain]),
      ).toEqual([
        [
          'decision',
          'deny',
          [reason],
          `payments:transfer on Account::acct-1: ${detail}`,
          ['payments-subagent', 'orchestrator'],
        ],
      ]);
    },
  );
});
