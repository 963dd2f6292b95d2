import type { CryptoKey, JWSHeaderParameters } from 'jose';
import type { AuditSearch } from './audit/filter.js';
import type {
  AuditEvent,
  AuditGap,
  AuditLine,
  AuditRecord,
  RequestStamp,
  ChainVerdict,
  StoredCheckpoint,
  TrailEntry,
} from './audit/chain.js';

/** Wall clock, injected so tests can move time. Milliseconds since the epoch. */
export interface Clock {
  now(): number;
}

/** Finds the verification key for a JWS header; throws jose's JWKSNoMatchingKey when none fits. */
export type KeyResolver = (header: JWSHeaderParameters) => Promise<CryptoKey>;

// The SHA-256 port is in sha256.ts: the audit chain needs it, and these ports need the chain's types.

/** Baton's own signing keys: the current one signs, current and next verify and are published. */
export interface SigningKeys {
  /** `sign` returns the JWS signature (RFC 7515/7518 encoding) of a signing input. */
  readonly current: {
    readonly kid: string;
    readonly alg: string;
    readonly sign: (signingInput: Uint8Array) => Promise<Uint8Array>;
  };
  readonly publicJwks: { readonly keys: readonly Record<string, unknown>[] };
  readonly resolve: KeyResolver;
}

/** What Baton keeps about every token it issues: enough for lineage, revocation and audit, never the token. */
export interface TokenLineage {
  readonly tenant: string;
  readonly jti: string;
  readonly parentJti: string | null;
  readonly rootGrant: string;
  readonly subject: string;
  readonly actor: string | null;
  readonly clientId: string;
  readonly expiresAt: Date;
}

/** A one-time assertion id (RFC 7523 `jti`), kept until the assertion expires. */
export interface AssertionUse {
  readonly tenant: string;
  readonly issuer: string;
  readonly jti: string;
  readonly expiresAt: Date;
}

/** Durable state behind the token endpoint. Every call is scoped by tenant. */
export interface Store {
  /** Records an assertion id; false when it was already used (a replay). */
  consumeAssertion(use: AssertionUse): Promise<boolean>;
  /** The lineage of a token Baton issued in this tenant, if any. */
  findToken(tenant: string, jti: string): Promise<TokenLineage | undefined>;
}

/** One step of a delegation chain, outermost (current) actor first. */
export interface ActClaim {
  readonly sub: string;
  readonly iss?: string;
  readonly act?: ActClaim;
}

/** A Cedar entity reference as it appears in attribute and context values. */
export interface EntityReference {
  readonly __entity: { readonly type: string; readonly id: string };
}

/** An entity a policy request carries: its type, id, attributes and parents. */
export interface PolicyEntity {
  readonly type: string;
  readonly id: string;
  readonly attributes?: Readonly<Record<string, unknown>>;
  readonly parents?: readonly { readonly type: string; readonly id: string }[];
}

/** One authorization question for the policy engine. */
export interface PolicyRequest {
  readonly principal: PolicyEntity;
  /** The action id, e.g. "delegate" or "payments:transfer". */
  readonly action: string;
  readonly resource: PolicyEntity;
  readonly context: Readonly<Record<string, unknown>>;
  /** Further entities the request refers to (the user behind an agent, for example). */
  readonly entities?: readonly PolicyEntity[];
}

export interface PolicyDecision {
  readonly allowed: boolean;
  /** Ids of the policies that decided. */
  readonly reasons: readonly string[];
  /** Evaluation errors; any error denies. */
  readonly errors: readonly string[];
}

/** Decides authorization questions against a loaded, validated policy set. */
export interface PolicyEngine {
  /** SHA-256 of the set's canonical form (core/decisions/policy-set.ts): every audited decision names it. */
  readonly digest: string;
  evaluate(request: PolicyRequest): PolicyDecision;
  /** Whether the set's schema declares the action, so that a policy can ever permit it. */
  declares(action: string): boolean;
  /** What the set knows of, for AuthZEN search. */
  readonly catalog: PolicyCatalog;
}

