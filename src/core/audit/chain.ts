import canonicalizeModule from 'canonicalize';
import type { AuthorizationDetail } from '../tokens/authorization-details.js';
import type { Sha256 } from '../sha256.js';

// The package is CommonJS (module.exports = fn) but its types declare an ES default export;
// under NodeNext the default import is the function itself at run time.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

/** What happened. */
export type AuditType =
  /** `token.revocation`, `token.introspection`; a token request: `token.request` before its grant is known, else its grant's own type (grants/grant.ts), so that a new grant brings its type along. */
  | `token.${string}`
  | 'request.refusal'
  | 'authorization.login'
  | 'authorization.consent'
  | 'decision'
  | 'authzen.evaluation'
  | 'authzen.search'
  | 'policy.reload'
  /** An operator activated a stored policy version (`POST /admin/policies/rollback`). */
  | 'policy.rollback'
  | 'registry.reload'
  /** A change to the registry through the admin API, in the tenant it changed: applied (what changed, never a secret) or refused. */
  | 'registry.change'
  /** An operator suspended an agent, client or user (and revoked what it held), or lifted a suspension. */
  | 'registry.suspend'
  | 'registry.resume'
  /** An orchestrator agent registered an ephemeral sub-agent (POST /agents). */
  | 'registry.subagent'
  /** Expired agents, and dynamically registered clients left unused, removed from the stored registry by the periodic sweep. */
  | 'registry.sweep'
  /** A client registered itself (RFC 7591, POST /oauth2/register): granted (never its secret) or refused. */
  | 'registry.registration'
  /** Names entries committed after their callers were answered 503: those answers were never delivered. */
  | 'audit.undelivered';

/** One audited event, as callers describe it. Never a token, secret or code. */
export interface AuditEvent {
  readonly tenant: string;
  readonly type: AuditType;
  readonly decision: 'granted' | 'refused' | 'allow' | 'deny' | 'applied';
  readonly action_id?: string | null;
  readonly jti?: string | null;
  readonly parent_jti?: string | null;
  readonly root_grant?: string | null;
  readonly user?: string | null;
  /** Actor ids, current actor first. */
  readonly actor_chain?: readonly string[];
  readonly client?: string | null;
  readonly audience?: readonly string[];
  readonly scope?: readonly string[];
  readonly authorization_details?: readonly AuthorizationDetail[];
  readonly policy_ids?: readonly string[];
  /** The digest of the policy set that decided (core/decisions/policy-set.ts); null where no policy set was asked. Absent from entries written before it existed. */
  readonly policy_digest?: string | null;
  readonly reason?: string | null;
  readonly request_id?: string | null;
  /** The W3C trace ID of the request that caused the entry (32 lowercase hex); null for work of no request (timers, startup). */
  readonly trace_id?: string | null;
  /** The span ID of Baton's own span for that request (16 lowercase hex), not the caller's. Absent from entries written before it existed. */
  readonly span_id?: string | null;
}

/** The entry as it is hashed and stored: every field present, `time` added. */
export type AuditEntry = Required<{ [K in keyof AuditEvent]: Exclude<AuditEvent[K], undefined> }> & {
  readonly time: string;
};

/** A committed entry: its place in the chain and its hash. */
export interface AuditRecord {
  readonly seq: number;
  readonly prev_hash: string;
  readonly hash: string;
  readonly entry: AuditEntry;
}

/** The hash before the first entry. */
export const genesisHash = '0'.repeat(64);

/** The request an entry comes from, as the HTTP layer knows it (see RequestTrace in trace-context.ts). */
export interface RequestStamp {
  readonly traceId: string;
  readonly spanId: string;
  readonly requestId: string | null;
}

/**
 * The entry an event makes at `time`. With `request`, the entry carries the request's trace and
 * span IDs, and its request ID when the event names none; an event that states its own
 * `trace_id` (null for a summary of many requests) keeps it. Fills every field so the canonical
 * form has one shape.
 */
