import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { basic, startTestBaton, type TestBaton } from '../support/baton.js';

interface Answer {
  readonly status: number;
  readonly connection: string | undefined;
  readonly body: string;
  readonly reusedSocket: boolean;
}

/** One request through `agent`; rejects with the error (its code) when there is no answer. */
function call(agent: Agent, baseUrl: string, method: string, path: string): Promise<Answer> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ agent, host: url.hostname, port: url.port, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          connection: res.headers.connection,
          body: Buffer.concat(chunks).toString(),
          reusedSocket: req.reusedSocket,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

const grantBody = 'grant_type=client_credentials&resource=https%3A%2F%2Fcalendar.example';

/**
 * A token request whose headers are in and whose body is still on its way: Baton is serving it
 * (the 100 Continue says so) until `finish()` sends the rest. `received` is all that came back
 * once the server has closed the connection.
 */
async function requestInFlight(baton: TestBaton): Promise<{ finish(): void; received: Promise<string> }> {
  const url = new URL(baton.url);
  const socket: Socket = connect(Number(url.port), url.hostname);
  let received = '';
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(received)));
  socket.on('error', () => undefined);
  socket.write(
    [
      'POST /oauth2/token HTTP/1.1',
      `Host: ${url.host}`,
      'Content-Type: application/x-www-form-urlencoded',
      `Authorization: ${basic('agent-platform')}`,
      `Content-Length: ${grantBody.length}`,
      'Expect: 100-continue',
      '',
      grantBody.slice(0, 10),
    ].join('\r\n'),
  );
  await new Promise<void>((resolve) =>
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
      if (received.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) resolve();
    }),
  );
  return { finish: () => socket.write(grantBody.slice(10)), received: closed };
}

const drainLines = (baton: TestBaton) => baton.logger.lines.filter((l) => l.message.startsWith('drain '));

describe('draining on stop', () => {
  it('answers what it has and what still comes on open connections with Connection: close, refuses new connections, says 503 at /readyz, then stops', async () => {
    const baton = await startTestBaton();
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    expect(await call(keepAlive, baton.url, 'GET', '/readyz')).toEqual({
      status: 200,
      connection: 'keep-alive',
      body: '{"status":"ready"}',
      reusedSocket: false,
    });
    const inFlight = await requestInFlight(baton);

    const stopped = baton.close();
    const stoppedAgain = baton.close();
    // A request on a connection that was idle when the drain began: answered, and told to close.
    expect(await call(keepAlive, baton.url, 'GET', '/readyz')).toEqual({
      status: 503,
      connection: 'close',
      body: '{"status":"unavailable"}',
      reusedSocket: true,
    });
    await expect(call(new Agent(), baton.url, 'GET', '/healthz')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    inFlight.finish();
    const [head, body] = (await inFlight.received).replace('HTTP/1.1 100 Continue\r\n\r\n', '').split('\r\n\r\n') as [
      string,
      string,
    ];
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    expect(head.toLowerCase().split('\r\n')).toContain('connection: close');
    expect(JSON.parse(body)).toMatchObject({ token_type: 'Bearer', access_token: expect.stringMatching(/^eyJ/) });
    await Promise.all([stopped, stoppedAgain]);

    expect(drainLines(baton)).toEqual([
      { level: 'info', message: 'drain started', fields: { in_flight: 1, timeout_seconds: 10 } },
      {
        level: 'info',
        message: 'drain finished',
        fields: { in_flight: 1, answered: 2, abandoned: 0, deadline_hit: false, duration_ms: expect.any(Number) },
      },
    ]);
    keepAlive.destroy();
  });

  it('cuts what is still unanswered at BATON_DRAIN_TIMEOUT and stops then', async () => {
    const baton = await startTestBaton({ BATON_DRAIN_TIMEOUT: '1' });
    const inFlight = await requestInFlight(baton);
    const started = performance.now();
    await baton.close();
    const elapsed = performance.now() - started;

    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThan(2500);
    expect(await inFlight.received).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    expect(drainLines(baton)).toEqual([
      { level: 'info', message: 'drain started', fields: { in_flight: 1, timeout_seconds: 1 } },
      {
        level: 'info',
        message: 'drain finished',
        fields: { in_flight: 1, answered: 0, abandoned: 1, deadline_hit: true, duration_ms: expect.any(Number) },
      },
    ]);
  });

  it('after stopAccepting alone, refuses new connections and says 503 at /readyz, and serves open connections as before until close()', async () => {
    const baton = await startTestBaton();
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    expect(await call(keepAlive, baton.url, 'GET', '/healthz')).toEqual({
      status: 200,
      connection: 'keep-alive',
      body: '{"status":"ok"}',
      reusedSocket: false,
    });

    baton.stopAccepting();
    await expect(call(new Agent(), baton.url, 'GET', '/healthz')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await call(keepAlive, baton.url, 'GET', '/readyz')).toEqual({
      status: 503,
      connection: 'keep-alive',
      body: '{"status":"unavailable"}',
      reusedSocket: true,
    });
    expect(drainLines(baton)).toEqual([]);
    await baton.close();

    expect(drainLines(baton)).toEqual([
      { level: 'info', message: 'drain started', fields: { in_flight: 0, timeout_seconds: 10 } },
      {
        level: 'info',
        message: 'drain finished',
        fields: { in_flight: 0, answered: 0, abandoned: 0, deadline_hit: false, duration_ms: expect.any(Number) },
      },
    ]);
    keepAlive.destroy();
  });
});
