import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { expect } from 'vitest';
import { demoKeyDir } from '../../../src/cli/demo-kit.js';
import { BatonError, OAuthResponseError } from '../src/index.js';

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
