import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { demoSecret, mintAgentAssertion, mintUserToken } from './demo-kit.js';

const exchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
const tokenType = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
};

interface Metadata {
  issuer: string;
  token_endpoint: string;
  jwks_uri: string;
}

async function exchange(meta: Metadata, params: Record<string, string>): Promise<Record<string, unknown>> {
  const credentials = btoa(`agent-platform:${encodeURIComponent(demoSecret('agent-platform'))}`);
  const response = await fetch(meta.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${credentials}` },
    body: new URLSearchParams({ grant_type: exchangeGrant, ...params }),
  });
  const body = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new Error(`token exchange refused (${response.status}): ${JSON.stringify(body)}`);
  return body;
}

/**
 * Walks the main job against a running Baton: alice's token from the demo identity provider,
 * exchanged for the orchestrator, then for the payments sub-agent; prints each token's claims.
 */
export async function runDemo(baseUrl: string, print: (line: string) => void): Promise<void> {
  const meta = (await (await fetch(new URL('/.well-known/oauth-authorization-server', baseUrl))).json()) as Metadata;
  const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
  const show = (title: string, token: string): void => {
    print(`\n${title}\n${JSON.stringify(decodeJwt(token), null, 2)}`);
  };

  const alice = await mintUserToken('alice', {
    audience: meta.issuer,
    scope: 'openid payments:read payments:transfer',
  });
  show('1. alice signs in at the demo identity provider https://id.acme.example:', alice);

  const first = await exchange(meta, {
    subject_token: alice,
    subject_token_type: tokenType.jwt,
    actor_token: await mintAgentAssertion('orchestrator', meta.issuer),
    actor_token_type: tokenType.jwt,
    audience: 'payments',
    scope: 'payments:read payments:transfer',
  });
  show(
    '2. the orchestrator exchanges it (RFC 8693) for a token to act for alice at payments:',
    first.access_token as string,
  );

  const second = await exchange(meta, {
    subject_token: first.access_token as string,
    subject_token_type: tokenType.accessToken,
    actor_token: await mintAgentAssertion('payments-subagent', meta.issuer),
    actor_token_type: tokenType.jwt,
    scope: 'payments:transfer',
  });
  show(
    '3. the orchestrator hands down to payments-subagent, with less scope and a nested act:',
    second.access_token as string,
  );

  for (const token of [first.access_token, second.access_token] as string[]) {
    await jwtVerify(token, jwks, { issuer: meta.issuer, typ: 'at+jwt' });
  }
  print(`\nBoth Baton tokens verify against ${meta.jwks_uri}. Chain: alice -> orchestrator -> payments-subagent.`);
}
