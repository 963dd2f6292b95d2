import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { decodeJwt } from 'jose';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditReader } from '../../src/adapters/db/audit-reader.js';
import { openPostgres } from '../../src/adapters/db/postgres.js';
import type { Database } from '../../src/adapters/db/sql.js';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { generateSigningKeys } from '../../src/adapters/signing-keys.js';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import { testDatabaseUrl } from '../support/database.js';
import { basic, bearerOf, exchangeHop, postJson, postToken, tokenTypes, type PostResult } from '../support/baton.js';
import { consentedCode, isActive, redeemCode, refresh, stillActiveAfter } from '../support/consent.js';

const skip = testDatabaseUrl === undefined;
const schema = `baton_multi_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
const issuer = 'http://baton.test';
const processes: ChildProcess[] = [];
const urls: string[] = [];
let db: Database;
let auditKeys: string;

/** Starts `node dist/node/main.js` and resolves with its URL once it logs that it started. */
function startProcess(env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, ['dist/node/main.js'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  processes.push(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('instance did not start in 60 s')), 60_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const log = JSON.parse(line) as { message: string; url?: string };
      if (log.message === 'baton started') {
        clearTimeout(timer);
        resolve(log.url as string);
      }
    });
    child.once('exit', (code) => reject(new Error(`instance exited with ${code}: ${stderr.slice(-1000)}`)));
  });
}

beforeAll(async () => {
  if (skip) return;
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
  const keys = JSON.stringify(await generateSigningKeys('EdDSA'));
  auditKeys = JSON.stringify(await generateSigningKeys('EdDSA'));
  const env = {
    PORT: '0',
    DATABASE_URL: testDatabaseUrl as string,
    BATON_DATABASE_SCHEMA: schema,
    BATON_SIGNING_KEYS: keys,
    BATON_AUDIT_KEYS: auditKeys,
    BATON_ISSUER: issuer,
    BATON_CHECKPOINT_INTERVAL: '1',
  };
  // The first instance migrates; the others start at once and find the schema in place or wait on the lock.
  urls.push(...(await Promise.all([startProcess(env), startProcess(env), startProcess(env)])));
  db = await openPostgres(testDatabaseUrl as string, { schema, max: 2 });
});

afterAll(async () => {
  for (const p of processes) p.kill('SIGTERM');
  await Promise.all(
    processes.map(
      (p) => new Promise((resolve) => (p.exitCode === null ? p.once('exit', resolve) : resolve(undefined))),
    ),
  );
  await db?.close();
  if (!skip) {
    const admin = postgres(testDatabaseUrl as string, { max: 1, onnotice: () => {} });
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
});

const at = (url: string) => ({ url, issuer });

describe.skipIf(skip)('three Baton processes on one PostgreSQL', () => {
  it('append to one chain under concurrent load: contiguous sequence numbers, verification passes', async () => {
    const work = Array.from({ length: 30 }, async (_, i) => {
      const instance = at(urls[i % 3] as string);
      const first = await exchangeHop(
        instance,
        await mintUserToken('alice', { audience: issuer }),
        tokenTypes.jwt,
        'orchestrator',
        { audience: 'payments', scope: 'payments:transfer' },
      );
      expect(first.status).toBe(200);
      // The next hop and the decision go to other instances.
      const second = await exchangeHop(
        at(urls[(i + 1) % 3] as string),
        first.body.access_token as string,
        tokenTypes.accessToken,
        'payments-subagent',
      );
      expect(second.status).toBe(200);
      const decision = await postJson(
        at(urls[(i + 2) % 3] as string),
        '/authorize',
        {
          token: second.body.access_token,
          action: 'payments:transfer',
          resource: { type: 'Account', id: 'acct-1' },
          context: { amount: i + 1, currency: 'EUR' },
          action_id: `multi-${i}`,
        },
        { authorization: basic('payments') },
      );
      expect(decision.body.decision).toBe('allow');
    });
    await Promise.all(work);

    const rows = await db.sql<{ seq: string }>`SELECT seq FROM audit_log ORDER BY seq`;
    expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: rows.length }, (_, i) => i + 1));
    expect(rows.length).toBeGreaterThanOrEqual(90);
    const reader = createAuditReader(db.sql, sha256Hex);
    expect(await reader.verify(1, rows.length)).toEqual({ valid: true, entries: rows.length });
  });

  it('has the CLI verify an export, and name an entry a superuser changed', async () => {
    const auditor = await postToken(
      at(urls[0] as string),
      { grant_type: 'client_credentials', scope: 'baton:audit' },
      { authorization: basic('ops-console') },
    );
    const headers = { authorization: `Bearer ${auditor.body.access_token as string}` };
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a checkpoint at the 1 s cadence
    const dir = mkdtempSync(join(tmpdir(), 'baton-cli-'));
    const jwksFile = join(dir, 'jwks.json');
    writeFileSync(jwksFile, await (await fetch(`${urls[1]}/audit/keys`)).text());
    const exportFile = join(dir, 'export.jsonl');
    writeFileSync(exportFile, await (await fetch(`${urls[2]}/audit/entries?from=1&limit=10000`, { headers })).text());
    const witnessFile = join(dir, 'witness.json');
    const ok = execFileSync(
      process.execPath,
      ['dist/cli/baton.js', 'audit', 'verify', exportFile, '--key', jwksFile, '--witness', witnessFile],
      { encoding: 'utf8' },
    );
    expect(ok).toMatch(
      /^\d+ entries valid \(\d+ whole, \d+ redacted\), [1-9]\d* checkpoints valid; consistent with checkpoint \d+ signed at \S+Z\n$/,
    );
    // The witness keeps the newest checkpoint; an export whose checkpoints are all older is refused.
    const witnessed = JSON.parse(readFileSync(witnessFile, 'utf8')) as {
      seq: number;
      hash: string;
      signed_at: string;
      jws: string;
    };
    expect(Object.keys(witnessed)).toEqual(['seq', 'hash', 'signed_at', 'jws']);
    const older = join(dir, 'older.jsonl');
    writeFileSync(
      older,
      readFileSync(exportFile, 'utf8')
        .split('\n')
        .filter((l) => !l.startsWith('{"checkpoint"'))
        .join('\n'),
    );
    let backwards: { status: number | null; stderr: string } = { status: 0, stderr: '' };
    try {
      execFileSync(
        process.execPath,
        ['dist/cli/baton.js', 'audit', 'verify', older, '--key', jwksFile, '--witness', witnessFile],
        { encoding: 'utf8', stdio: 'pipe' },
      );
    } catch (error) {
      backwards = error as { status: number | null; stderr: string };
    }
    expect(backwards).toMatchObject({
      status: 1,
      stderr: `checkpoints went backwards: checkpoint ${witnessed.seq} signed at ${witnessed.signed_at} was seen before, but the newest here is none\n`,
    });

    await db.sql.begin(async (tx) => {
      await tx.script('SET LOCAL session_replication_role = replica');
      await tx`UPDATE audit_log SET canonical = replace(canonical, '"time":"', '"time":"1') WHERE seq = 10`;
    });
    writeFileSync(exportFile, await (await fetch(`${urls[0]}/audit/entries?from=1&limit=10000`, { headers })).text());
    let failure: { status: number | null; stderr: string } = { status: 0, stderr: '' };
    try {
      execFileSync(process.execPath, ['dist/cli/baton.js', 'audit', 'verify', exportFile, '--key', jwksFile], {
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (error) {
      failure = error as { status: number | null; stderr: string };
    }
    expect(failure).toMatchObject({ status: 1, stderr: 'entry 10: hash does not match its content\n' });
    const verdict = (await (await fetch(`${urls[1]}/audit/verify`, { headers })).json()) as Record<string, unknown>;
    expect(verdict).toMatchObject({ valid: false, seq: 10, reason: 'hash does not match its content' });
  });

  it('honours a revocation made on one instance on the others within one second', async () => {
    const token = await exchangeHop(
      at(urls[0] as string),
      await mintUserToken('alice', { audience: issuer }),
      tokenTypes.jwt,
      'orchestrator',
      { audience: 'payments' },
    );
    const jwt = token.body.access_token as string;
    const introspect = async (url: string) => {
      const response = await fetch(`${url}/oauth2/introspect`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('payments') },
        body: new URLSearchParams({ token: jwt }),
      });
      return ((await response.json()) as { active: boolean }).active;
    };
    expect(await introspect(urls[2] as string)).toBe(true);
    const revoked = await fetch(`${urls[1]}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('agent-platform') },
      body: new URLSearchParams({ token: jwt }),
    });
    expect(revoked.status).toBe(200);
    const started = performance.now();
    const honoured = await Promise.all(
      [urls[0], urls[2]].map(async (url) => {
        while ((await introspect(url as string)) && performance.now() - started < 5000)
          await new Promise((resolve) => setTimeout(resolve, 20));
        return performance.now() - started;
      }),
    );
    for (const url of urls) expect(await introspect(url)).toBe(false);
    for (const elapsed of honoured) expect(elapsed).toBeLessThan(1000);
  });
});

