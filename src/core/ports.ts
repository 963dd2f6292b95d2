import type { CryptoKey, JWSHeaderParameters } from 'jose';

/** Wall clock, injected so tests can move time. Milliseconds since the epoch. */
export interface Clock {
  now(): number;
}

/** Finds the verification key for a JWS header; throws jose's JWKSNoMatchingKey when none fits. */
export type KeyResolver = (header: JWSHeaderParameters) => Promise<CryptoKey>;

/** SHA-256 of UTF-8 text. Synchronous: the runtime's native hash (node:crypto, also on Workers with nodejs_compat). */
export type Sha256 = (text: string) => Uint8Array;

/** Baton's own signing keys: the current one signs, current and next verify and are published. */
export interface SigningKeys {
  /** `sign` returns the JWS signature (RFC 7515/7518 encoding) of a signing input. */
  readonly current: { readonly kid: string; readonly alg: string; readonly sign: (signingInput: Uint8Array) => Promise<Uint8Array> };
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
  evaluate(request: PolicyRequest): PolicyDecision;
  /** Whether the set's schema declares the action, so that a policy can ever permit it. */
  declares(action: string): boolean;
}

export type LogFields = Record<string, string | number | boolean | null | undefined | readonly string[]>;

/** Structured logger; callers never pass tokens, secrets or codes. */
export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}
