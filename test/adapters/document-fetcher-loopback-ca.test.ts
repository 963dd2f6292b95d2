import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeDocumentFetcher } from '../../src/adapters/node-document-fetcher.js';
import { DocumentFetchError } from '../../src/core/errors.js';
import { selfSignedCertificate, type SelfSigned } from '../support/tls.js';

// BATON_CIMD_LOOPBACK_CA_FILE: in development, a client ID metadata document served over https on
// loopback with a certificate of its own (as an MCP client's must be: the MCP SDK uses https URLs only).

let certificate: SelfSigned;
let other: SelfSigned;
let server: Server;
let url: string;
const body = JSON.stringify({ client_id: 'x' });

beforeAll(async () => {
  certificate = selfSignedCertificate();
  other = selfSignedCertificate();
  server = createServer({ key: certificate.key, cert: certificate.cert }, (_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(body),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/client.json`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => 'fetched',
    (error: unknown) => [error instanceof DocumentFetchError, (error as Error).message],
  );

describe('https to loopback in development', () => {
  it('fetches the document when its certificate is the configured loopback CA', async () => {
    const fetcher = nodeDocumentFetcher({ allowHttpLoopback: true, loopbackCa: certificate.cert });
    expect(await fetcher.get(url)).toMatchObject({ status: 200, contentType: 'application/json', body });
  });

  it('refuses loopback over https without a loopback CA, as before', async () => {
    const fetcher = nodeDocumentFetcher({ allowHttpLoopback: true });
    expect(await failure(fetcher.get(url))).toEqual([
      true,
      'the host 127.0.0.1 resolves to an address that is not public',
    ]);
  });

  it('ignores the loopback CA without the development setting', async () => {
    const fetcher = nodeDocumentFetcher({ allowHttpLoopback: false, loopbackCa: certificate.cert });
    expect(await failure(fetcher.get(url))).toEqual([
      true,
      'the host 127.0.0.1 resolves to an address that is not public',
    ]);
  });

  it('refuses a certificate the loopback CA did not sign', async () => {
    const fetcher = nodeDocumentFetcher({ allowHttpLoopback: true, loopbackCa: other.cert });
    expect(await failure(fetcher.get(url))).toEqual([true, 'the connection failed (DEPTH_ZERO_SELF_SIGNED_CERT)']);
  });

  it('refuses a name the loopback CA does not cover: loopback only, even if it resolves there', async () => {
    const fetcher = nodeDocumentFetcher({
      allowHttpLoopback: true,
      loopbackCa: certificate.cert,
      resolve: async () => [{ address: '127.0.0.1', family: 4 }],
    });
    expect(await failure(fetcher.get(url.replace('127.0.0.1', 'mcp.example')))).toEqual([
      true,
      'the host mcp.example resolves to an address that is not public',
    ]);
  });
});
