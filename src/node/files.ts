import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { compileRegistry, RegistryError, type Registry } from '../core/registry.js';
import { generateSigningKeys, type PrivateJwks, type SigningAlgorithm } from '../adapters/signing-keys.js';

/** Reads a JSON file, naming the file in any error. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new RegistryError(file, [{ path: '', message: `cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}` }]);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RegistryError(file, [{ path: '', message: `is not valid JSON: ${error instanceof Error ? error.message : String(error)}` }]);
  }
}

/** Loads and compiles the registry file. */
export function loadRegistryFile(file: string, issuer: string, fetchImpl?: typeof fetch): Promise<Registry> {
  return compileRegistry(readJsonFile(file), { issuer, file, ...(fetchImpl === undefined ? {} : { fetch: fetchImpl }) });
}

/** The embedded default's signing keys: read from the data folder, generated there on first start. */
export async function loadOrCreateKeyFile(file: string, alg: SigningAlgorithm): Promise<{ jwks: PrivateJwks; created: boolean }> {
  if (existsSync(file)) return { jwks: JSON.parse(readFileSync(file, 'utf8')) as PrivateJwks, created: false };
  const jwks = await generateSigningKeys(alg);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { jwks, created: true };
}
