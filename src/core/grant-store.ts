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
  | { readonly status: 'expired' }
  | { readonly status: 'unknown' };

/** Authorization codes and rotating refresh tokens, kept by hash; each redeemable once. */
export interface GrantStore {
  saveCode(hash: string, tenant: string, grantId: string, detail: GrantDetail, expiresAt: Date): Promise<void>;
  redeemCode(hash: string): Promise<Redemption>;
  saveRefresh(hash: string, tenant: string, family: string, detail: GrantDetail, expiresAt: Date): Promise<void>;
  redeemRefresh(hash: string): Promise<Redemption>;
  /** Makes every refresh token of a family unusable. */
  revokeFamily(tenant: string, family: string): Promise<void>;
}
