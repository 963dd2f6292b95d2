import { createReadStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { verifyExport } from '../../src/cli/audit-verify.js';
import { verifyCheckpoint } from '../../src/core/audit/checkpoint.js';
import { importPublicJwks } from '../../src/core/tokens/jwks.js';
import type { Jwks } from '../../src/core/registry/schema.js';
import { startTestBaton, type TestBaton } from '../support/baton.js';
import { auditRequests } from '../support/audit.js';

// The audit log of a Baton on its real storage: checkpoints published in its directory beside
// the audit keys, and an entry changed in the database past its triggers.
let baton: TestBaton;
beforeAll(async () => {
  baton = await startTestBaton();
  requests = auditRequests(baton);
});
afterAll(async () => {
  await baton?.close();
});

let requests: ReturnType<typeof auditRequests>;
const bearer = (client: string, scope: string) => requests.bearer(client, scope);
const get = (path: string, headers: Record<string, string>) => requests.get(path, headers);
const chainAndDecision = (actionId: string) => requests.chainAndDecision(actionId);

describe('verification and checkpoints', () => {
  it('signs checkpoints with the dedicated audit key, published at /audit/keys and never in the token JWKS', async () => {
    await chainAndDecision('order-3');
    await baton.checkpoint();
    const result = await get('/audit/checkpoint', await bearer('ops-console', 'baton:audit'));
    const body = result.json() as { seq: number; hash: string; jws: string; signed_at: string; verified: boolean };
    const auditKeys = (await (await fetch(`${baton.url}/audit/keys`)).json()) as Jwks;
    const tokenKeys = (await (await fetch(`${baton.url}/.well-known/jwks.json`)).json()) as Jwks;
    const { kid } = decodeProtectedHeader(body.jws);
    expect(auditKeys.keys.map((k) => k.kid)).toEqual(baton.auditJwks.keys.map((k) => k.kid));
    expect(kid).toBe(baton.auditJwks.keys[0]?.kid);
    expect(tokenKeys.keys.map((k) => k.kid)).not.toContain(kid);
    const stated = await verifyCheckpoint(await importPublicJwks(auditKeys), body.jws, baton.issuer);
    expect(stated).toMatchObject({ seq: body.seq, hash: body.hash });
    expect(body).toEqual({
      seq: stated.seq,
      hash: stated.hash,
      jws: body.jws,
      signed_at: new Date(stated.iat * 1000).toISOString().replace('.000Z', 'Z'),
      verified: true,
    });
    await expect(verifyCheckpoint(await importPublicJwks(tokenKeys), body.jws, baton.issuer)).rejects.toThrow(
      'no applicable key found in the JSON Web Key Set',
    );
    // Published outside the database too, beside the public audit keys.
    expect(readFileSync(join(baton.checkpointDir, `${String(body.seq).padStart(16, '0')}.jws`), 'utf8')).toBe(
      `${body.jws}\n`,
    );
    expect(JSON.parse(readFileSync(join(baton.checkpointDir, 'audit-keys.json'), 'utf8'))).toEqual(auditKeys);
  });

  it('verifies an export offline, and names the first tampered entry by API and CLI', async () => {
    await chainAndDecision('order-4');
    await baton.checkpoint();
    const auditor = await bearer('ops-console', 'baton:audit');
    const jwks = (await (await fetch(`${baton.url}/audit/keys`)).json()) as Jwks;
    const exported = (await get('/audit/entries?from=1&limit=10000', auditor)).text;
    const verdict = await verifyExport(exported, jwks, sha256Hex);
    expect(verdict.ok).toBe(true);
    expect(verdict.message).toMatch(
      /^\d+ entries valid \(\d+ whole, \d+ redacted\), \d+ checkpoints valid; consistent with checkpoint \d+ signed at \S+Z$/,
    );

    const verified = (await get('/audit/verify', auditor)).json();
    expect(verified).toMatchObject({ valid: true, from: 1 });

    // A superuser changes an entry in the middle of the log, bypassing the triggers.
    const target = 4;
    await baton.database.sql.begin(async (tx) => {
      await tx.script('SET LOCAL session_replication_role = replica');
      await tx`UPDATE audit_log SET canonical = replace(canonical, '"acme"', '"evil"') WHERE seq = ${target}`;
    });
    expect((await get('/audit/verify', auditor)).json()).toMatchObject({
      valid: false,
      seq: target,
      reason: 'hash does not match its content',
    });
    const tampered = (await get('/audit/entries?from=1&limit=10000', auditor)).text;
    const dir = mkdtempSync(join(tmpdir(), 'baton-audit-'));
    writeFileSync(join(dir, 'export.jsonl'), tampered);
    expect(await verifyExport(tampered, jwks, sha256Hex)).toEqual({
      ok: false,
      message: `entry ${target}: hash does not match its content`,
    });

    // As `baton audit verify` reads a file: streamed, never held as one string.
    expect(
      await verifyExport(
        createReadStream(join(dir, 'export.jsonl'), { encoding: 'utf8', highWaterMark: 64 }),
        jwks,
        sha256Hex,
      ),
    ).toEqual({ ok: false, message: `entry ${target}: hash does not match its content` });

    // Edited export lines are caught too, and a missing line is a gap.
    const withoutLine = exported
      .split('\n')
      .filter((l) => !l.startsWith('{"seq":6,'))
      .join('\n');
    expect(await verifyExport(withoutLine, jwks, sha256Hex)).toEqual({
      ok: false,
      message: 'entry 6: entries 6–6 are missing',
    });
  });
});
