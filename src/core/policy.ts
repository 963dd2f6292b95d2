import type { AuthorizationDetail } from './authorization-details.js';
import type { EntityReference, PolicyRequest } from './ports.js';
import type { Registry } from './registry.js';

/** A reference to an entity in attribute or context values. */
export function entityRef(type: string, id: string): EntityReference {
  return { __entity: { type, id } };
}

/** What is asked before a delegation hop is granted. */
export interface DelegationQuery {
  readonly tenant: string;
  readonly actor: string;
  readonly user: string;
  readonly clientId: string;
  readonly audience: readonly string[];
  readonly scope: readonly string[];
  readonly authorizationDetails: readonly AuthorizationDetail[];
  /** Actor ids, current actor first. */
  readonly chain: readonly string[];
}

/** The agent entity as policies see it: its tenant, name and registry metadata. */
export function agentEntity(registry: Registry, id: string) {
  const agent = registry.agents.get(id);
  return {
    type: 'Agent',
    id,
    attributes: agent === undefined ? {} : { ...agent.metadata, tenant: entityRef('Tenant', agent.tenant), name: agent.name },
    parents: agent === undefined ? [] : [{ type: 'Tenant', id: agent.tenant }],
  };
}

/** The user entity: the tenant comes from the verified token, other attributes from entity data. */
export function userEntity(tenant: string, id: string) {
  return { type: 'User', id, attributes: { tenant: entityRef('Tenant', tenant) }, parents: [{ type: 'Tenant', id: tenant }] };
}

/** Cedar's `Action::"delegate"`: principal = actor, resource = user, context = the hop. */
export function delegationRequest(registry: Registry, q: DelegationQuery): PolicyRequest {
  return {
    principal: agentEntity(registry, q.actor),
    action: 'delegate',
    resource: userEntity(q.tenant, q.user),
    context: {
      tenant: q.tenant,
      client: q.clientId,
      audience: [...q.audience],
      scope: [...q.scope],
      authorization_detail_types: [...new Set(q.authorizationDetails.map((d) => d.type))],
      chain: [...q.chain],
      depth: q.chain.length,
    },
  };
}
