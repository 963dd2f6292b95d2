import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import {
  basic,
  bearerOf,
  exchangedToken,
  grants,
  postJson,
  type PostResult,
  postToken,
  startTestBaton,
  type TestBaton,
  tokenTypes,
} from '../support/baton.js';
import { consentedCode, isActive, redeemCode, refresh, stillActiveAfter } from '../support/consent.js';

let baton: TestBaton;
beforeAll(async () => {
  baton = await startTestBaton();
});
afterAll(async () => {
  await baton?.close();
});

const parallel = 20;
/**
 * Sends `parallel` requests, each a few milliseconds after the one before, so that replays land
 * before, while and after the winning redemption signs and stores what it issues.
 */
const staggered = (send: (i: number) => Promise<PostResult>): Promise<PostResult[]> =>
  Promise.all(
    Array.from({ length: parallel }, (_, i) =>
      new Promise((resolve) => setTimeout(resolve, i * 4)).then(() => send(i)),
    ),
  );
const outcome = (r: PostResult) => ({ status: r.status, body: r.body });
/** The one granted result among `results`, after checking every other is `refusal`. */
function oneWinner(
  results: PostResult[],
  refusal: { status: number; body: Record<string, unknown> },
): Record<string, unknown> {
  const granted = results.filter((r) => r.status === 200);
  expect(granted).toHaveLength(1);
  expect(results.filter((r) => r.status !== 200).map(outcome)).toEqual(
    Array.from({ length: parallel - 1 }, () => refusal),
  );
  return (granted[0] as PostResult).body;
}

/** Every path that takes an access token refuses it, and the refresh token is dead. */
async function expectGrantRevoked(accessTokens: string[], refreshToken: string): Promise<void> {
  // Revocations reach every instance's memory within a second.
  expect(await stillActiveAfter([baton], accessTokens, 1000)).toEqual([]);
  for (const token of accessTokens) {
    const decision = await postJson(
      baton,
      '/authorize',
      {
        token,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount: 1, currency: 'EUR' },
        action_id: 'race',
      },
      { authorization: basic('payments') },
    );
    expect(decision.body).toEqual({ decision: 'deny', action_id: 'race', reasons: ['baton:revoked'] });
    const exchange = await postToken(baton, {
      grant_type: grants.exchange,
      subject_token: token,
      subject_token_type: tokenTypes.accessToken,
      actor_token: await mintAgentAssertion('payments-subagent', baton.issuer),
      actor_token_type: tokenTypes.jwt,
    });
    expect(outcome(exchange)).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'subject_token has been revoked' },
    });
  }
  expect(outcome(await refresh(baton, refreshToken))).toEqual({
    status: 400,
    body: { error: 'invalid_grant', error_description: 'refresh token has been revoked' },
  });
}

