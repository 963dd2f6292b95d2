/**
 * SHA-256 of UTF-8 text, lowercase hex: the audit chain's form, made by the runtime's native hash
 * (node:crypto, also on Workers with nodejs_compat), synchronously. Tokens, codes, PKCE and
 * secrets take its bytes (`hexToBytes`). A port, kept out of ports.ts because the audit chain
 * needs it and ports.ts needs the audit chain's types.
 */
export type Sha256 = (text: string) => string;

/**
 * The bytes of lowercase hex text: a SHA-256 as the `Sha256` port gives it, or as the registry
 * holds a client secret's. Character codes, not `parseInt` per pair: this runs on every hashed
 * token, code and secret.
 */
export function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++)
    out[i] = (nibble(hex.charCodeAt(2 * i)) << 4) | nibble(hex.charCodeAt(2 * i + 1));
  return out;
}

/** '0'–'9' are 48–57, 'a'–'f' are 97–102. */
const nibble = (code: number): number => (code > 57 ? code - 87 : code - 48);
