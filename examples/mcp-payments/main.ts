import { startPaymentsMcpServer } from './server.js';

// Defaults fit `npm start` (Baton on :8080 with the demo registry); PAYMENTS_SECRET is the payments
// resource server's secret (the demo's is in policies/demo-keys/client-secrets.json).
const env = process.env;
const secret = env.PAYMENTS_SECRET;
if (secret === undefined || secret === '') {
  console.error('Set PAYMENTS_SECRET to the payments resource server secret at Baton.');
  process.exit(1);
}
const server = await startPaymentsMcpServer({
  issuer: env.BATON_ISSUER ?? 'http://localhost:8080',
  audience: env.PAYMENTS_AUDIENCE ?? 'https://payments.example',
  resourceServer: { id: env.PAYMENTS_CLIENT_ID ?? 'payments', secret },
  port: Number(env.PORT ?? 3001),
  host: env.HOST ?? '127.0.0.1',
});
console.log(`Baton-protected payments MCP server at ${server.url}`);
const stop = () => void server.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
