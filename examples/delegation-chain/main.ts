// Runs the delegation chain against a running Baton (`npm start`) and prints each step.
// BATON_URL (default http://localhost:8080) is where Baton answers; BATON_ISSUER, when Baton's
// issuer is another URL; BATON_DEMO_KEYS, where the demo keys are (default policies/demo-keys).
import { auditTrail, paymentUpTo, runDelegationChain, type AuditTrail } from './chain.js';
import { demoUserToken, readDemoKit } from './demo-kit.js';

const issuer = process.env.BATON_ISSUER ?? process.env.BATON_URL ?? 'http://localhost:8080';
const kit = readDemoKit(process.env.BATON_DEMO_KEYS);

// Alice signs in at her identity provider and lets her agents make payments of up to 200 EUR.
const userToken = await demoUserToken(kit, { issuer, authorizationDetails: [paymentUpTo('200.00')] });
console.log('alice signs in at https://id.acme.example: payments up to 200.00 EUR\n');

const { hops, calls, ledger } = await runDelegationChain({
  issuer,
  userToken,
  orchestratorJwk: kit.orchestratorJwk,
  paymentsSubagentJwk: kit.paymentsSubagentJwk,
  agentPlatformSecret: kit.secrets.agentPlatform,
  paymentsSecret: kit.secrets.payments,
});

for (const [i, hop] of hops.entries()) {
  const limit = hop.authorizationDetails?.map(amountOf).join(', ') ?? 'none';
  console.log(`hop ${i + 1}: token for ${hop.holder}`);
  console.log(`  act chain  ${hop.actChain.join(' → ')}`);
  console.log(`  scope      ${hop.scope ?? ''}`);
  console.log(`  limit      ${limit}\n`);
}

for (const call of calls) {
  console.log(`the model asks payments-subagent: transfer(${call.amount} EUR)`);
  if (call.outcome === 'ran') console.log(`  allowed, the tool ran: ${JSON.stringify(call.result)}`);
  else console.log(`  refused before the tool ran: ${call.error.code}, reasons ${call.error.reasons.join(', ')}`);
  console.log(`  action id  ${call.actionId}\n`);
}
console.log(`transfers made: ${ledger.map((t) => `${t.id} ${t.amount} ${t.currency}`).join(', ')}\n`);

// What an auditor (ops-console, holding baton:audit) sees for each action.
for (const call of calls) {
  const trail = await auditTrail({
    issuer,
    auditor: { id: 'ops-console', secret: kit.secrets.opsConsole },
    actionId: call.actionId,
  });
  printTrail(trail);
}

function printTrail(trail: AuditTrail): void {
  console.log(`audit trail of ${trail.action_id} (verified: ${trail.verified})`);
  for (const { seq, verified, entry } of trail.entries) {
    // The audit log lists actors newest first; reversed, it reads as the chain does.
    const actors = [entry.user, ...[...(entry.actor_chain as string[])].reverse()].join(' → ');
    const why = entry.type === 'decision' ? `  ${String(entry.reason)}` : '';
    console.log(
      `  #${seq} ${verified ? 'verified' : 'NOT VERIFIED'}  ${entry.type}  ${String(entry.decision)}  ${actors}  by ${(entry.policy_ids as string[]).join(', ')}${why}`,
    );
  }
  console.log('');
}

function amountOf(detail: object): string {
  const { instructedAmount } = detail as { instructedAmount?: { amount: string; currency: string } };
  return instructedAmount === undefined
    ? JSON.stringify(detail)
    : `up to ${instructedAmount.amount} ${instructedAmount.currency}`;
}
