import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { agentEntity, delegationRequest, userEntity, warnIfNoDelegateAction } from '../../src/core/decisions/policy.js';
import type { PolicyEngine } from '../../src/core/ports.js';
import { compileRegistry } from '../../src/core/registry/compile.js';
import type { Registry } from '../../src/core/registry/registry.js';
import { captureLogger } from '../support/baton.js';

let registry: Registry;
beforeAll(async () => {
  registry = await compileRegistry(JSON.parse(readFileSync('policies/registry.json', 'utf8')), {
    issuer: 'https://baton.example',
    file: 'policies/registry.json',
  });
});

const tenant = (id: string) => ({ __entity: { type: 'Tenant', id } });

describe('entities as policies see them', () => {
  it('makes a registered agent an Agent of its tenant, with its registry metadata and name', () => {
    expect(agentEntity(registry, 'payments-subagent')).toEqual({
      type: 'Agent',
      id: 'payments-subagent',
      attributes: {
        owner: 'payments-team@acme.example',
        purpose: 'initiates transfers',
        tenant: tenant('acme'),
        name: 'Payments Sub-agent',
      },
      parents: [{ type: 'Tenant', id: 'acme' }],
    });
  });

  it('lets registry metadata never override the tenant or the name', async () => {
    const doc = JSON.parse(readFileSync('policies/registry.json', 'utf8')) as {
      agents: { id: string; metadata: Record<string, string> }[];
    };
    const orchestrator = doc.agents.find((a) => a.id === 'orchestrator') as { metadata: Record<string, string> };
    orchestrator.metadata = { tenant: 'globex', name: 'Someone Else' };
    const changed = await compileRegistry(doc, { issuer: 'https://baton.example', file: 'registry.json' });
    expect(agentEntity(changed, 'orchestrator').attributes).toEqual({
      tenant: tenant('acme'),
      name: 'Acme Orchestrator',
    });
  });

  it('makes an unknown agent an Agent with no attributes and no tenant', () => {
    expect(agentEntity(registry, 'rogue')).toEqual({ type: 'Agent', id: 'rogue', attributes: {}, parents: [] });
  });

  it('makes a user a User of the tenant its token was verified in', () => {
    expect(userEntity('globex', 'bob')).toEqual({
      type: 'User',
      id: 'bob',
      attributes: { tenant: tenant('globex') },
      parents: [{ type: 'Tenant', id: 'globex' }],
    });
  });
});

describe('delegationRequest', () => {
  it('asks whether the actor may act for the user, with the hop as context', () => {
    const payment = { type: 'payment_initiation', actions: ['initiate'] };
    const request = delegationRequest(registry, {
      tenant: 'acme',
      actor: 'payments-subagent',
      user: 'alice',
      clientId: 'agent-platform',
      audience: ['https://payments.example'],
      scope: ['payments:transfer'],
      authorizationDetails: [
        payment,
        { ...payment, actions: ['cancel'] },
        { type: 'tool_invocation', tool: 'search', actions: ['query'] },
      ],
      chain: ['payments-subagent', 'orchestrator'],
    });
    expect(request).toEqual({
      principal: agentEntity(registry, 'payments-subagent'),
      action: 'delegate',
      resource: userEntity('acme', 'alice'),
      context: {
        tenant: 'acme',
        client: 'agent-platform',
        audience: ['https://payments.example'],
        scope: ['payments:transfer'],
        authorization_detail_types: ['payment_initiation', 'tool_invocation'],
        chain: ['payments-subagent', 'orchestrator'],
        depth: 2,
      },
    });
  });
});

describe('warnIfNoDelegateAction', () => {
  const engine = (declared: readonly string[]): PolicyEngine => ({
    digest: 'test',
    evaluate: () => ({ allowed: false, reasons: [], errors: [] }),
    declares: (action) => declared.includes(action),
    catalog: { entityTypes: [], actions: [...declared], entities: [] },
  });

  it('warns that every token exchange will be refused when the schema has no delegate action', () => {
    const logger = captureLogger();
    warnIfNoDelegateAction(engine(['read', 'write']), logger, 'my-policies');
    expect(logger.lines).toEqual([
      {
        level: 'warn',
        message:
          'the policy set has no Action::"delegate" (its schema does not declare it): every token exchange will be refused',
        fields: {
          policy_dir: 'my-policies',
          detail: 'declare action delegate as policies/baton.cedarschema does to allow token exchange',
        },
      },
    ]);
  });

  it('says nothing when it has one', () => {
    const logger = captureLogger();
    warnIfNoDelegateAction(engine(['delegate']), logger, 'policies');
    expect(logger.lines).toEqual([]);
  });
});
