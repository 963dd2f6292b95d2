import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importJWK, SignJWT, type JWK } from 'jose';

/** The demo registry's published keys and secrets (policies/demo-keys): never trust them outside a laptop. */
export interface DemoKit {
  /** The agents' private JWKs, as each agent would hold its own. */
  readonly orchestratorJwk: JWK;
  readonly paymentsSubagentJwk: JWK;
  /** The private JWK of acme's demo identity provider, which signs alice's tokens. */
  readonly identityProviderJwk: JWK;
  /** Client secrets: the agent platform's (token endpoint), the payments API's (/authorize), the auditor's. */
  readonly secrets: { readonly agentPlatform: string; readonly payments: string; readonly opsConsole: string };
}

/** Reads the demo keys and client secrets from `dir` (default: policies/demo-keys under the current directory). */
export function readDemoKit(dir = join(process.cwd(), 'policies', 'demo-keys')): DemoKit {
  const json = (file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>;
  const secrets = json('client-secrets.json') as Record<string, string | undefined>;
  const secret = (id: string) => {
    const value = secrets[id];
    if (value === undefined) throw new Error(`${dir}/client-secrets.json has no secret for ${id}`);
    return value;
  };
  return {
    orchestratorJwk: json('orchestrator.private.jwk.json') as JWK,
    paymentsSubagentJwk: json('payments-subagent.private.jwk.json') as JWK,
    identityProviderJwk: json('id.acme.example.private.jwk.json') as JWK,
    secrets: {
      agentPlatform: secret('agent-platform'),
      payments: secret('payments'),
      opsConsole: secret('ops-console'),
    },
  };
}

/**
 * Alice's token as acme's identity provider (https://id.acme.example, trusted by the demo registry)
 * would issue it after she signs in and consents: for Baton, carrying the payments she allows.
 * It stands in for a real IdP, as `npx baton mint-user` does; the SDK has no part in it.
 */
export async function demoUserToken(
  kit: DemoKit,
  options: { readonly issuer: string; readonly user?: string; readonly authorizationDetails?: readonly object[] },
): Promise<string> {
  const jwk = kit.identityProviderJwk;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    scope: 'openid payments:read payments:transfer',
    ...(options.authorizationDetails === undefined ? {} : { authorization_details: options.authorizationDetails }),
  })
    .setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid as string, typ: 'JWT' })
    .setIssuer('https://id.acme.example')
    .setSubject(options.user ?? 'alice')
    .setAudience(options.issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .setJti(crypto.randomUUID())
    .sign(await importJWK(jwk, 'EdDSA'));
}
