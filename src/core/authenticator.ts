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