describe.skipIf(skip)('single-use grants redeemed concurrently on two Baton processes', () => {
  const parallel = 20;
  const two = () => [urls[0] as string, urls[1] as string];
  /** The one 200 among `results`; every other is `refusal`. */
  const oneWinner = (results: PostResult[], refusal: Record<string, unknown>) => {
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status !== 200).map((r) => ({ status: r.status, body: r.body }))).toEqual(
      Array.from({ length: parallel - 1 }, () => ({ status: 400, body: refusal })),
    );
    return (results.find((r) => r.status === 200) as PostResult).body;
  };
  const refused = {
    status: 400,
    body: { error: 'invalid_grant', error_description: 'refresh token has been revoked' },
  };

  it('grants one redemption of a code sent to both at once, and revokes on both everything issued under it', async () => {
    const { code, verifier } = await consentedCode(at(urls[0] as string));
    const actors = await Promise.all(
      Array.from({ length: parallel }, () => mintAgentAssertion('orchestrator', issuer)),
    );
    const results = await Promise.all(
      actors.map((actor, i) => redeemCode(at(two()[i % 2] as string), code, verifier, actor)),
    );
    const won = oneWinner(results, {
      error: 'invalid_grant',
      error_description: 'authorization code has already been used; tokens issued from it are revoked',
    });
    expect(await stillActiveAfter(urls.map(at), [won.access_token as string], 1000)).toEqual([]);
    for (const url of two()) {
      const r = await refresh(at(url), won.refresh_token as string);
      expect({ status: r.status, body: r.body }).toEqual(refused);
    }
  });

  it('grants one use of a refresh token sent to both at once, and revokes on both its family and every access token of the grant', async () => {
    const { code, verifier } = await consentedCode(at(urls[1] as string));
    const first = await redeemCode(at(urls[1] as string), code, verifier);
    expect(first.status).toBe(200);
    const results = await Promise.all(
      Array.from({ length: parallel }, (_, i) =>
        refresh(at(two()[i % 2] as string), first.body.refresh_token as string),
      ),
    );
    const won = oneWinner(results, {
      error: 'invalid_grant',
      error_description: 'refresh token has already been used; its family is revoked',
    });
    expect(
      await stillActiveAfter(urls.map(at), [first.body.access_token as string, won.access_token as string], 1000),
    ).toEqual([]);
    for (const url of two()) {
      const r = await refresh(at(url), won.refresh_token as string);
      expect({ status: r.status, body: r.body }).toEqual(refused);
    }
  });

  it('accepts one use of an agent assertion sent to both at once', async () => {
    const assertion = await mintAgentAssertion('orchestrator', issuer);
    const results = await Promise.all(
      Array.from({ length: parallel }, (_, i) =>
        postToken(
          at(two()[i % 2] as string),
          {
            grant_type: 'client_credentials',
            client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
            client_assertion: assertion,
          },
          {},
        ),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status !== 200).map((r) => ({ status: r.status, body: r.body }))).toEqual(
      Array.from({ length: parallel - 1 }, () => ({
        status: 401,
        body: { error: 'invalid_client', error_description: 'client_assertion has already been used' },
      })),
    );
  });
});

