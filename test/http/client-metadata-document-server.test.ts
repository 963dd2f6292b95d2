import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postToken, startTestBaton, type TestBaton } from '../support/baton.js';
import { pkce, read, submit } from '../support/consent.js';

// The same flow as client-metadata-document.test.ts, on a real Baton: its configuration
// (BATON_CIMD_ALLOW_HTTP_LOOPBACK), the Node fetcher it builds, PostgreSQL storage and a socket.
let documents: Server;
let baton: TestBaton;
let clientId: string;

beforeAll(async () => {
  documents = createServer((req, res) => {
    if (req.url !== '/mcp-client.json') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    res.end(
      JSON.stringify({
        client_id: clientId,
        client_name: 'Loopback MCP Client',
        redirect_uris: ['http://127.0.0.1/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'none',
      }),
    );
  });
  await new Promise<void>((ready) => documents.listen(0, '127.0.0.1', ready));
  clientId = `http://127.0.0.1:${(documents.address() as AddressInfo).port}/mcp-client.json`;
  baton = await startTestBaton({ BATON_CIMD_ALLOW_HTTP_LOOPBACK: 'true' });
});

afterAll(async () => {
  await baton.close();
  await new Promise((done) => documents.close(done));
});

describe('a client ID metadata document on a running Baton (development setting on)', () => {
  it('signs alice in, issues a code to the loopback port and redeems it for a token of the resource', async () => {
    const { verifier, challenge } = pkce();
    const redirectUri = 'http://127.0.0.1:49999/callback';
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: redirectUri,
      scope: 'payments:read payments:transfer',
      state: 'st',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      resource: 'https://payments.example',
    });
    const loginResponse = await fetch(`${baton.url}/oauth2/authorize?${query}`, { redirect: 'manual' });
    expect(loginResponse.status).toBe(200);
    const consent = await submit(baton, '/oauth2/authorize/login', await read(loginResponse), {
      username: 'alice',
      password: 'alice-demo-password',
    });
    const approved = await submit(baton, '/oauth2/authorize/consent', consent, { decision: 'approve' });
    const location = new URL(approved.location ?? 'missing:');
    expect(`${location.origin}${location.pathname}`).toBe(redirectUri);
    const token = await postToken(
      baton,
      {
        grant_type: 'authorization_code',
        code: location.searchParams.get('code') ?? '',
        redirect_uri: redirectUri,
        code_verifier: verifier,
        client_id: clientId,
        resource: 'https://payments.example',
      },
      {},
    );
    expect(token.status, JSON.stringify(token.body)).toBe(200);
    expect(decodeJwt(token.body.access_token as string)).toMatchObject({
      aud: 'https://payments.example',
      sub: 'alice',
      client_id: clientId,
      scope: 'payments:read payments:transfer',
    });
  });

  it('advertises client ID metadata documents', async () => {
    const metadata = (await (await fetch(`${baton.url}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    expect(metadata.client_id_metadata_document_supported).toBe(true);
  });
});
