import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton();
});
afterAll(async () => {
  await baton?.close();
});

const origin = 'https://inspector.example';
const corsHeaders = (response: Response) =>
  Object.fromEntries([...response.headers].filter(([name]) => name.startsWith('access-control-') || name === 'vary'));

describe('cross-origin calls of OAuth clients in a web page', () => {
  it.each(['/oauth2/token', '/oauth2/register', '/oauth2/revoke', '/.well-known/oauth-authorization-server'])(
    'answers the preflight of %s for any origin',
    async (path) => {
      const response = await baton.fetch(`${baton.url}${path}`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
      expect(response.status).toBe(204);
      expect(corsHeaders(response)).toEqual({
        'access-control-allow-origin': '*',
        'access-control-expose-headers': 'WWW-Authenticate,Retry-After',
        'access-control-allow-methods': 'GET,POST',
        'access-control-allow-headers': 'Authorization,Content-Type,MCP-Protocol-Version',
        'access-control-max-age': '600',
        vary: 'Access-Control-Request-Headers',
      });
    },
  );

  it('lets a page read the metadata, the JWKS and a token endpoint refusal with its challenge', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/jwks.json']) {
      const response = await baton.fetch(`${baton.url}${path}`, { headers: { origin } });
      expect(response.status).toBe(200);
      expect(corsHeaders(response)).toEqual({
        'access-control-allow-origin': '*',
        'access-control-expose-headers': 'WWW-Authenticate,Retry-After',
      });
    }
    const refused = await baton.fetch(`${baton.url}/oauth2/token`, {
      method: 'POST',
      headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
    expect(await refused.json()).toEqual({
      error: 'invalid_client',
      error_description: 'client authentication is required',
    });
  });

  it.each([
    ['GET', '/oauth2/authorize'],
    ['POST', '/authorize'],
    ['GET', '/audit/entries'],
    ['GET', '/admin/agents'],
  ])('gives no cross-origin access to %s %s', async (method, path) => {
    const response = await baton.fetch(`${baton.url}${path}`, { method, headers: { origin } });
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});
