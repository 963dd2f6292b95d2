/** What a revocation starts from; everything derived from it goes too. */
export type RevocationTarget =
  | { readonly kind: 'token'; readonly jti: string }
  | { readonly kind: 'agent'; readonly agent: string }
  | { readonly kind: 'user'; readonly user: string }
  /** Every token issued under one grant: an authorization code and its refresh-token family. */
  | { readonly kind: 'grant'; readonly grant: string };

/**
 * Revoked tokens. `isRevoked` answers from memory (kept current across instances within a
 * second); `revoke` records the target and every token derived from it, transitively.
 */
export interface Revocations {
  isRevoked(tenant: string, jti: string): boolean | Promise<boolean>;
  /** Revokes and returns the jtis newly revoked (the cascade). */
  revoke(tenant: string, target: RevocationTarget): Promise<readonly string[]>;
}
