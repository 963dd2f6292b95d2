import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jwtBearerAssertionType } from '../../src/core/clients/client-auth.js';
import { mintAgentAssertion } from '../../src/cli/demo-kit.js';
import { postJson, postToken, startTestBaton, type TestBaton } from '../support/baton.js';

// The running service sweeps expired agents out of the stored registry on its own, audited.

let baton: TestBaton;
/** The service clock runs `offset` ms ahead of the wall clock. */
let offset = 0;
beforeAll(async () => {
  baton = await startTestBaton({ BATON_AGENT_SWEEP_INTERVAL: '1' }, { clock: { now: () => Date.now() + offset } });
});
afterAll(async () => {
  await baton?.close();
});

/** The agent ids of the newest stored registry version. */
async function storedAgents(): Promise<string[]> {
  const [row] = await baton.database.sql<{ document: string }>`
    SELECT document FROM registry_documents ORDER BY version DESC LIMIT 1`;
  return (JSON.parse((row as { document: string }).document) as { agents: { id: string }[] }).agents.map((a) => a.id);
}

describe('the sweep of expired agents', () => {
  it('removes a sub-agent from the stored registry soon after its expiry, and audits it', async () => {
    const token = await postToken(
      baton,
      {
        grant_type: 'client_credentials',
        client_assertion_type: jwtBearerAssertionType,
        client_assertion: await mintAgentAssertion('orchestrator', baton.issuer),
      },
      {},
    );
    const jwk = { ...(await exportJWK((await generateKeyPair('EdDSA')).publicKey)), kid: 'sweep-1' };
    const registered = await postJson(
      baton,
      '/agents',
      { id: 'short-lived', name: 'Short-lived', jwks: { keys: [jwk] }, expires_in: 60 },
      { authorization: `Bearer ${token.body.access_token as string}` },
    );
    expect(registered.status, JSON.stringify(registered.body)).toBe(201);
    expect(await storedAgents()).toContain('short-lived');

    offset += 60_000;
    const deadline = Date.now() + 5000;
    while ((await storedAgents()).includes('short-lived') && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await storedAgents()).toEqual(['orchestrator', 'payments-subagent', 'globex-assistant']);
    // The entry is appended once the edit committed: it may come a moment after.
    const sweeps = () =>
      baton.database.sql<{
        canonical: string;
      }>`SELECT canonical FROM audit_log WHERE type = 'registry.sweep' ORDER BY seq`;
    let entries = await sweeps();
    while (entries.length === 0 && Date.now() < deadline + 2000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      entries = await sweeps();
    }
    expect(entries.map((e) => JSON.parse(e.canonical) as Record<string, unknown>)).toMatchObject([
      {
        tenant: 'acme',
        decision: 'applied',
        actor_chain: ['short-lived'],
        reason: 'removed expired agent short-lived',
      },
    ]);
  });
});
