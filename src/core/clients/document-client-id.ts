/**
 * Whether `clientId` is meant as a client ID metadata document URL (see metadata-document.ts).
 * No registry id contains "://", so such an id never names a registered client. Kept apart, with
 * no imports, for the registry to use without an import cycle.
 */
export function isDocumentClientId(clientId: string): boolean {
  return /^https?:\/\//i.test(clientId);
}
