import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { expect } from 'vitest';
import { demoKeyDir, demoSecret } from '../../../src/cli/demo-kit.js';
import { authorizer, BatonError, OAuthResponseError, type Authorizer } from '../src/index.js';

/** A demo agent's private JWK (policies/demo-keys). */
export function demoJwk(agent: string): JWK {
  return JSON.parse(readFileSync(join(demoKeyDir, `${agent}.private.jwk.json`), 'utf8')) as JWK;
}

/** What an SDK call threw, as the fields a caller branches on. */
export async function refusal(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BatonError);
  const { name, code, message } = error as BatonError;
  return error instanceof OAuthResponseError
    ? { name, code, description: error.description, status: error.status }
    : { name, code, message };
}

/** The demo payments resource server's authorizer, asking `baton` with its client secret. */
export function paymentsAuthorizer(baton: { readonly url: string }): Authorizer {
  return authorizer({
    baseUrl: baton.url,
    credentials: { clientId: 'payments', clientSecret: demoSecret('payments') },
  });
}
