import { Hono } from 'hono';
import { authorizationServerMetadata, registrationOffered, supportedScopes } from '../../core/metadata.js';
import type { Registry } from '../../core/registry/registry.js';
import type { AppDeps } from '../app-deps.js';
import type { Env } from '../request.js';

const cached = { 'Cache-Control': 'public, max-age=300' } as const;

/** Discovery: the authorization server metadata (RFC 8414), the token signing JWKS and the AuthZEN configuration. */
export function wellKnownRoutes({ service, registryStore }: AppDeps): Hono<Env> {
  const routes = new Hono<Env>();
  // Metadata follows the registry (its scopes), so it is built once per registry that is loaded.
  const metadataByRegistry = new WeakMap<Registry, ReturnType<typeof authorizationServerMetadata>>();
  const metadata = (registry: Registry) => {
    let built = metadataByRegistry.get(registry);
    if (built === undefined) {
      built = authorizationServerMetadata(
        service.issuer,
        [service.keys.current.alg],
        [...service.detailTypes.keys()],
        supportedScopes(registry),
        service.clientDocuments !== undefined,
        registryStore !== undefined && registrationOffered(registry),
      );
      metadataByRegistry.set(registry, built);
    }
    return built;
  };
  const base = service.issuer;
  const authzenMetadata = {
    policy_decision_point: base,
    access_evaluation_endpoint: `${base}/access/v1/evaluation`,
    access_evaluations_endpoint: `${base}/access/v1/evaluations`,
    search_subject_endpoint: `${base}/access/v1/search/subject`,
    search_resource_endpoint: `${base}/access/v1/search/resource`,
    search_action_endpoint: `${base}/access/v1/search/action`,
  };

  routes.get('/.well-known/oauth-authorization-server', (c) => c.json(metadata(service.registry()), 200, cached));
  routes.get('/.well-known/jwks.json', (c) => c.json(service.keys.publicJwks, 200, cached));
  routes.get('/.well-known/authzen-configuration', (c) => c.json(authzenMetadata, 200, cached));
  return routes;
}
