import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { verifyExport } from '../../src/cli/audit-verify.js';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import type { Jwks } from '../../src/core/registry/schema.js';
import { grants, postToken, tokenTypes } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';
import { auditRequests } from '../support/audit.js';

let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton();
  requests = auditRequests(baton);
});
afterAll(async () => {
  await baton?.close();
});

let requests: ReturnType<typeof auditRequests>;
const bearer = (client: string, scope: string) => requests.bearer(client, scope);
const get = (path: string, headers: Record<string, string>) => requests.get(path, headers);
const chainAndDecision = (actionId: string) => requests.chainAndDecision(actionId);

describe('GET /audit/actions/{id}', () => {
  it('returns both exchanges and the decision, root grant first, linked by lineage and verified', async () => {
    const { first, second } = await chainAndDecision('order-1');
    const result = await get('/audit/actions/order-1', await bearer('ops-console', 'baton:audit'));
    expect(result.status).toBe(200);
    const body = result.json() as {
      action_id: string;
      entries: { seq: number; hash: string; verified: boolean; entry: Record<string, unknown> }[];
    };
    expect(body.action_id).toBe('order-1');
    expect(body.entries.map((e) => [e.entry.type, e.entry.decision, e.verified])).toEqual([
      ['token.exchange', 'granted', true],
      ['token.exchange', 'granted', true],
      ['decision', 'allow', true],
    ]);
    const [hop1, hop2, decision] = body.entries.map((e) => e.entry);
    expect(hop1).toMatchObject({
      tenant: 'acme',
      jti: first.jti,
      parent_jti: null,
      root_grant: first.jti,
      user: 'alice',
      actor_chain: ['orchestrator'],
      client: 'agent-platform',
      audience: ['https://payments.example'],
      scope: ['payments:read', 'payments:transfer'],
    });
    expect(hop2).toMatchObject({
      jti: second.jti,
      parent_jti: first.jti,
      root_grant: first.jti,
      actor_chain: ['payments-subagent', 'orchestrator'],
      scope: ['payments:transfer'],
      policy_ids: ['delegate-within-tenant'],
    });
    expect(decision).toMatchObject({
      type: 'decision',
      action_id: 'order-1',
      jti: second.jti,
      user: 'alice',
      actor_chain: ['payments-subagent', 'orchestrator'],
      client: 'payments',
      policy_ids: ['transfer-up-to-100'],
      request_id: 'req-7',
    });
    expect(body.entries.map((e) => e.seq)).toEqual([...body.entries.map((e) => e.seq)].sort((a, b) => a - b));
  });

  it("shows another tenant's auditor nothing", async () => {
    await chainAndDecision('order-2');
    const globex = await get('/audit/actions/order-2', await bearer('globex-audit', 'baton:audit'));
    expect({ status: globex.status, body: globex.json() }).toEqual({
      status: 404,
      body: { error: 'not_found', error_description: 'no such action in your tenant' },
    });
    const lines = (await get('/audit/entries?from=1&limit=10000', await bearer('globex-audit', 'baton:audit'))).text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(
      lines
        .filter((l) => l.canonical !== undefined && !String(l.canonical).includes('"tenant":"*"'))
        .every((l) => String(l.canonical).includes('"tenant":"globex"')),
    ).toBe(true);
    expect(lines.some((l) => l.redacted === true)).toBe(true);
  });

  it('refuses callers without the audit scope', async () => {
    const result = await get('/audit/actions/order-1', await bearer('ops-console', 'baton:admin'));
    expect({ status: result.status, body: result.json() }).toEqual({
      status: 403,
      body: { error: 'access_denied', error_description: 'the caller lacks the baton:audit scope' },
    });
    expect((await get('/audit/actions/order-1', {})).status).toBe(401);
  });
});

describe('refusals are audited', () => {
  it('records a refused exchange with its reason and never the token', async () => {
    const refused = await postToken(baton, {
      grant_type: grants.exchange,
      subject_token: await mintUserToken('alice', { audience: 'https://elsewhere.example' }),
      subject_token_type: tokenTypes.jwt,
      actor_token: await mintAgentAssertion('orchestrator', baton.issuer),
      actor_token_type: tokenTypes.jwt,
      audience: 'payments',
    });
    expect(refused.status).toBe(400);
    const text = (await get('/audit/entries?from=1&limit=10000', await bearer('ops-console', 'baton:audit'))).text;
    const entries = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { canonical?: string })
      .filter((l) => l.canonical !== undefined)
      .map((l) => JSON.parse(l.canonical as string) as Record<string, unknown>);
    expect(entries.find((e) => e.decision === 'refused' && e.type === 'token.exchange')).toMatchObject({
      tenant: 'acme',
      client: 'agent-platform',
      reason: expect.stringMatching(/^invalid_request: subject_token is not intended for this audience/),
    });
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}/);
    expect(text).not.toContain('demo-only-');
  });
});

describe('verification and checkpoints', () => {
  it('verifies an export streamed in chunks of any size as it verifies the whole text, lines in sequence order', async () => {
    await chainAndDecision('order-5');
    await baton.checkpoint();
    const jwks = (await (await baton.fetch(`${baton.url}/audit/keys`)).json()) as Jwks;
    const exported = (await get('/audit/entries?from=1&limit=10000', await bearer('ops-console', 'baton:audit'))).text;
    const whole = await verifyExport(exported, jwks, sha256Hex);
    expect(whole.ok).toBe(true);
    async function* chunks(text: string, size: number) {
      for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
    }
    for (const size of [1, 7, 4096]) expect(await verifyExport(chunks(exported, size), jwks, sha256Hex)).toEqual(whole);
    expect(await verifyExport(exported.replaceAll('\n', '\r\n'), jwks, sha256Hex)).toEqual(whole);

    const lines = exported.trimEnd().split('\n');
    const swapped = [lines[1], lines[0], ...lines.slice(2)].join('\n');
    expect(await verifyExport(swapped, jwks, sha256Hex)).toEqual({
      ok: false,
      message: 'entry 3: entry 1 is out of order',
    });
    // A checkpoint after its entries is still held against the entry it names (here a redacted
    // last line, whose hash only links, so the checkpoint is what catches it).
    const checkpointLine = lines.filter((l) => l.startsWith('{"checkpoint"')).at(-1) as string;
    const { seq } = decodeJwt((JSON.parse(checkpointLine) as { checkpoint: string }).checkpoint) as { seq: number };
    const upTo = lines.filter((l) => l.startsWith('{"seq"') && (JSON.parse(l) as { seq: number }).seq <= seq);
    const named = JSON.parse(upTo.at(-1) as string) as { seq: number; prev_hash: string };
    const forged = [
      ...upTo.slice(0, -1),
      JSON.stringify({ seq: named.seq, prev_hash: named.prev_hash, hash: '0'.repeat(64), redacted: true }),
      checkpointLine,
    ].join('\n');
    const { iat } = decodeJwt((JSON.parse(checkpointLine) as { checkpoint: string }).checkpoint) as { iat: number };
    // The forged text holds no earlier checkpoint: the rewrite may lie anywhere from its first entry.
    expect(await verifyExport(forged, jwks, sha256Hex)).toEqual({
      ok: false,
      message: `entry ${seq}: does not match checkpoint ${seq} signed at ${new Date(iat * 1000).toISOString().replace('.000Z', 'Z')}: the log was rewritten after it was signed, at an entry from 1 to ${seq}`,
    });
    expect(await verifyExport(`${lines.join('\n')}\n{"seq":`, jwks, sha256Hex)).toEqual({
      ok: false,
      message: `line ${lines.length + 1}: not valid JSON`,
    });
  });
});
