import { Hono, type Context } from 'hono';
import { authorizer, batonVerifier, requireBaton, type BatonRequestState } from '../../src/index.js';

type Env = {
  Bindings: { BATON_ISSUER: string; BATON_URL: string; PAYMENTS_SECRET: string };
  Variables: { baton: BatonRequestState };
};

/** The payments API guarded by the SDK, built once per isolate from its bindings. */
function paymentsApi(bindings: Env['Bindings']): Hono<Env> {
  const verifier = batonVerifier({
    issuer: bindings.BATON_ISSUER,
    jwksUri: `${bindings.BATON_URL}/.well-known/jwks.json`,
  });
  const baton = authorizer({
    baseUrl: bindings.BATON_URL,
    credentials: { clientId: 'payments', clientSecret: bindings.PAYMENTS_SECRET },
  });
  const app = new Hono<Env>();
  app.post(
    '/transfers',
    requireBaton<Context<Env, '/transfers'>>({
      verifier,
      audience: 'https://payments.example',
      scopes: ['payments:transfer'],
      authorizer: baton,
      action: 'payments:transfer',
      resource: () => ({ type: 'Account', id: 'acct-1' }),
      context: (c) => ({ amount: Number(c.req.query('amount')), currency: 'EUR' }),
    }),
    (c) => c.json({ chain: c.get('baton').claims.actChain, actionId: c.get('baton').actionId }),
  );
  return app;
}

let app: Hono<Env> | undefined;

/** workerd reads a module Worker's handlers from its default export. */
// eslint-disable-next-line no-restricted-syntax
export default {
  fetch(request: Request, bindings: Env['Bindings']): Response | Promise<Response> {
    app ??= paymentsApi(bindings);
    return app.fetch(request, bindings);
  },
};
