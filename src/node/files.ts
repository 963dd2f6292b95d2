import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PolicySetError, policySourceOf, type PolicySource } from '../adapters/cedar/cedar-engine.js';
import {
  compileDetailType,
  DetailTypeError,
  type DetailType,
  type DetailTypes,
} from '../core/tokens/authorization-details.js';
import { RegistryError } from '../core/registry/compile.js';
import { generateSigningKeys, type PrivateJwks, type SigningAlgorithm } from '../adapters/signing-keys.js';

/** Reads a JSON file, naming the file in any error. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new RegistryError(file, [
      { path: '', message: `cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}` },
    ]);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RegistryError(file, [
      { path: '', message: `is not valid JSON: ${error instanceof Error ? error.message : String(error)}` },
    ]);
  }
}

/** The embedded default's signing keys: read from the data folder, generated there on first start. */
export async function loadOrCreateKeyFile(
  file: string,
  alg: SigningAlgorithm,
): Promise<{ jwks: PrivateJwks; created: boolean }> {
  if (existsSync(file)) return { jwks: JSON.parse(readFileSync(file, 'utf8')) as PrivateJwks, created: false };
  const jwks = await generateSigningKeys(alg);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { jwks, created: true };
}

/** The policy set files of a folder by name: every `.cedar` file, the `.cedarschema` and `entities.json` (other files are not part of the set). */
export function readPolicyFiles(dir: string): Record<string, string> {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (error) {
    throw new PolicySetError([
      { file: dir, message: `cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}` },
    ]);
  }
  const files = Object.create(null) as Record<string, string>;
  for (const name of names)
    if (name.endsWith('.cedar') || name.endsWith('.cedarschema') || name === 'entities.json')
      files[name] = readFileSync(join(dir, name), 'utf8');
  return files;
}

/** Reads a policy folder: every `.cedar` file, exactly one `.cedarschema`, and `entities.json` if present. */
export function readPolicyFolder(dir: string): PolicySource {
  return policySourceOf(readPolicyFiles(dir), dir);
}

/** Loads every `authorization_details` type declared in a folder (one JSON file per type). */
export function loadDetailTypes(dir: string): DetailTypes {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => n.endsWith('.json'))
      .sort();
  } catch (error) {
    throw new DetailTypeError(dir, [`cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`]);
  }
  const types = new Map<string, DetailType>();
  for (const name of names) {
    const file = join(dir, name);
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new DetailTypeError(file, [`is not valid JSON: ${error instanceof Error ? error.message : String(error)}`]);
    }
    const type = compileDetailType(file, doc);
    if (types.has(type.type)) throw new DetailTypeError(file, [`/type: "${type.type}" is declared twice`]);
    types.set(type.type, type);
  }
  return types;
}
