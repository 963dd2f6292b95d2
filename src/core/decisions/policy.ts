import type { AuthorizationDetail } from '../tokens/authorization-details.js';
import type { EntityReference, Logger, PolicyEngine, PolicyRequest } from '../ports.js';
import type { Registry } from '../registry/registry.js';

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
    attributes:
      agent === undefined ? {} : { ...agent.metadata, tenant: entityRef('Tenant', agent.tenant), name: agent.name },
    parents: agent === undefined ? [] : [{ type: 'Tenant', id: agent.tenant }],
  };
}

/** The user entity: the tenant comes from the verified token, other attributes from entity data. */
export function userEntity(tenant: string, id: string) {
  return {
    type: 'User',
    id,
    attributes: { tenant: entityRef('Tenant', tenant) },
    parents: [{ type: 'Tenant', id: tenant }],
  };
}

/** The action every token exchange (and consent) asks the policies about. */
export const delegateAction = 'delegate';

/** Why a policy set cannot answer a delegation: its schema has no delegate action (a folder written for AuthZEN alone, say). */
export const noDelegateAction = `the policy set has no Action::"${delegateAction}" (its schema does not declare it)`;

/** Warns at start-up and on reload when the policy set cannot permit any delegation, so every token exchange would be refused. */
export function warnIfNoDelegateAction(engine: PolicyEngine, logger: Logger, policyDir: string): void {
  if (!engine.declares(delegateAction)) {
    logger.warn(`${noDelegateAction}: every token exchange will be refused`, {
      policy_dir: policyDir,
      detail: `declare action ${delegateAction} as policies/baton.cedarschema does to allow token exchange`,
    });
  }
}

/** Cedar's `Action::"delegate"`: principal = actor, resource = user, context = the hop. */
export function delegationRequest(registry: Registry, q: DelegationQuery): PolicyRequest {
  return {
    principal: agentEntity(registry, q.actor),
    action: delegateAction,
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
