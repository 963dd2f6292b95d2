// A user delegates to an orchestrator agent, which delegates to a payments sub-agent, whose
// `transfer` tool asks Baton before each call. No LLM: the "model" is a list of proposed calls.
import {
  agentIdentity,
  authorizer,
  batonClient,
  guardTool,
  tokenCache,
  ToolDeniedError,
  type Fetch,
  type IssuedToken,
} from '@baton-sts/sdk';
import type { JWK } from 'jose';

/** What the chain needs: where Baton is, the user's token, and each party's own key or secret. */
export interface ChainOptions {
  /** Baton's issuer (for `npm start`, its URL: http://localhost:8080). */
  readonly issuer: string;
  /** Alice's token from her identity provider, the start of the chain. */
  readonly userToken: string;
  /** Each agent holds its own private key; here both live in one process for the demo. */
  readonly orchestratorJwk: JWK;
  readonly paymentsSubagentJwk: JWK;
  /** The agent platform's client secret: the client that runs both agents at Baton's token endpoint. */
  readonly agentPlatformSecret: string;
  /** The payments API's secret: the resource server that asks Baton's /authorize. */
  readonly paymentsSecret: string;
  /** The amounts (EUR) the "model" asks the sub-agent to transfer, in order. */
  readonly amounts?: readonly number[];
  readonly fetch?: Fetch;
}

/** One token of the chain: who holds it and what it allows. */
export interface Hop {
  readonly holder: string;
  /** The user, then the actors oldest first: `['alice', 'orchestrator']`. */
  readonly actChain: readonly string[];
  readonly jti: string;
  readonly audience: unknown;
  readonly scope: string | undefined;
  readonly authorizationDetails: readonly object[] | undefined;
}

/** A transfer the tool carried out (the stand-in for a payments API). */
export type Transfer = { readonly id: string; readonly amount: number; readonly currency: string };

/** One tool call the "model" made, and what came of it. */
export type ToolCall =
  | { readonly amount: number; readonly actionId: string; readonly outcome: 'ran'; readonly result: Transfer }
  | { readonly amount: number; readonly actionId: string; readonly outcome: 'denied'; readonly error: ToolDeniedError };

/** What happened: the two hops, each tool call, and what the tool actually did. */
export interface ChainResult {
  readonly hops: readonly [Hop, Hop];
  readonly calls: readonly ToolCall[];
  /** Every transfer the tool ran: a denied call never reaches it. */
  readonly ledger: readonly Transfer[];
}

/** An RFC 9396 payment_initiation entry for up to `amount` EUR, the type Baton's payment policies read. */
export function paymentUpTo(amount: string): object {
  return { type: 'payment_initiation', actions: ['initiate'], instructedAmount: { currency: 'EUR', amount } };
}

