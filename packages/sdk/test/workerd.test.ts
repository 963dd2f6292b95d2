import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSecret } from '../../../src/cli/demo-kit.js';
import { demoChain, startTestBaton, type TestBaton } from '../../../test/support/baton.js';

let baton: TestBaton;
let child: ChildProcess | undefined;
let url = '';
let output = '';
let token: string;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  baton = await startTestBaton();
  [, token] = await demoChain(baton);
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  // wrangler dev runs the Worker in a local workerd, loopback only.
  child = spawn(
    process.execPath,
    [
      'node_modules/wrangler/bin/wrangler.js',
      'dev',
      '--config',
      'packages/sdk/test/workerd/wrangler.toml',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--var',
      `BATON_ISSUER:${baton.issuer}`,
      '--var',
      `BATON_URL:${baton.url}`,
      '--var',
      `PAYMENTS_SECRET:${demoSecret('payments')}`,
    ],
    {
      env: {
        ...process.env,
        CI: 'true',
        WRANGLER_SEND_METRICS: 'false',
        CLOUDFLARE_CF_FETCH_ENABLED: 'false',
        NO_UPDATE_NOTIFIER: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/transfers`, { method: 'POST' })).status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`wrangler dev did not get ready:\n${output.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}, 120_000);

afterAll(async () => {
  if (child !== undefined && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((resolve) => child?.once('exit', resolve));
  }
  await baton?.close();
});

const transfer = async (amount: number, authorization?: string) => {
  const response = await fetch(`${url}/transfers?amount=${amount}`, {
    method: 'POST',
    headers: authorization === undefined ? {} : { authorization },
  });
  return [response.status, response.headers.get('www-authenticate'), await response.json()];
};

describe('the resource-server SDK inside workerd (no nodejs_compat)', () => {
  it('verifies the token, asks Baton, and refuses as on Node', async () => {
    expect(await transfer(50, `Bearer ${token}`)).toEqual([
      200,
      null,
      { chain: ['alice', 'orchestrator', 'payments-subagent'], actionId: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/) },
    ]);
    expect(await transfer(150, `Bearer ${token}`)).toEqual([
      403,
      null,
      {
        error: 'access_denied',
        error_description: 'Baton denied payments:transfer',
        action_id: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      },
    ]);
    expect(await transfer(50)).toEqual([
      401,
      'Bearer realm="https://payments.example"',
      { error_description: 'a Bearer token is required' },
    ]);
    const tampered = `${token.slice(0, -8)}AAAAAAAA`;
    expect(await transfer(50, `Bearer ${tampered}`)).toEqual([
      401,
      'Bearer realm="https://payments.example", error="invalid_token", error_description="the token signature does not verify"',
      { error: 'invalid_token', error_description: 'the token signature does not verify' },
    ]);
  });
});
