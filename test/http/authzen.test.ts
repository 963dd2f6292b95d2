import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, postJson } from '../support/baton.js';
import { memoryBaton, type MemoryBaton } from '../support/memory-baton.js';

// Baton loaded with the certification scenario's policies through the "your own policies" route.
let baton: MemoryBaton;
beforeAll(async () => {
  baton = await memoryBaton({ BATON_POLICY_DIR: 'policies/examples/authzen-certification' });
});
afterAll(async () => {
  await baton?.close();
});

const pep = { authorization: basic('payments') };
const evaluation = (body: unknown, headers: Record<string, string> = pep) =>
  postJson(baton, '/access/v1/evaluation', body, headers);
const evaluations = (body: unknown) => postJson(baton, '/access/v1/evaluations', body, pep);

const alice = { type: 'user', id: 'alice' };
const bob = { type: 'user', id: 'bob' };
const admin = { type: 'user', id: 'bob', properties: { role: 'admin' } };
const record1 = { type: 'record', id: 'record-1' };
const archived = { type: 'record', id: 'record-2', properties: { status: 'archived' } };

describe('AuthZEN 1.0 certification scenario: the eight decisions', () => {
  it.each([
    [1, alice, { name: 'read' }, record1, true],
    [2, alice, { name: 'write' }, record1, true],
    [3, bob, { name: 'read' }, record1, true],
    [4, bob, { name: 'write' }, record1, false],
    [5, alice, { name: 'write' }, archived, false],
    [6, admin, { name: 'write' }, archived, true],
    [7, alice, { name: 'delete', properties: { soft: true } }, record1, true],
    [8, alice, { name: 'delete', properties: { soft: false } }, record1, false],
  ])('decision %i', async (_n, subject, action, resource, decision) => {
    const result = await evaluation({ subject, action, resource });
    expect({ status: result.status, body: result.body }).toEqual({ status: 200, body: { decision } });
    const withContext = await evaluation({
      subject,
      action,
      resource,
      context: { time: '1985-10-26T01:22-07:00' },
      foo: 'ignored',
    });
    expect(withContext.body).toEqual({ decision });
  });
});

describe('AuthZEN 1.0 evaluations', () => {
  it('answers items in order, with top-level defaults', async () => {
    expect(
      (
        await evaluations({
          subject: bob,
          resource: record1,
          evaluations: [{ action: { name: 'read' } }, { action: { name: 'write' } }],
        })
      ).body,
    ).toEqual({ evaluations: [{ decision: true }, { decision: false }] });
    expect(
      (
        await evaluations({
          subject: alice,
          action: { name: 'write' },
          evaluations: [{ resource: record1 }, { resource: archived }],
        })
      ).body,
    ).toEqual({ evaluations: [{ decision: true }, { decision: false }] });
    expect(
      (
        await evaluations({
          action: { name: 'write' },
          resource: archived,
          evaluations: [{ subject: alice }, { subject: admin }],
        })
      ).body,
    ).toEqual({ evaluations: [{ decision: false }, { decision: true }] });
  });

  it("never mixes a default subject's properties into an item's own subject", async () => {
    const result = await evaluations({
      subject: admin,
      action: { name: 'write' },
      resource: archived,
      evaluations: [{}, { subject: { id: 'bob' } }],
    });
    expect(result.body).toEqual({ evaluations: [{ decision: true }, { decision: false }] });
  });

  it('falls back to the default type and id for a member that leaves them out', async () => {
    const result = await evaluations({
      subject: alice,
      action: { name: 'write' },
      resource: { type: 'record' },
      evaluations: [
        { resource: { id: 'record-1' } },
        { resource: { id: 'record-2', properties: { status: 'archived' } } },
      ],
    });
    expect(result.body).toEqual({ evaluations: [{ decision: true }, { decision: false }] });
  });

  it('behaves as a single evaluation when evaluations is absent or empty', async () => {
    expect((await evaluations({ subject: alice, action: { name: 'read' }, resource: record1 })).body).toEqual({
      decision: true,
    });
    expect(
      (await evaluations({ subject: alice, action: { name: 'read' }, resource: record1, evaluations: [] })).body,
    ).toEqual({ decision: true });
  });

  const three = {
    subject: alice,
    action: { name: 'write' },
    evaluations: [{ resource: record1 }, { resource: archived }, { resource: record1 }],
  };
  it.each([
    ['execute_all', [{ decision: true }, { decision: false }, { decision: true }]],
    ['deny_on_first_deny', [{ decision: true }, { decision: false }]],
    ['permit_on_first_permit', [{ decision: true }]],
  ])('honours evaluations_semantic %s', async (semantic, expected) => {
    expect((await evaluations({ ...three, options: { evaluations_semantic: semantic } })).body).toEqual({
      evaluations: expected,
    });
  });

  it('fails only the bad item of a batch', async () => {
    const result = await evaluations({
      subject: alice,
      action: { name: 'read' },
      evaluations: [{ resource: record1 }, {}],
    });
    expect({ status: result.status, body: result.body }).toEqual({
      status: 200,
      body: {
        evaluations: [
          { decision: true },
          {
            decision: false,
            context: {
              error: { status: 400, message: 'resource: Invalid input: expected object, received undefined' },
            },
          },
        ],
      },
    });
  });

  it('refuses an unknown evaluations_semantic', async () => {
    const result = await evaluations({ ...three, options: { evaluations_semantic: 'some' } });
    expect(result.status).toBe(400);
  });
});

