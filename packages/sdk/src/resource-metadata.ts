/** RFC 9728 protected resource metadata, as a resource server serves it for clients to find Baton. */
export interface ProtectedResourceMetadata {
  readonly resource: string;
  readonly authorization_servers: readonly string[];
  readonly bearer_methods_supported: readonly string[];
  readonly scopes_supported?: readonly string[];
  readonly resource_name?: string;
}

/** The RFC 9728 §3.1 URL of a resource's metadata: the well-known segment goes before the resource's path. */
export function protectedResourceMetadataUrl(resource: string): string {
  const url = new URL(resource);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  return new URL(`/.well-known/oauth-protected-resource${path}`, url.origin).href;
}

/** The metadata document of a resource protected by Baton (serve it at `protectedResourceMetadataUrl(resource)`). */
export function protectedResourceMetadata(options: {
  readonly resource: string;
  readonly issuer: string;
  readonly scopes?: readonly string[];
  readonly name?: string;
}): ProtectedResourceMetadata {
  return {
    resource: options.resource,
    authorization_servers: [options.issuer],
    // The middleware reads the token from the Authorization header only.
    bearer_methods_supported: ['header'],
    ...(options.scopes === undefined ? {} : { scopes_supported: [...options.scopes] }),
    ...(options.name === undefined ? {} : { resource_name: options.name }),
  };
}
