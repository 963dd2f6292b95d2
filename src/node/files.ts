import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PolicySetError, type PolicySource } from '../adapters/cedar/cedar-engine.js';
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

/** Reads a policy folder: every `.cedar` file, exactly one `.cedarschema`, and `entities.json` if present. */
export function readPolicyFolder(dir: string): PolicySource {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (error) {
    throw new PolicySetError([
      { file: dir, message: `cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}` },
    ]);
  }
  const read = (name: string) => ({ file: join(dir, name), content: readFileSync(join(dir, name), 'utf8') });
  const schemas = names.filter((n) => n.endsWith('.cedarschema'));
  const [schema] = schemas;
  if (schema === undefined || schemas.length > 1) {
    throw new PolicySetError([
      { file: dir, message: `must hold exactly one .cedarschema file (found ${schemas.length})` },
    ]);
  }
  const policies = names.filter((n) => n.endsWith('.cedar')).map(read);
  if (policies.length === 0) throw new PolicySetError([{ file: dir, message: 'holds no .cedar policy file' }]);
  let entities: { file: string; content: unknown } | undefined;
  if (names.includes('entities.json')) {
    const file = join(dir, 'entities.json');
    try {
      entities = { file, content: JSON.parse(readFileSync(file, 'utf8')) as unknown };
    } catch (error) {
      throw new PolicySetError([
        { file, message: `is not valid JSON: ${error instanceof Error ? error.message : String(error)}` },
      ]);
    }
  }
  return { policies, schema: read(schema), ...(entities === undefined ? {} : { entities }) };
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