/** The entity types and actions a policy set's schema declares, and the entity data it was loaded with. */
export interface PolicyCatalog {
  readonly entityTypes: readonly string[];
  readonly actions: readonly string[];
  /** In the order of the entity data file; attributes in Cedar's JSON form. */
  readonly entities: readonly PolicyEntity[];
}

export type LogFields = Record<string, string | number | boolean | null | undefined | readonly string[]>;

/** Structured logger; callers never pass tokens, secrets or codes. */
export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** What an authorization code or refresh token stands for (stored as JSON beside its hash). */
export interface GrantDetail {
  readonly clientId: string;
  readonly user: string;
  /** The agent the user consented to, if any (`requested_actor`). */
  readonly agent: string | null;
  readonly scope: readonly string[];
  readonly audience: readonly string[];
  readonly authorizationDetails: readonly Record<string, unknown>[];
  /** Code only: where the code was sent and the PKCE challenge (S256). */
  readonly redirectUri?: string;
  readonly codeChallenge?: string;
}

/** The outcome of presenting a one-time secret. */
export type Redemption =
  | {
      readonly status: 'ok';
      readonly tenant: string;
      readonly grantId: string;
      readonly detail: GrantDetail;
      readonly expiresAt: Date;
    }
  | { readonly status: 'reused'; readonly tenant: string; readonly grantId: string }
  /** Never used, but its grant was revoked as a whole. */
  | { readonly status: 'revoked'; readonly tenant: string; readonly grantId: string }
  | { readonly status: 'expired' }
  | { readonly status: 'unknown' };

/** A stored refresh token, used or not, as RFC 7009 revocation needs it. */
export interface RefreshTokenRecord {
  readonly tenant: string;
  readonly grantId: string;
  readonly clientId: string;
}

/**
 * Authorization codes and rotating refresh tokens, kept by hash; each redeemable once, and only
 * while its grant is not revoked (revoking a grant is the Revocations port's `grant` target).
 */
export interface GrantStore {
  /** Saves a code and creates its grant. */
  saveCode(hash: string, tenant: string, grantId: string, detail: GrantDetail, expiresAt: Date): Promise<void>;
  redeemCode(hash: string): Promise<Redemption>;
  saveRefresh(hash: string, tenant: string, family: string, detail: GrantDetail, expiresAt: Date): Promise<void>;
  redeemRefresh(hash: string): Promise<Redemption>;
  findRefresh(hash: string): Promise<RefreshTokenRecord | undefined>;
}

/** What a revocation starts from; everything derived from it goes too. */
export type RevocationTarget =
  | { readonly kind: 'token'; readonly jti: string }
  /** Everything the agent holds or acts in, and every code-flow grant consented to it. */
  | { readonly kind: 'agent'; readonly agent: string }
  /** Everything the user granted, code-flow grants included. */
  | { readonly kind: 'user'; readonly user: string }
  /** Every token issued to the client (and what derives from them), and every code-flow grant made to it. */
  | { readonly kind: 'client'; readonly client: string }
  /** A code-flow grant as a whole: its code, its refresh-token family and every token issued under it. */
  | { readonly kind: 'grant'; readonly grant: string };

/**
 * Revoked tokens. `isRevoked` answers from memory (kept current across instances within a
 * second); `revoke` records the target and every token derived from it, transitively. A revoked
 * grant stays revoked for tokens issued under it later, however their issuance interleaves with
 * the revocation, on any number of instances: its codes and refresh tokens are refused and every
 * token of it is revoked as its lineage is written.
 */
export interface Revocations {
  isRevoked(tenant: string, jti: string): boolean | Promise<boolean>;
  /** Revokes and returns the jtis newly revoked (the cascade). */
  revoke(tenant: string, target: RevocationTarget): Promise<readonly string[]>;
}

