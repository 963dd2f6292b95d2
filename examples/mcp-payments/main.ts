import { startPaymentsMcpServer } from './server.js';

// Defaults fit `npm start` (Baton on :8080 with the demo registry), whose resource server
// `mcp-payments` has this server's URL, http://localhost:3001/mcp, as its audience. PAYMENTS_SECRET is
// that resource server's secret (the demo's is in policies/demo-keys/client-secrets.json).
const env = process.env;
const secret = env.PAYMENTS_SECRET;
if (secret === undefined || secret === '') {
  console.error('Set PAYMENTS_SECRET to the mcp-payments resource server secret at Baton.');
  process.exit(1);
}
const port = Number(env.PORT ?? 3001);
// The URL MCP clients are given: the RFC 9728 `resource`, and the audience Baton binds their tokens to.
const url = env.MCP_URL ?? `http://localhost:${port}/mcp`;
const server = await startPaymentsMcpServer({
  issuer: env.BATON_ISSUER ?? 'http://localhost:8080',
  url,
  audience: env.PAYMENTS_AUDIENCE ?? url,
  resourceServer: { id: env.PAYMENTS_CLIENT_ID ?? 'mcp-payments', secret },
  port,
  host: env.HOST ?? '127.0.0.1',
});
console.log(`Baton-protected payments MCP server at ${server.url} (tokens for ${server.audience})`);
const stop = () => void server.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
