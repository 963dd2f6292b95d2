import { decodeJwt } from 'jose';
import { expect } from 'vitest';
import { basic, demoChain, postJson, postToken, type Target } from './baton.js';

/** The audit suites' requests against one Baton, in memory or real. */
export function auditRequests(baton: Target & { readonly issuer: string }) {
  return {
    /** The Authorization header of a client-credentials token of `client` with `scope`. */
    async bearer(client: string, scope: string): Promise<Record<string, string>> {
      const result = await postToken(
        baton,
        { grant_type: 'client_credentials', scope },
        { authorization: basic(client) },
      );
      return { authorization: `Bearer ${result.body.access_token as string}` };
    },
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