describe.skipIf(skip)('revocation by action on three Baton processes', () => {
  /** A transfer decided at `url` on `token`, recorded under `actionId`. */
  const transfer = (url: string, token: string, actionId: string) =>
    postJson(
      at(url),
      '/authorize',
      {
        token,
        action: 'payments:transfer',
        resource: { type: 'Account', id: 'acct-1' },
        context: { amount: 1, currency: 'EUR' },
        action_id: actionId,
      },
      { authorization: basic('payments') },
    );
  const jtiOf = (token: string): string => decodeJwt(token).jti as string;

  it("revokes the action's code-flow grant on every instance within one second; concurrent calls count each token once", async () => {
    // The root is a code-flow grant: alice consents to orchestrator, which hands on to payments-subagent.
    const { code, verifier } = await consentedCode(at(urls[0] as string));
    const redeemed = await redeemCode(at(urls[0] as string), code, verifier);
    expect(redeemed.status).toBe(200);
    const root = redeemed.body.access_token as string;
    const hand = async (url: string) => {
      const r = await exchangeHop(at(url), root, tokenTypes.accessToken, 'payments-subagent');
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.access_token as string;
    };
    const subagent = await hand(urls[1] as string);
    const sibling = await hand(urls[2] as string);
    const actionId = `multi-${randomUUID()}`;
    expect((await transfer(urls[2] as string, subagent, actionId)).body).toEqual({
      decision: 'allow',
      action_id: actionId,
      reasons: ['transfer-up-to-100'],
    });
    const tree = [root, subagent, sibling];
    for (const url of urls) for (const t of tree) expect(await isActive(at(url), t)).toBe(true);

    const both = await Promise.all(
      [urls[0], urls[1]].map(async (url) =>
        postJson(
          at(url as string),
          '/admin/revoke',
          { action_id: actionId },
          await bearerOf(at(url as string), 'ops-console', 'baton:admin'),
        ),
      ),
    );
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    // The root grant is the code's grant: every token issued under it, whichever instance issued it.
    const [grant] = both[0]?.body.root_grants as string[];
    expect(grant).not.toBe(jtiOf(root));
    expect(both.map((r) => r.body.root_grants)).toEqual([[grant], [grant]]);
    expect(both.map((r) => r.body.revoked as number).reduce((a, b) => a + b)).toBe(3);
    expect(await stillActiveAfter(urls.map(at), tree, 1000)).toEqual([]);
    // The grant's refresh-token family goes with it, on every instance.
    for (const url of urls) {
      const r = await refresh(at(url), redeemed.body.refresh_token as string);
      expect({ status: r.status, body: r.body }).toEqual({
        status: 400,
        body: { error: 'invalid_grant', error_description: 'refresh token has been revoked' },
      });
    }
  });
});

