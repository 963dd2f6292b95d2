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
  | { readonly status: 'ok'; readonly tenant: string; readonly grantId: string; readonly detail: GrantDetail; readonly expiresAt: Date }
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
