import { Validator, type Schema } from '@cfworker/json-schema';
import { readFileSync } from 'node:fs';

/** The vendored OCSF 1.8.0 schemas (test/fixtures/ocsf, generated from the OCSF schema source), by class_uid. */
const schemaFiles: Readonly<Record<number, string>> = {
  3002: 'authentication',
  3003: 'authorize_session',
  3004: 'entity_management',
  6003: 'api_activity',
  6008: 'application_error',
};

const validators = new Map(
  Object.entries(schemaFiles).map(([uid, name]) => [
    Number(uid),
    new Validator(
      JSON.parse(readFileSync(new URL(`../fixtures/ocsf/${name}.schema.json`, import.meta.url), 'utf8')) as Schema,
      '2020-12',
      false,
    ),
  ]),
);

/** The schema errors of one OCSF event against its class's schema: none when it is valid. */
export function ocsfErrors(event: Readonly<Record<string, unknown>>): string[] {
  const validator = validators.get(event.class_uid as number);
  if (validator === undefined) return [`no vendored schema for class_uid ${String(event.class_uid)}`];
  const result = validator.validate(event);
  return result.valid ? [] : result.errors.map((e) => `${e.instanceLocation}: ${e.error}`);
}
