// node-oidc-provider as the peer of Baton's client-credentials grant (bench/oidc-provider.mjs;
// see bench/README.md, "Peer: node-oidc-provider"). Started by the harness as
//
//   PORT=<port> BENCH_CLIENT_ID=<id> BENCH_CLIENT_SECRET=<secret> node bench/oidc-provider-server.mjs
//
// it listens on 127.0.0.1:<port> and logs nothing per request. One confidential client
// (client_secret_basic, grant_types ['client_credentials']); `resource=https://payments.example`
// with a scope yields a JWT access token (typ at+jwt) signed with EdDSA by a fresh Ed25519 key.
// Storage is the provider's default in-memory adapter; JWT access tokens are not even stored there.

import Provider, { errors } from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';
import { randomBytes } from 'node:crypto';
import process from 'node:process';

const resource = 'https://payments.example';
const resourceScope = 'payments:read payments:transfer';

const host = '127.0.0.1';
const port = Number(process.env.PORT);
const clientId = process.env.BENCH_CLIENT_ID;
const clientSecret = process.env.BENCH_CLIENT_SECRET;
if (!Number.isInteger(port) || port <= 0 || !clientId || !clientSecret) {
  process.stderr.write('oidc-provider-server: PORT, BENCH_CLIENT_ID and BENCH_CLIENT_SECRET must be set\n');
  process.exit(2);
}

// A fresh Ed25519 signing key per run, as the bench does for Baton (BATON_SIGNING_KEYS).
const { privateKey } = await generateKeyPair('Ed25519', { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), kid: 'bench-ed25519', alg: 'EdDSA', use: 'sig' };

const issuer = `http://${host}:${port}`;
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      // The only key is Ed25519: ID tokens (never issued here) would default to RS256.
      id_token_signed_response_alg: 'EdDSA',
    },
  ],
  jwks: { keys: [signingKey] },
  // Tokens bound to a resource server live as long as it says (accessTokenTTL below).
  ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300 },
  // The provider's own cookies are never set in this flow; fixed keys keep its start-up quiet.
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (resourceIndicator !== resource) throw new errors.InvalidTarget();
        return {
          scope: resourceScope,
          audience: resource,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'EdDSA' } },
        };
      },
    },
  },
});

// Unexpected errors only (a 500), never one line per request.
provider.on('server_error', (_ctx, error) => process.stderr.write(`server_error: ${error?.stack ?? error}\n`));

const server = provider.listen(port, host);
server.once('listening', () => process.stdout.write(`oidc-provider listening on ${issuer}\n`));
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
