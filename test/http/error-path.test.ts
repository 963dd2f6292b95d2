import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/core/audit/chain.js';
import { createRefusalTally } from '../../src/core/audit/refusal-tally.js';
import type { ServiceContext } from '../../src/core/context.js';
import { StorageUnavailableError } from '../../src/core/errors.js';
import type { LogFields, Logger } from '../../src/core/ports.js';
import { createApp } from '../../src/http/app.js';
import { errorPage } from '../../src/http/pages.js';

/**
 * The one error path, through `createApp(deps).request()`: the service is only what these
 * refusals reach (an empty registry, the metrics, the audit log), and the audit log either keeps
 * what it is given or fails as the test says.
 */
function appWith(append: (event: AuditEvent) => Promise<void>) {
  const lines: { level: string; message: string; fields: LogFields | undefined }[] = [];
  const push = (level: string) => (message: string, fields?: LogFields) => void lines.push({ level, message, fields });
  const logger: Logger = { info: () => undefined, warn: push('warn'), error: push('error') };
  const service = {
    issuer: 'https://baton.example',
    registry: () => ({ callers: new Map(), agents: new Map(), resourceServers: new Map() }),
    audit: { append },
    metrics: { request: () => undefined },
  } as unknown as ServiceContext;
  const fail = () => Promise.reject(new Error('not reached'));
  const app = createApp({
    service,
    logger,
    maxBodyBytes: 1024,
    checkReady: fail,
    reload: { registry: fail },
    policies: { reload: fail, upload: fail, rollback: fail, list: fail },
    auditQueries: {} as never,
    metricsText: fail,
    refusals: createRefusalTally({ clock: { now: () => Date.UTC(2026, 0, 1) }, intervalSeconds: 60 }),
    remoteAddress: () => '203.0.113.9',
  });
  return { app, lines };
}

const unavailable = () => Promise.reject(new StorageUnavailableError(new Error('connection refused')));
const unknownClient = '/oauth2/authorize?client_id=nobody&redirect_uri=https%3A%2F%2Fapp.example%2Fcb';
const refusalBy = (route: string, reason: string): AuditEvent => ({
  tenant: 'unknown',
  type: 'request.refusal',
  decision: 'refused',
  client: null,
  reason: `${route} from address 203.0.113.9: ${reason}`,
  request_id: 'req-1',
});

describe('a sign-in page', () => {
  it('whose store does not answer is a page saying so, in the browser language, with Retry-After', async () => {
    const { app, lines } = appWith(unavailable);
    const response = await app.request(unknownClient, { headers: { 'accept-language': 'de' } });
    expect(response.status).toBe(503);
    expect(Object.fromEntries(response.headers)).toEqual({
      'cache-control': 'no-store',
      'content-language': 'de',
      'content-security-policy':
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      'content-type': 'text/html; charset=UTF-8',
      pragma: 'no-cache',
      'referrer-policy': 'no-referrer',
      'retry-after': '1',
      // Baton's span of this request, in a trace it started (no traceparent was sent).
      traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/),
      vary: 'Accept-Language',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
    });
    expect(await response.text()).toBe(
      String(await errorPage('de', { text: 'The service is unavailable right now. Try again in a moment.' })),
    );
    expect(lines).toEqual([
      {
        level: 'warn',
        message: 'sign-in page unavailable: storage did not answer',
        fields: { detail: 'storage unavailable: connection refused' },
      },
    ]);
  });

  it('that fails unexpectedly answers server_error as JSON, and logs the detail', async () => {
    const { app, lines } = appWith(() => Promise.reject(new Error('a defect')));
    const response = await app.request(unknownClient);
    expect({
      status: response.status,
      body: await response.json(),
      challenge: response.headers.get('www-authenticate'),
    }).toEqual({
      status: 500,
      body: { error: 'server_error', error_description: 'the server could not process the request' },
      challenge: null,
    });
    expect(lines).toEqual([
      {
        level: 'error',
        message: 'unexpected error',
        fields: { route: '/oauth2/authorize', detail: 'Error: a defect' },
      },
    ]);
  });
});

describe('a refusal before the endpoint logic', () => {
  it('at an API carries the caller challenge, and is audited through the tally under its route', async () => {
    const written: AuditEvent[] = [];
    const { app } = appWith(async (event) => void written.push(event));
    const response = await app.request('/metrics', { headers: { 'x-request-id': 'req-1' } });
    expect({
      status: response.status,
      body: await response.json(),
      challenge: response.headers.get('www-authenticate'),
    }).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'authentication is required' },
      challenge: 'Basic realm="baton", Bearer realm="baton"',
    });
    expect(written).toEqual([refusalBy('GET /metrics', 'invalid_client (401): authentication is required')]);
  });

  it('at the token endpoint carries the client challenge', async () => {
    const written: AuditEvent[] = [];
    const { app } = appWith(async (event) => void written.push(event));
    const response = await app.request('/oauth2/revoke', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-1' },
      body: '{}',
    });
    expect({ status: response.status, body: await response.json() }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'content type must be application/x-www-form-urlencoded' },
    });
    expect(written).toEqual([
      refusalBy('POST /oauth2/revoke', 'invalid_request (400): content type must be application/x-www-form-urlencoded'),
    ]);
  });

  it('whose audit entry cannot be written answers 503, keeping the headers the route set', async () => {
    const { app } = appWith(unavailable);
    const response = await app.request('/oauth2/token', { method: 'PUT' });
    expect({
      status: response.status,
      body: await response.json(),
      allow: response.headers.get('allow'),
      retry: response.headers.get('retry-after'),
    }).toEqual({
      status: 503,
      body: {
        error: 'temporarily_unavailable',
        error_description: 'the service is temporarily unavailable; retry later',
      },
      allow: 'POST',
      retry: '1',
    });
  });
});