export function auditEntry(event: AuditEvent, time: Date, request?: RequestStamp): AuditEntry {
  const stamp = request !== undefined && event.trace_id === undefined ? request : undefined;
  return {
    tenant: event.tenant,
    type: event.type,
    decision: event.decision,
    action_id: event.action_id ?? null,
    jti: event.jti ?? null,
    parent_jti: event.parent_jti ?? null,
    root_grant: event.root_grant ?? null,
    user: event.user ?? null,
    actor_chain: event.actor_chain ?? [],
    client: event.client ?? null,
    audience: event.audience ?? [],
    scope: event.scope ?? [],
    authorization_details: event.authorization_details ?? [],
    policy_ids: event.policy_ids ?? [],
    policy_digest: event.policy_digest ?? null,
    reason: event.reason ?? null,
    request_id: event.request_id ?? stamp?.requestId ?? null,
    trace_id: stamp === undefined ? (event.trace_id ?? null) : stamp.traceId,
    span_id: stamp === undefined ? (event.span_id ?? null) : stamp.spanId,
    time: time.toISOString(),
  };
}

/** RFC 8785 (JCS) canonical JSON of a JSON value. */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no JSON form');
  return text;
}

/** An entry's members in RFC 8785 order (UTF-16 code units), which its fixed shape lets us write directly. */
const entryMembers = [
  'action_id',
  'actor_chain',
  'audience',
  'authorization_details',
  'client',
  'decision',
  'jti',
  'parent_jti',
  'policy_digest',
  'policy_ids',
  'reason',
  'request_id',
  'root_grant',
  'scope',
  'span_id',
  'tenant',
  'time',
  'trace_id',
  'type',
  'user',
] as const satisfies readonly (keyof AuditEntry)[];

/** RFC 8785 form of one member's value: strings and lists of strings are already canonical as JSON.stringify writes them. */
function canonicalMember(value: unknown): string {
  if (typeof value === 'string' || value === null) return JSON.stringify(value);
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return JSON.stringify(value);
  return canonicalJson(value);
}

/**
 * RFC 8785 canonical JSON of an entry: the same text as `canonicalJson(entry)`, written member by
 * member in sorted order (the general serializer costs several times more per entry). Anything not
 * of the entry's shape (a member missing or added, as in an entry parsed from a tampered export)
 * takes the general path.
 */
export function canonicalEntry(entry: AuditEntry): string {
  const members = entry as unknown as Record<string, unknown>;
  if (
    Object.keys(members).length !== entryMembers.length ||
    !entryMembers.every((name) => Object.hasOwn(members, name))
  )
    return canonicalJson(entry);
  let text = '{';
  for (const name of entryMembers) text += `${text.length === 1 ? '' : ','}"${name}":${canonicalMember(members[name])}`;
  return `${text}}`;
}

/** Whether a stored entry is exactly the RFC 8785 form of the JSON it holds. */
export function isCanonicalEntry(canonical: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(canonical);
  } catch {
    return false;
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? canonicalEntry(value as AuditEntry) === canonical
    : canonicalJson(value) === canonical;
}

/** An entry's hash: domain-separated SHA-256 over the version tag, sequence number, previous hash and canonical entry. */
export function entryHash(sha256: Sha256, seq: number, prevHash: string, canonical: string): string {
  return sha256(`baton.audit.v1\n${seq}\n${prevHash}\n${canonical}`);
}

/** One stored or exported line of the log. A redacted line (another tenant's) carries no entry. */
export interface ChainLine {
  readonly seq: number;
  readonly prev_hash: string;
  readonly hash: string;
  readonly canonical?: string;
  /** The entry's hash as recomputed from its content where it is stored, when `canonical` is not carried. */
  readonly recomputed?: string;
}

export type ChainVerdict =
  | { readonly valid: true; readonly entries: number }
  | { readonly valid: false; readonly entries: number; readonly seq: number; readonly reason: string };