describe.skipIf(skip)('one Baton process with BATON_WORKERS=2', () => {
  it('serves from two workers behind one port, and stops them all on SIGTERM', async () => {
    const keys = JSON.stringify(await generateSigningKeys('EdDSA'));
    const child = spawn(process.execPath, ['dist/node/main.js'], {
      env: {
        ...process.env,
        PORT: '0',
        DATABASE_URL: testDatabaseUrl as string,
        BATON_DATABASE_SCHEMA: schema,
        BATON_SIGNING_KEYS: keys,
        BATON_AUDIT_KEYS: auditKeys,
        BATON_ISSUER: issuer,
        BATON_WORKERS: '2',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    processes.push(child);
    const started: string[] = [];
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('workers did not start in 60 s')), 60_000);
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        const log = JSON.parse(line) as { message: string; url?: string; workers?: number };
        if (log.message === 'workers started') expect(log.workers).toBe(2);
        if (log.message === 'baton started') started.push(log.url as string);
        if (started.length === 2) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then((code) => reject(new Error(`exited with ${code} before both workers started`)));
    });
    expect(started[1]).toBe(started[0]);
    const instance = at(started[0] as string);
    const hops = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const first = await exchangeHop(
          instance,
          await mintUserToken('alice', { audience: issuer }),
          tokenTypes.jwt,
          'orchestrator',
          { audience: 'payments', scope: 'payments:transfer' },
        );
        const second = await exchangeHop(
          instance,
          first.body.access_token as string,
          tokenTypes.accessToken,
          'payments-subagent',
        );
        return [first.status, second.status];
      }),
    );
    expect(hops).toEqual(Array.from({ length: 8 }, () => [200, 200]));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