describe('AuthZEN 1.0 protocol', () => {
  it('publishes its configuration', async () => {
    const response = await baton.fetch(`${baton.url}/.well-known/authzen-configuration`);
    expect(await response.json()).toEqual({
      policy_decision_point: baton.issuer,
      access_evaluation_endpoint: `${baton.issuer}/access/v1/evaluation`,
      access_evaluations_endpoint: `${baton.issuer}/access/v1/evaluations`,
      search_subject_endpoint: `${baton.issuer}/access/v1/search/subject`,
      search_resource_endpoint: `${baton.issuer}/access/v1/search/resource`,
      search_action_endpoint: `${baton.issuer}/access/v1/search/action`,
    });
  });

  it('echoes X-Request-ID', async () => {
    const result = await evaluation(
      { subject: alice, action: { name: 'read' }, resource: record1 },
      { ...pep, 'x-request-id': 'req-42' },
    );
    expect(result.headers.get('x-request-id')).toBe('req-42');
  });

  it.each([
    [
      'no subject',
      { action: { name: 'read' }, resource: record1 },
      'subject: Invalid input: expected object, received undefined',
    ],
    ['no action', { subject: alice, resource: record1 }, 'action: Invalid input: expected object, received undefined'],
    [
      'no resource',
      { subject: alice, action: { name: 'read' } },
      'resource: Invalid input: expected object, received undefined',
    ],
    [
      'a subject without type',
      { subject: { id: 'alice' }, action: { name: 'read' }, resource: record1 },
      'subject.type: Invalid input: expected string, received undefined',
    ],
    [
      'a subject without id',
      { subject: { type: 'user' }, action: { name: 'read' }, resource: record1 },
      'subject.id: Invalid input: expected string, received undefined',
    ],
    [
      'an empty action',
      { subject: alice, action: {}, resource: record1 },
      'action.name: Invalid input: expected string, received undefined',
    ],
    [
      'a resource without id',
      { subject: alice, action: { name: 'read' }, resource: { type: 'record' } },
      'resource.id: Invalid input: expected string, received undefined',
    ],
    [
      'a subject that is a string',
      { subject: 'alice', action: { name: 'read' }, resource: record1 },
      'subject: Invalid input: expected object, received string',
    ],
    [
      'a numeric action name',
      { subject: alice, action: { name: 123 }, resource: record1 },
      'action.name: Invalid input: expected string, received number',
    ],
    ['malformed JSON', '{"subject":', 'request body is not valid JSON'],
    ['an empty body', '', 'request body is empty'],
  ])('answers 400 to %s', async (_name, body, description) => {
    const result = await evaluation(body);
    expect({ status: result.status, body: result.body }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: description },
    });
  });

  it('answers 400 to another content type', async () => {
    const response = await baton.fetch(`${baton.url}/access/v1/evaluation`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', ...pep },
      body: JSON.stringify({ subject: alice, action: { name: 'read' }, resource: record1 }),
    });
    expect(response.status).toBe(400);
  });

  it('refuses an unauthenticated caller with 401 and a challenge', async () => {
    const result = await evaluation({ subject: alice, action: { name: 'read' }, resource: record1 }, {});
    expect({ status: result.status, body: result.body }).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'authentication is required' },
    });
    expect(result.headers.get('www-authenticate')).toBe('Basic realm="baton", Bearer realm="baton"');
  });

  it('denies what the schema does not know, rather than erroring', async () => {
    expect(
      (await evaluation({ subject: { type: 'robot', id: 'r2' }, action: { name: 'read' }, resource: record1 })).body,
    ).toEqual({ decision: false });
    expect((await evaluation({ subject: alice, action: { name: 'launch' }, resource: record1 })).body).toEqual({
      decision: false,
    });
  });
});