/** Checks a chain fed in sequence order, one page of lines at a time, and names the first bad sequence number. */
export interface ChainCheck {
  /** Checks the next lines; false once a bad line has been found (later lines are then ignored). */
  add(lines: Iterable<ChainLine>): boolean;
  /** The verdict on every line added so far. */
  verdict(): ChainVerdict;
}

/** The reason a line gives when its hash is not the one a signed checkpoint states for it. */
export const contradictsCheckpoint = 'does not match the signed checkpoint';

/**
 * Checks lines in sequence order: contiguous numbers, each linked to the previous hash, and each
 * hash recomputed from its canonical entry (redacted lines are checked for linkage only); with
 * `recanonicalize`, each entry must also be in RFC 8785 form; and each line that a signed
 * checkpoint names (`anchors`: sequence number to the hash it states) must carry that hash, which
 * catches a rewrite whose later hashes were all recomputed.
 */
export function chainCheck(
  sha256: Sha256,
  start?: { seq: number; hash: string },
  recanonicalize = true,
  anchors?: ReadonlyMap<number, string>,
): ChainCheck {
  let expectedSeq = start === undefined ? undefined : start.seq + 1;
  let prevHash = start?.hash;
  let count = 0;
  let failure: ChainVerdict | undefined;
  const fail = (seq: number, reason: string): false => {
    failure = { valid: false, entries: count, seq, reason };
    return false;
  };
  return {
    add(lines) {
      if (failure !== undefined) return false;
      for (const line of lines) {
        if (expectedSeq !== undefined && line.seq !== expectedSeq)
          return fail(
            expectedSeq,
            line.seq > expectedSeq
              ? `entries ${expectedSeq}–${line.seq - 1} are missing`
              : `entry ${line.seq} is out of order`,
          );
        if (prevHash !== undefined && line.prev_hash !== prevHash)
          return fail(line.seq, 'does not link to the previous entry');
        if (line.seq === 1 && line.prev_hash !== genesisHash)
          return fail(line.seq, 'does not start from the genesis hash');
        if (line.canonical !== undefined) {
          if (recanonicalize && !isCanonicalEntry(line.canonical)) return fail(line.seq, 'is not in canonical form');
          if (entryHash(sha256, line.seq, line.prev_hash, line.canonical) !== line.hash)
            return fail(line.seq, 'hash does not match its content');
        } else if (line.recomputed !== undefined && line.recomputed !== line.hash)
          return fail(line.seq, 'hash does not match its content');
        const anchored = anchors?.get(line.seq);
        if (anchored !== undefined && anchored !== line.hash) return fail(line.seq, contradictsCheckpoint);
        prevHash = line.hash;
        expectedSeq = line.seq + 1;
        count += 1;
      }
      return true;
    },
    verdict: () => failure ?? { valid: true, entries: count },
  };
}

/** A stored entry as an auditor sees it: redacted (hashes only) when it belongs to another tenant. */
export interface AuditLine extends ChainLine {
  readonly redacted?: true;
}

/** Sequence numbers missing from the log: the chain is broken there. */
export interface AuditGap {
  readonly from: number;
  readonly to: number;
}

/** An entry of an action's trail with its verification status. */
export interface TrailEntry {
  readonly seq: number;
  readonly hash: string;
  readonly prev_hash: string;
  readonly verified: boolean;
  readonly entry: unknown;
}

/** A checkpoint row: the size and head hash it was stored under, and the JWS that states them. */
export interface StoredCheckpoint {
  readonly seq: number;
  readonly hash: string;
  readonly jws: string;
}

/** What a request has established so far, for the entry that records its refusal. */
export type AuditTrail = { -readonly [K in keyof AuditEvent]?: AuditEvent[K] };

/** The verdict over the range [from, last]: a chain that verified but ends short of `last` has a gap at its end. */
export function rangeVerdict(verdict: ChainVerdict, from: number, last: number): ChainVerdict {
  if (verdict.valid && from + verdict.entries - 1 < last)
    return {
      valid: false,
      entries: verdict.entries,
      seq: from + verdict.entries,
      reason: `entries ${from + verdict.entries}–${last} are missing`,
    };
  return verdict;
}