/** A field the sign-in form asks for. */
export interface LoginField {
  readonly name: string;
  readonly label: string;
  readonly type: 'text' | 'password';
  readonly autocomplete: string;
}

/**
 * Signs a user in for the code flow. The embedded default checks built-in users' passwords; an
 * upstream OpenID Connect login implements the same port (its `authenticate` completing the
 * upstream round trip), so the flow itself does not change.
 */
export interface Authenticator {
  readonly fields: readonly LoginField[];
  /** The user's `sub` in the tenant, or undefined when sign-in fails. */
  authenticate(tenant: string, input: Readonly<Record<string, string>>): Promise<string | undefined>;
}

/** Appends entries to the hash chain; resolves once the entry (and the token's lineage, if any) is committed. */
export interface AuditLog {
  /** Commits the event's entry (and the token's lineage with it); `request` stamps the request's trace on it. */
  append(event: AuditEvent, lineage?: TokenLineage, request?: RequestStamp): Promise<AuditRecord>;
}

/** The queries auditors need, each scoped to the auditor's tenant (system entries, tenant "*", are shared). */
export interface AuditQueries {
  /** The action's entries and every hop behind them, and the gaps just before any of them (entries missing from the log). */
  actionTrail(tenant: string, actionId: string): Promise<{ entries: TrailEntry[]; gaps: AuditGap[] }>;
  /** Every range of sequence numbers missing from the log up to its head (at most `limit` ranges). */
  gaps(limit: number): Promise<AuditGap[]>;
  exportLines(tenant: string, from: number, limit: number): Promise<AuditLine[]>;
  /**
   * The tenant's entries matching `search`, newest first (at most `search.limit`), each verified as
   * in a trail; `next` is the sequence number to continue before when more may match, else null.
   */
  search(tenant: string, search: AuditSearch): Promise<{ entries: TrailEntry[]; next: number | null }>;
  /** Recomputes the chain over [from, to]; each entry `anchors` names must carry the hash given. */
  verify(from: number, to: number, anchors?: ReadonlyMap<number, string>): Promise<ChainVerdict>;
  head(): Promise<{ seq: number; hash: string }>;
  latestCheckpoint(): Promise<StoredCheckpoint | undefined>;
  checkpointsFrom(from: number): Promise<StoredCheckpoint[]>;
}

/** A counter and its allowance. */
export interface ThrottleKey {
  readonly key: string;
  readonly allowance: number;
}

/** Shared state behind the throttle, so that it holds for the service and not per process. */
export interface SignInThrottle {
  /**
   * Counts one attempt for each key, in order; when a key is locked, resolves to when its lock ends
   * (the attempt must then be refused without checking the password, and later keys are not
   * counted), else to undefined.
   */
  attempt(keys: readonly ThrottleKey[], now: Date): Promise<Date | undefined>;
  /** Records that the attempt counted for these keys succeeded. */
  succeeded(keys: readonly ThrottleKey[]): Promise<void>;
}

/**
 * When dynamically registered clients (RFC 7591) were last used, so that the sweep removes those
 * left unused. Cheap by design: a use is recorded at most once an hour per client (see
 * core/clients/client-uses.ts), never as a registry write.
 */
export interface ClientUses {
  /** Records a use of `clientId` at `at` (ms), unless one was recorded within the hour; a failure is the caller's to log. */
  note(clientId: string, at: number): Promise<void>;
  /** The last recorded use (ms) of every client that has one. */
  lastUsed(): Promise<ReadonlyMap<string, number>>;
  /** Forgets removed clients. */
  forget(clientIds: readonly string[]): Promise<void>;
}

/** Counts each authenticated caller's requests; `check` refuses one over its limit with 429. */
export interface RateLimiter {
  check(callerId: string): void;
}

/** A token bucket's size: what it refills a second, and what it holds at most. */
export interface BucketShape {
  readonly perSecond: number;
  readonly burst: number;
}

/** What one instance admitted for a caller since it last told the shared buckets. */
export interface RateLimitCharge {
  readonly callerId: string;
  readonly admitted: number;
}

