import { decodeJwt } from 'jose';
import { expect } from 'vitest';
import { basic, bearerOf, demoChain, postJson, type Target } from './baton.js';

/** The audit suites' requests against one Baton, in memory or real. */
export function auditRequests(baton: Target & { readonly issuer: string }) {
  return {
    /** The Authorization header of a client-credentials token of `client` with `scope`. */
    bearer: (client: string, scope: string) => bearerOf(baton, client, scope),
    /** A GET, with its body as text and, on demand, as JSON. */
    async get(path: string, headers: Record<string, string>) {
      const response = await (baton.fetch ?? fetch)(`${baton.url}${path}`, { headers });
      const text = await response.text();
      return {
        status: response.status,
        headers: response.headers,
        text,
        json: () => JSON.parse(text) as Record<string, unknown>,
      };
    },
    /** The demo chain and a decision with `actionId`; returns the claims of the two tokens. */
    async chainAndDecision(actionId: string) {
      const [first, second] = await demoChain(baton, 'payments:read payments:transfer', 'payments:transfer');
      const decision = await postJson(
        baton,
        '/authorize',
        {
          token: second,
          action: 'payments:transfer',
          resource: { type: 'Account', id: 'acct-1' },
          context: { amount: 40, currency: 'EUR' },
          action_id: actionId,
        },
        { authorization: basic('payments'), 'x-request-id': 'req-7' },
      );
      expect(decision.body.decision).toBe('allow');
      return { first: decodeJwt(first), second: decodeJwt(second) };
    },
  };
}
