import { canonicalJson } from '../audit/chain.js';
import { invalidRequest } from '../errors.js';
import { assertStorableText } from '../input/storable-text.js';
import type { PolicyFiles, PolicyVersionSummary } from '../ports.js';
import type { Sha256 } from '../sha256.js';

/**
 * The canonical form of a policy set: RFC 8785 (JCS) JSON of one object whose members are the
 * set's file names (no folder) and whose values are each file's exact text, members sorted by
 * name. What is hashed and what is stored are this one text, so an operator can recompute a
 * digest offline from a folder (README, "Policy versions").
 */
export function policySetCanonical(files: PolicyFiles): string {
  // A null-prototype copy: a file called "__proto__" is a member like any other.
  const members = Object.create(null) as Record<string, string>;
  for (const [name, text] of Object.entries(files)) members[name] = text;
  return canonicalJson(members);
}

/** The set's digest: lowercase hex SHA-256 of the UTF-8 bytes of its canonical form. */
export function policySetDigest(sha256: Sha256, files: PolicyFiles): string {
  return sha256(policySetCanonical(files));
}

/** The largest version a rollback names: beyond it a JSON number is no longer an exact integer. */
const maxVersion = Number.MAX_SAFE_INTEGER;

/**
 * Reads `{"version": n}` of `POST /admin/policies/rollback`: n a positive integer written in
 * digits (`text` is the raw body: 1e2 and 1.0 parse to integers, but are refused as written).
 */
export function parseRollbackRequest(body: unknown, text: string): number {
  const { version } = body as { version?: unknown };
  const describe = 'version must be a positive integer written in digits';
  if (!Object.hasOwn(body as object, 'version')) throw invalidRequest('version is required');
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1 || version > maxVersion)
    throw invalidRequest(describe);
  // Outside string literals, the only number in the body is the version: no exponent nor fraction in it.
  if (/[.eE]/.test(text.replace(/"(?:[^"\\]|\\.)*"/g, '""'))) throw invalidRequest(describe);
  const extra = Object.keys(body as object).filter((k) => k !== 'version');
  if (extra.length > 0) throw invalidRequest(`unknown member ${JSON.stringify(extra[0])}`);
  return version;
}

/** The most files an uploaded set may hold. */
const maxUploadFiles = 256;

/**
 * Reads `{"files": {"<name>": "<text>", …}}` of `POST /admin/policies`: file names and texts as
 * strings, text Baton can store and Cedar can read; what the files must be is checked with the set.
 */
export function parseUploadRequest(body: unknown): PolicyFiles {
  const { files } = body as { files?: unknown };
  const extra = Object.keys(body as object).filter((k) => k !== 'files');
  if (extra.length > 0) throw invalidRequest(`unknown member ${JSON.stringify(extra[0])}`);
  if (typeof files !== 'object' || files === null || Array.isArray(files))
    throw invalidRequest('files must be an object of file names to texts');
  const names = Object.keys(files);
  if (names.length === 0 || names.length > maxUploadFiles)
    throw invalidRequest(`files must hold 1 to ${maxUploadFiles} files`);
  const out = Object.create(null) as Record<string, string>;
  for (const name of names) {
    const text = (files as Record<string, unknown>)[name];
    if (typeof text !== 'string') throw invalidRequest("files: every file's text must be a string");
    out[name] = text;
  }
  assertStorableText(out, 'files');
  return out;
}

/** A version as `GET /admin/policies/versions` lists it. */
export function versionJson(v: PolicyVersionSummary): Record<string, unknown> {
  return {
    version: v.version,
    digest: v.digest,
    created_by: v.createdBy,
    created_at: v.createdAt.toISOString(),
    active: v.active,
    policies: v.policyIds,
  };
}

/** What a reload or a rollback did: the version and digest in force after it, and the one before. */
export interface PolicyChange {
  /** `unchanged`: the folder's set has the active set's digest, nothing was stored. */
  readonly status: 'reloaded' | 'unchanged' | 'rolled back';
  readonly version: number;
  readonly digest: string;
  readonly policies: readonly string[];
  readonly previous: { readonly version: number; readonly digest: string } | null;
}

/** The operator calls on the policy set (`/admin/policies/…`); each rejects, once audited, keeping the set in force. `by` names who asked. */
export interface PolicyAdmin {
  /** Reads, validates and activates the configured folder's set. */
  reload(by: string): Promise<PolicyChange>;
  /** Validates and activates a set given whole (`POST /admin/policies`), as a reload does the folder's. */
  upload(files: PolicyFiles, by: string): Promise<PolicyChange>;
  /** Validates and activates a stored version; an `OAuthError` when there is no such version. */
  rollback(version: number, by: string): Promise<PolicyChange>;
  list(): Promise<readonly PolicyVersionSummary[]>;
}
