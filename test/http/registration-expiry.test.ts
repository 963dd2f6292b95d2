import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryDocument } from '../../src/core/registry/document.js';
import { keepRuntimeState } from '../../src/core/registry/sub-agents.js';
import { sweepUnusedClients } from '../../src/core/registry/unused-clients.js';
import { postJson, postToken } from '../support/baton.js';
import { consentedCode } from '../support/consent.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

// Registered clients are removed once unused for their tenant's unused_client_ttl_seconds (an hour
// here), counting from the last recorded use, or from registration when never used. The test
// moves Baton's clock.

const redirectUri = 'http://localhost:3000/callback';
const hour = 3_600_000;
let offset = 0;
const clock = { now: () => Date.now() + offset };
let baton: MemoryBaton;

beforeAll(async () => {
  baton = await memoryBaton({}, { clock });
  await baton.registryStore.edit('test', (doc: RegistryDocument) => ({
    ...doc,
    tenants: doc.tenants.map((t) =>
      t.id === 'acme' ? { ...t, dynamic_client_registration: { mode: 'open', unused_client_ttl_seconds: 3600 } } : t,
    ),
  }));
});
afterAll(async () => {
  await baton?.close();
});

async function registerPublic(name: string): Promise<string> {
  const result = await postJson(baton, '/oauth2/register', {
    redirect_uris: [redirectUri],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    client_name: name,
  });
  expect(result.status, JSON.stringify(result.body)).toBe(201);
  return result.body.client_id as string;
}

/** Alice's consent and its code redeemed by public client `id`: the refresh token. */
async function signIn(id: string): Promise<string> {
  const { code, verifier } = await consentedCode(baton, {
    clientId: id,
    redirectUri,
    scope: 'payments:read',
    agent: null,
  });
  const token = await postToken(
    baton,
    { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: id },
    {},
  );
  expect(token.status, JSON.stringify(token.body)).toBe(200);
  return token.body.refresh_token as string;
}

const storedIds = async () => (await baton.registryStore.read()).document.clients.map((c) => c.client_id);

describe('the sweep of unused registered clients', () => {
  it('removes a client unused past the TTL (from its registration, or its last use), audited, and never a declared one', async () => {
    const started = clock.now();
    const used = await registerPublic('Used');
    const idle = await registerPublic('Idle');
    // A suspension of the idle client goes with it.
    await baton.registryStore.edit('test', (doc) => ({
      ...doc,
      suspensions: [...doc.suspensions, { tenant: 'acme', kind: 'client', id: idle, since: new Date().toISOString() }],
    }));

    offset += hour / 2;
    const refreshToken = await signIn(used);
    const firstUse = baton.storage.state.clientUses.get(used) as number;
    expect(firstUse).toBeGreaterThanOrEqual(started + hour / 2);
    expect(baton.storage.state.clientUses.has(idle)).toBe(false);

    // A use within the hour is not written again (at most one write an hour per client).
    offset += hour / 4;
    const refreshed = await postToken(
      baton,
      { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: used },
      {},
    );
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    expect(baton.storage.state.clientUses.get(used)).toBe(firstUse);

    // Nothing is due yet: the sweep writes nothing.
    const seq = baton.auditEntries().length;
    expect(await sweepUnusedClients(baton.service, baton.registryStore)).toBe(0);

    // An hour after registration: the idle client goes, the used one (used half an hour in) stays.
    offset = hour + 1000;
    expect(await sweepUnusedClients(baton.service, baton.registryStore)).toBe(1);
    expect(await storedIds()).not.toContain(idle);
    expect(await storedIds()).toContain(used);
    expect(await storedIds()).toContain('agent-platform');
    expect((await baton.registryStore.read()).document.suspensions.some((s) => s.id === idle)).toBe(false);
    expect(baton.service.registry().callers.has(idle)).toBe(false);
    expect(baton.auditEntries(seq)).toMatchObject([
      {
        tenant: 'acme',
        type: 'registry.sweep',
        decision: 'applied',
        reason: `removed dynamically registered client unused for over 3600 s: ${idle}`,
      },
    ]);

    // An hour after its last recorded use, the used client goes too, and its use is forgotten.
    offset = hour / 2 + hour + 60_000;
    expect(await sweepUnusedClients(baton.service, baton.registryStore)).toBe(1);
    expect(await storedIds()).not.toContain(used);
    expect(baton.storage.state.clientUses.has(used)).toBe(false);
    const refused = await postToken(
      baton,
      { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: used },
      {},
    );
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBe('invalid_client');
  });
});

describe('a registry file applied over the stored registry', () => {
  it('keeps the dynamically registered clients the file does not name', async () => {
    const stored = (await baton.registryStore.read()).document;
    const registered = {
      client_id: 'dcr-kept',
      tenant: 'acme',
      name: 'Kept',
      token_endpoint_auth_method: 'none' as const,
      grant_types: ['authorization_code' as const],
      redirect_uris: [redirectUri],
      dynamically_registered_at: '2026-01-01T00:00:00.000Z',
    };
    const declared = stored.clients.filter((c) => c.dynamically_registered_at === undefined);
    const kept = keepRuntimeState({ ...stored, clients: [...declared, registered] }, { ...stored, clients: declared });
    expect(kept.clients.map((c) => c.client_id)).toEqual([...declared.map((c) => c.client_id), 'dcr-kept']);
  });
});