/** Runs alice → orchestrator → payments-subagent → guarded `transfer`, once per amount. */
export async function runDelegationChain(options: ChainOptions): Promise<ChainResult> {
  const { issuer, fetch } = options;
  const withFetch = fetch === undefined ? {} : { fetch };

  // The agent platform's client at Baton's token endpoint. The cache hands the same token back
  // for the same request until shortly before it expires, so the guard can ask for the
  // sub-agent's token at every call without an exchange each time.
  const baton = batonClient({
    issuer,
    client: { id: 'agent-platform', secret: options.agentPlatformSecret },
    ...withFetch,
  });
  const tokens = tokenCache(baton);

  // Each agent proves who it is with a fresh, single-use assertion signed by its own key.
  const orchestrator = agentIdentity({ id: 'orchestrator', privateJwk: options.orchestratorJwk, issuer });
  const paymentsSubagent = agentIdentity({ id: 'payments-subagent', privateJwk: options.paymentsSubagentJwk, issuer });

  // Hop 1: the orchestrator acts for alice at the payments API, asking for less than she allowed:
  // transfers up to 100 EUR. Baton refuses a request her token does not cover.
  const orchestratorToken = await tokens.delegate(options.userToken, {
    actor: orchestrator,
    audience: 'payments',
    scope: ['payments:read', 'payments:transfer'],
    authorizationDetails: [paymentUpTo('100.00')],
  });

  // Hop 2: the sub-agent acts for alice through the orchestrator, with the transfer scope only
  // (it never reads). The 100 EUR limit carries over: a hop may narrow it, never drop it.
  const subagentToken = () =>
    tokens.delegate(orchestratorToken.accessToken, { actor: paymentsSubagent, scope: 'payments:transfer' });
  const hops: [Hop, Hop] = [hop('orchestrator', orchestratorToken), hop('payments-subagent', await subagentToken())];

  // The payments API's side: it asks Baton before any transfer, with its own credentials.
  const payments = authorizer({
    issuer,
    credentials: { clientId: 'payments', clientSecret: options.paymentsSecret },
    ...withFetch,
  });

  // The tool the "model" may call: it sees amounts and currencies, never a token.
  const ledger: Transfer[] = [];
  let actionId = '';
  const transfer = guardTool(
    'transfer',
    (args: { amount: number; currency: string }): Transfer => {
      const done = { id: `tr-${ledger.length + 1}`, ...args };
      ledger.push(done);
      return done;
    },
    {
      authorizer: payments,
      action: 'payments:transfer', // the tool's name is not Baton's action: map it
      resource: { type: 'Account', id: 'acct-1' },
      token: async () => (await subagentToken()).accessToken, // read at call time, from the cache
      actionId: () => actionId, // the agent's own id for the call, so its logs and Baton's audit trail meet
    },
  );

  const calls: ToolCall[] = [];
  for (const amount of options.amounts ?? [50, 150]) {
    actionId = `transfer-${crypto.randomUUID()}`;
    try {
      calls.push({ amount, actionId, outcome: 'ran', result: await transfer({ amount, currency: 'EUR' }) });
    } catch (error) {
      // A denial is the tool's answer to the model; anything else (Baton unreachable) is not.
      if (!(error instanceof ToolDeniedError)) throw error;
      calls.push({ amount, actionId: error.actionId, outcome: 'denied', error });
    }
  }
  return { hops, calls, ledger };
}

function hop(holder: string, token: IssuedToken): Hop {
  return {
    holder,
    actChain: token.claims.actChain,
    jti: token.claims.jti as string,
    audience: token.claims.aud,
    scope: token.scope,
    authorizationDetails: token.authorizationDetails,
  };
}

/** One entry of an action's audit trail: its place in the log, whether its hash chain verifies, what it records. */
export interface AuditTrailEntry {
  readonly seq: number;
  readonly hash: string;
  readonly verified: boolean;
  readonly entry: { readonly type: string; readonly [field: string]: unknown };
}

/** An action's audit trail as `GET /audit/actions/{id}` gives it: the grants behind it, root first, then the decision. */
export interface AuditTrail {
  readonly action_id: string;
  readonly verified: boolean;
  readonly entries: readonly AuditTrailEntry[];
  readonly gaps: readonly unknown[];
}

/** Reads an action's audit trail as an auditor (a client holding `baton:audit`, here the demo's ops-console). */
export async function auditTrail(options: {
  readonly issuer: string;
  readonly auditor: { readonly id: string; readonly secret: string };
  readonly actionId: string;
  readonly fetch?: Fetch;
}): Promise<AuditTrail> {
  const { issuer, auditor, actionId, fetch = globalThis.fetch } = options;
  const { accessToken } = await batonClient({ issuer, client: auditor, fetch }).clientCredentials({
    scope: 'baton:audit',
  });
  const response = await fetch(`${issuer.replace(/\/$/, '')}/audit/actions/${encodeURIComponent(actionId)}`, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  if (!response.ok) throw new Error(`GET /audit/actions/${actionId}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as AuditTrail;
}
