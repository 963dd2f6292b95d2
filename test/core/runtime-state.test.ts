import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileRegistry } from '../../src/core/registry/compile.js';
import { registryDocumentSchema, type RegistryDocument } from '../../src/core/registry/document.js';
import { keepRuntimeState, withoutExpiredAgents } from '../../src/core/registry/sub-agents.js';

const demo = registryDocumentSchema.parse(JSON.parse(readFileSync('policies/registry.json', 'utf8')));
const since = '2026-12-01T09:00:00Z';
const subAgent = (id: string, expires: string, parent = 'orchestrator'): RegistryDocument['agents'][number] => ({
  ...(demo.agents[0] as RegistryDocument['agents'][number]),
  id,
  expires_at: expires,
  metadata: { parent },
});

describe('applying a registry file keeps what was made at run time', () => {
  const stored: RegistryDocument = {
    ...demo,
    agents: [...demo.agents, subAgent('helper-1', '2026-12-01T10:00:00Z')],
    suspensions: [
      { tenant: 'acme', kind: 'agent', id: 'payments-subagent', since },
      { tenant: 'acme', kind: 'user', id: 'alice', reason: 'left', since },
      { tenant: 'acme', kind: 'client', id: 'agent-console', since },
    ],
  };

  it('carries over suspensions and sub-agents the file does not name', async () => {
    const kept = keepRuntimeState(stored, demo);
    expect(kept.agents.map((a) => a.id)).toEqual(['orchestrator', 'payments-subagent', 'globex-assistant', 'helper-1']);
    expect(kept.suspensions).toEqual(stored.suspensions);
    await compileRegistry(kept, { issuer: 'http://baton.test', file: 'registry.json' });
  });

  it("takes the file's own suspension of a principal, and drops those of agents and clients it removed", () => {
    const file: RegistryDocument = {
      ...demo,
      agents: demo.agents.filter((a) => a.id !== 'payments-subagent'),
      clients: demo.clients
        .filter((c) => c.client_id !== 'agent-console')
        .map((c) => ({
          ...c,
          agents: c.agents?.filter((a) => a !== 'payments-subagent'),
        })),
      suspensions: [{ tenant: 'acme', kind: 'user', id: 'alice', reason: 'from the file', since }],
    };
    expect(keepRuntimeState(stored, file).suspensions).toEqual([
      { tenant: 'acme', kind: 'user', id: 'alice', reason: 'from the file', since },
    ]);
  });

  it('returns the file itself when nothing was made at run time', () => {
    expect(keepRuntimeState(demo, demo)).toBe(demo);
  });
});

describe('the sweep of expired agents', () => {
  it('removes them and every reference to them: client lists, workload subjects, suspensions', async () => {
    const document: RegistryDocument = {
      ...demo,
      agents: [
        ...demo.agents.map((a) => (a.id === 'payments-subagent' ? { ...a, expires_at: '2026-12-01T09:59:59Z' } : a)),
        subAgent('helper-2', '2026-12-01T10:00:00Z'),
        subAgent('helper-3', '2026-12-01T10:00:01Z'),
      ],
      workload_issuers: [
        {
          issuer: 'https://kubernetes.acme.test',
          tenant: 'acme',
          jwks: demo.trusted_issuers[0]?.jwks,
          subjects: [{ subject: 'system:serviceaccount:payments:*', agent: 'payments-subagent' }],
        },
      ],
      suspensions: [{ tenant: 'acme', kind: 'agent', id: 'helper-2', since }],
    };
    const now = Date.parse('2026-12-01T10:00:00Z');
    const { document: swept, removed } = withoutExpiredAgents(document, now);
    expect(removed.map((a) => a.id)).toEqual(['payments-subagent', 'helper-2']);
    expect(swept.agents.map((a) => a.id)).toEqual(['orchestrator', 'globex-assistant', 'helper-3']);
    expect(swept.clients.find((c) => c.client_id === 'agent-platform')?.agents).toEqual(['orchestrator']);
    expect([swept.workload_issuers, swept.suspensions]).toEqual([[], []]);
    await compileRegistry(swept, { issuer: 'http://baton.test', file: 'registry.json' });
    expect(withoutExpiredAgents(swept, now).document).toBe(swept);
  });
});
