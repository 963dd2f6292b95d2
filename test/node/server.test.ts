import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeys } from '../../src/adapters/signing-keys.js';
import { RegistryError } from '../../src/core/registry/compile.js';
import { loadConfig } from '../../src/node/config.js';
import { startBaton } from '../../src/node/server.js';
import { basic, postToken, startTestBaton, type TestBaton } from '../support/baton.js';

const dir = mkdtempSync(join(tmpdir(), 'baton-registry-'));
const registryFile = join(dir, 'registry.json');
copyFileSync('policies/registry.json', registryFile);
let baton: TestBaton;
beforeAll(async () => {
  baton = await startTestBaton({ BATON_REGISTRY: registryFile });
});
afterAll(async () => {
  await baton?.close();
});

const clientCredentials = () =>
  postToken(
    baton,
    { grant_type: 'client_credentials', resource: 'https://calendar.example' },
    { authorization: basic('agent-platform') },
  );

describe('registry reload', () => {
  it('applies a good registry and keeps the running one when the new file is bad', async () => {
    expect((await clientCredentials()).status).toBe(200);

    const doc = JSON.parse(readFileSync(registryFile, 'utf8')) as { resource_servers: { id: string }[] };
    doc.resource_servers = doc.resource_servers.filter((rs) => rs.id !== 'calendar');
    writeFileSync(registryFile, JSON.stringify(doc));
    await baton.reloadRegistry();
    expect((await clientCredentials()).body).toEqual({
      error: 'invalid_target',
      error_description: 'resource "https://calendar.example" is not a known resource server',
    });

    writeFileSync(registryFile, '{"tenants": []}');
    await expect(baton.reloadRegistry()).rejects.toThrow(RegistryError);
    expect(
      (await postToken(baton, { grant_type: 'client_credentials' }, { authorization: basic('agent-platform') })).status,
    ).toBe(200);
    expect(baton.logger.lines.find((l) => l.message === 'registry.reload refused; the running one stays')).toEqual({
      level: 'error',
      message: 'registry.reload refused; the running one stays',
      fields: {
        by: 'SIGHUP',
        detail: `invalid registry ${registryFile}:\n  ${registryFile}: /tenants: Too small: expected array to have >=1 items`,
      },
    });
  });
});

describe('the Node server', () => {
  it('refuses an oversized body sent in chunks, with no length declared', async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        `${baton.url}/oauth2/token`,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: basic('agent-platform'),
            'transfer-encoding': 'chunked',
          },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.write('grant_type=client_credentials&pad=');
      for (let i = 0; i < 7; i++) req.write('x'.repeat(10_000));
      req.end();
    });
    expect({ status: answer.status, body: JSON.parse(answer.body) as unknown }).toEqual({
      status: 413,
      body: { error: 'invalid_request', error_description: 'request body is larger than 65536 bytes' },
    });
  });

  it('reports health and readiness', async () => {
    expect(await (await fetch(`${baton.url}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${baton.url}/readyz`)).json()).toEqual({ status: 'ready' });
  });
});

describe('start-up', () => {
  it('refuses a bad registry with file, path and reason', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({
        tenants: [{ id: 'acme', name: 'Acme' }],
        agents: [{ id: 'a', tenant: 'nope', name: 'A', owner: 'alice', jwks_uri: 'https://a.example/jwks' }],
      }),
    );
    const config = loadConfig({
      PORT: '0',
      BATON_REGISTRY: bad,
      BATON_SIGNING_KEYS: JSON.stringify(await generateSigningKeys('EdDSA')),
    });
    const { openPglite } = await import('../../src/adapters/db/pglite.js');
    const database = await openPglite(undefined);
    await expect(startBaton(config, { database, logger: baton.logger })).rejects.toThrow(
      `invalid registry ${bad}:\n  ${bad}: /agents/0/tenant: unknown tenant "nope"`,
    );
    await database.close();
  });

  it('refuses DATABASE_URL without configured signing keys', async () => {
    const config = loadConfig({ PORT: '0', DATABASE_URL: 'postgres://127.0.0.1:1/none' });
    await expect(startBaton(config, { logger: baton.logger })).rejects.toThrow(
      'BATON_SIGNING_KEYS or BATON_SIGNING_KEYS_FILE is required with DATABASE_URL',
    );
  });
});
