import { beforeAll, describe, expect, it } from 'vitest';
import {
  actionSearchSchema,
  searchActions,
  searchResources,
  searchSubjects,
  subjectSearchSchema,
} from '../../src/core/decisions/authzen-search.js';
import { parseAuthzen } from '../../src/core/decisions/authzen.js';
import type { Caller } from '../../src/core/registry/registry.js';
import { memoryService, type MemoryService } from '../support/memory-baton.js';
import { refusalOf } from '../support/refusal.js';

/** The last audit entry, as stored. */
const lastEntry = (memory: MemoryService) =>
  JSON.parse([...memory.storage.state.entries.values()].at(-1)?.canonical ?? '{}') as Record<string, unknown>;

describe('AuthZEN search', () => {
  let memory: MemoryService;
  let payments: Caller;
  beforeAll(async () => {
    memory = await memoryService();
    payments = memory.service.registry().callers.get('payments') as Caller;
  });
  const alice = { type: 'User', id: 'alice' };
  const acct1 = { type: 'Account', id: 'acct-1' };
  const context = { scope: ['payments:read', 'payments:transfer'], amount: 50, currency: 'EUR' };

  it('knows the entity types, actions and entity data of the demo policy set', () => {
    const { catalog } = memory.service.policy();
    expect([...catalog.entityTypes].sort()).toEqual(['Account', 'Agent', 'Calendar', 'Role', 'Tenant', 'User']);
    expect([...catalog.actions].sort()).toEqual(['calendar:read', 'delegate', 'payments:read', 'payments:transfer']);
    expect(catalog.entities.map((e) => `${e.type}::${e.id}`)).toEqual([
      'Tenant::acme',
      'Tenant::globex',
      'Role::account-holder',
      'User::alice',
      'Account::acct-1',
    ]);
  });

  it('ends on a full page when nothing permitted follows, having decided every candidate once', async () => {
    const request = parseAuthzen(actionSearchSchema, { subject: alice, resource: acct1, context, page: { limit: 2 } });
    expect(await searchActions(memory.service, payments, request, 'search-1')).toEqual({
      results: [{ name: 'payments:read' }, { name: 'payments:transfer' }],
      page: { next_token: '' },
    });
    expect(lastEntry(memory)).toMatchObject({
      type: 'authzen.search',
      decision: 'allow',
      reason: 'action search: User::alice on Account::acct-1: 4 decisions, 2 results',
      request_id: 'search-1',
    });
  });

  it('starts the next page after the last result, so denied candidates between pages are decided again', async () => {
    const first = await searchActions(
      memory.service,
      payments,
      parseAuthzen(actionSearchSchema, { subject: alice, resource: acct1, context, page: { limit: 1 } }),
      null,
    );
    expect(first.results).toEqual([{ name: 'payments:read' }]);
    expect(lastEntry(memory)).toMatchObject({
      reason: 'action search: User::alice on Account::acct-1: 4 decisions, 1 results',
    });
    await searchActions(
      memory.service,
      payments,
      parseAuthzen(actionSearchSchema, {
        subject: alice,
        resource: acct1,
        context,
        page: { limit: 1, token: first.page.next_token },
      }),
      null,
    );
    expect(lastEntry(memory)).toMatchObject({
      reason: 'action search: User::alice on Account::acct-1: 1 decisions, 1 results',
    });
  });

  it('refuses a type the schema does not declare before deciding anything', async () => {
    const before = memory.storage.state.head.seq;
    expect(
      await refusalOf(
        searchSubjects(
          memory.service,
          payments,
          parseAuthzen(subjectSearchSchema, {
            subject: { type: 'Robot' },
            action: { name: 'delegate' },
            resource: alice,
          }),
          null,
        ),
      ),
    ).toEqual({ code: 'invalid_request', description: 'subject.type: is not an entity type of the policy set' });
    expect(
      await refusalOf(() =>
        searchResources(
          memory.service,
          payments,
          { subject: alice, action: { name: 'payments:read' }, resource: { type: 'Account' }, page: { token: 'e30' } },
          null,
        ),
      ),
    ).toEqual({ code: 'invalid_request', description: 'page.token: is not a token this endpoint issued' });
    expect(memory.storage.state.head.seq).toBe(before);
  });
});