describe('single-use grants redeemed concurrently', () => {
  it(`grants one of ${parallel} concurrent redemptions of a code, and revokes everything it issued`, async () => {
    const { code, verifier } = await consentedCode(baton);
    const actors = await Promise.all(
      Array.from({ length: parallel }, () => mintAgentAssertion('orchestrator', baton.issuer)),
    );
    const results = await staggered((i) => redeemCode(baton, code, verifier, actors[i]));
    const won = oneWinner(results, {
      status: 400,
      body: {
        error: 'invalid_grant',
        error_description: 'authorization code has already been used; tokens issued from it are revoked',
      },
    });
    await expectGrantRevoked([won.access_token as string], won.refresh_token as string);
  });

  it(`grants one of ${parallel} concurrent uses of a refresh token, and revokes its family and every access token of the grant`, async () => {
    const { code, verifier } = await consentedCode(baton);
    const first = await redeemCode(baton, code, verifier);
    expect(first.status).toBe(200);
    const results = await staggered(() => refresh(baton, first.body.refresh_token as string));
    const won = oneWinner(results, {
      status: 400,
      body: { error: 'invalid_grant', error_description: 'refresh token has already been used; its family is revoked' },
    });
    await expectGrantRevoked(
      [first.body.access_token as string, won.access_token as string],
      won.refresh_token as string,
    );
    expect(outcome(await refresh(baton, first.body.refresh_token as string))).toEqual({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'refresh token has already been used; its family is revoked' },
    });
  });

  it(`accepts one of ${parallel} concurrent uses of one agent assertion, as client assertion and as actor token`, async () => {
    const assertion = await mintAgentAssertion('orchestrator', baton.issuer);
    const asClient = await Promise.all(
      Array.from({ length: parallel }, () =>
        postToken(
          baton,
          {
            grant_type: 'client_credentials',
            client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
            client_assertion: assertion,
          },
          {},
        ),
      ),
    );
    oneWinner(asClient, {
      status: 401,
      body: { error: 'invalid_client', error_description: 'client_assertion has already been used' },
    });

    const actor = await mintAgentAssertion('orchestrator', baton.issuer);
    const subjects = await Promise.all(
      Array.from({ length: parallel }, () => mintUserToken('alice', { audience: baton.issuer })),
    );
    const asActor = await Promise.all(
      subjects.map((subject) =>
        postToken(baton, {
          grant_type: grants.exchange,
          subject_token: subject,
          subject_token_type: tokenTypes.jwt,
          actor_token: actor,
          actor_token_type: tokenTypes.jwt,
          audience: 'payments',
        }),
      ),
    );
    oneWinner(asActor, {
      status: 400,
      body: { error: 'invalid_request', error_description: 'actor_token has already been used' },
    });
  });
});

describe('a kill switch racing the issuance of tokens', () => {
  const admin = () => bearerOf(baton, 'ops-console', 'baton:admin');
  const introspect = async (token: string) => ({ active: await isActive(baton, token) });
  /** Exchanges `subject` for `actor`. */
  const hop = (subject: string, actor: string, type: string, extra: Record<string, string>) =>
    exchangedToken(baton, subject, type, actor, extra);

  it('reaches no token minted after the switch, and explains every later revocation in the log', async () => {
    const user = () => mintUserToken('carol', { audience: baton.issuer });
    const before = await hop(await user(), 'orchestrator', tokenTypes.jwt, { audience: 'payments' });
    expect((await postJson(baton, '/admin/revoke', { user: 'carol' }, await admin())).body).toEqual({ revoked: 1 });
    const after = await hop(await user(), 'orchestrator', tokenTypes.jwt, { audience: 'payments' });
    // A token derived from the revoked one while the switch ran (its lineage written just after).
    const parent = decodeJwt(before).jti as string;
    const raced = `raced-${parent}`;
    await baton.database
      .sql`INSERT INTO tokens (tenant, jti, parent_jti, root_grant, subject, actor, client_id, expires_at) VALUES ('acme', ${raced}, ${parent}, ${raced}, 'carol', 'payments-subagent', 'agent-platform', ${new Date(Date.now() + 60_000)})`;
    // Both follow-up passes (1.5 s and 4 s after the switch) have run.
    await new Promise((resolve) => setTimeout(resolve, 4600));
    expect({ before: (await introspect(before)).active, after: (await introspect(after)).active }).toEqual({
      before: false,
      after: true,
    });
    const [revokedRaced] = await baton.database.sql<{
      n: number;
    }>`SELECT count(*)::int AS n FROM revocations WHERE tenant = 'acme' AND jti = ${raced}`;
    expect(revokedRaced?.n).toBe(1);
    const entries = (
      await baton.database.sql<{
        canonical: string;
      }>`SELECT canonical FROM audit_log WHERE type = 'token.revocation' ORDER BY seq`
    ).map((r) => JSON.parse(r.canonical) as Record<string, unknown>);
    expect(entries.filter((e) => e.user === 'carol').map((e) => [e.client, e.reason])).toEqual([
      ['ops-console', 'revoked everything user carol holds or appears in: 1 token'],
      [
        null,
        'follow-up of the revocation of everything user carol holds or appears in: 1 token more, derived from revoked tokens while it ran',
      ],
    ]);
  });
});