/** The token buckets every instance shares, one per caller, so that a rate limit holds for the service. */
export interface RateLimitStore {
  /**
   * In one round trip: refills each charged caller's bucket up to `now` (ms), takes what was admitted
   * from it, and resolves to each bucket's level afterwards (below zero when the instances together
   * admitted more than it held). A caller without a bucket starts full.
   */
  charge(charges: readonly RateLimitCharge[], shape: BucketShape, now: number): Promise<ReadonlyMap<string, number>>;
  /** Deletes the buckets that have refilled to full by `now` (a missing bucket is a full one); resolves to how many. */
  purge(shape: BucketShape, now: number): Promise<number>;
}

/** What operators count; every method is cheap and never throws. */
export interface Metrics {
  request(route: string, method: string, status: number, seconds: number): void;
  grant(grantType: string, outcome: 'granted' | 'refused', reason: string): void;
  decision(api: 'authorize' | 'authzen', outcome: 'allow' | 'deny', reason: string): void;
  revocation(tokens: number): void;
  auditBatch(size: number, seconds: number): void;
  reload(what: 'policies' | 'registry', outcome: 'applied' | 'refused'): void;
}

/** A policy set's files by name (`.cedar` policies, one `.cedarschema`, optional `entities.json`), each file's exact text. */
export type PolicyFiles = Readonly<Record<string, string>>;

/** A stored version of the policy set, as listed (without its files). */
export interface PolicyVersionSummary {
  readonly version: number;
  readonly digest: string;
  readonly policyIds: readonly string[];
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly active: boolean;
}

/** A stored version with its files. */
export interface PolicyVersion extends PolicyVersionSummary {
  readonly files: PolicyFiles;
}

/** What a policy set is stored as: its files, digest and policy ids (validated by the caller first). */
export interface NewPolicyVersion {
  readonly files: PolicyFiles;
  readonly digest: string;
  readonly policyIds: readonly string[];
  readonly createdBy: string;
}

/** The versions of the deployment-wide policy set and which one is active; every write moves topic 'policies'. */
export interface PolicyStore {
  /** The active version, or undefined before the first one is stored. */
  active(): Promise<PolicyVersion | undefined>;
  /** Stores `set` as version 1 and activates it unless a version is already active; returns the active one either way. */
  seed(set: NewPolicyVersion): Promise<PolicyVersion>;
  /**
   * Stores `set` as the next version and activates it, unless the active version has its digest
   * (then `changed` is false and nothing is written). `from` is the version that was active.
   */
  store(
    set: NewPolicyVersion,
  ): Promise<{ readonly from: PolicyVersion | undefined; readonly to: PolicyVersion; readonly changed: boolean }>;
  /** Activates a stored version; undefined when there is no such version. */
  activate(
    version: number,
  ): Promise<{ readonly from: PolicyVersion | undefined; readonly to: PolicyVersion } | undefined>;
  /** A stored version with its files, if any. */
  get(version: number): Promise<PolicyVersion | undefined>;
  /** Every version, newest first. */
  list(): Promise<readonly PolicyVersionSummary[]>;
}

/** What an SSRF-safe GET brought back (see DocumentFetcher). */
export interface FetchedDocument {
  readonly status: number;
  /** The Content-Type header, if any. */
  readonly contentType: string | undefined;
  /** The Cache-Control header, if any. */
  readonly cacheControl: string | undefined;
  readonly body: string;
}

/**
 * Fetches documents a client names by URL (client ID metadata documents, their JWKS) without
 * letting that URL reach inside the deployment: HTTPS only (plain HTTP to loopback only when
 * the operator allows it for development), no private, loopback or link-local address after
 * DNS resolution, redirects followed one by one and each checked again, a size cap and a
 * timeout. Throws DocumentFetchError saying why a URL was refused or failed.
 */
export interface DocumentFetcher {
  get(url: string): Promise<FetchedDocument>;
}
