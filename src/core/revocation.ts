/** What a revocation starts from; everything derived from it goes too. */
export type RevocationTarget =
  | { readonly kind: 'token'; readonly jti: string }
  /** Everything the agent holds or acts in, and every code-flow grant consented to it. */
  | { readonly kind: 'agent'; readonly agent: string }
  /** Everything the user granted, code-flow grants included. */
  | { readonly kind: 'user'; readonly user: string }
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
