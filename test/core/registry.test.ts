import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileRegistry, RegistryError } from '../../src/core/registry/compile.js';
import { registryJsonSchema } from '../../src/core/registry/json-schema.js';

const demo = JSON.parse(readFileSync('policies/registry.json', 'utf8')) as Record<string, unknown[]>;
const issuer = 'http://localhost:8080';
const file = 'policies/registry.json';

function withChange(change: (doc: Record<string, unknown[]> & Record<string, unknown>) => void): unknown {
  const doc = structuredClone(demo) as Record<string, unknown[]> & Record<string, unknown>;
  change(doc);
  return doc;
}

async function problems(doc: unknown): Promise<string> {
  try {
    await compileRegistry(doc, { issuer, file });
  } catch (error) {
    if (error instanceof RegistryError) return error.message;
    throw error;
  }
  throw new Error('registry was accepted');
}

const agent = (doc: Record<string, unknown[]>, i: number) => doc.agents?.[i] as Record<string, unknown>;

describe('registry', () => {
  it('compiles the demo registry: two tenants, their agents, clients and resource servers', async () => {
    const registry = await compileRegistry(demo, { issuer, file });
    expect([...registry.tenants.keys()]).toEqual(['acme', 'globex']);
    expect([...registry.agents.keys()]).toEqual(['orchestrator', 'payments-subagent', 'globex-assistant']);
    expect([...registry.callers.values()].map((c) => [c.id, c.kind, c.tenant])).toEqual([
      ['orchestrator', 'agent', 'acme'],
      ['payments-subagent', 'agent', 'acme'],
      ['globex-assistant', 'agent', 'globex'],
      ['agent-platform', 'client', 'acme'],
      ['globex-platform', 'client', 'globex'],
      ['agent-console', 'client', 'acme'],
      ['ops-console', 'client', 'acme'],
      ['globex-audit', 'client', 'globex'],
      ['payments', 'resource_server', 'acme'],
      ['mcp-payments', 'resource_server', 'acme'],
      ['calendar', 'resource_server', 'acme'],
      ['ledger', 'resource_server', 'globex'],
    ]);
    expect(registry.issuers.get('https://id.acme.example')?.audiences).toEqual([issuer]);
    // Built-in users and their audit explorer roles (none unless given).
    expect([...registry.users.values()].map((u) => [u.tenant, u.sub, u.roles])).toEqual([
      ['acme', 'alice', []],
      ['acme', 'audrey', ['auditor', 'operator']],
      ['globex', 'gus', ['auditor']],
    ]);
  });

  it.each([
    [
      'a missing section',
      (d: Record<string, unknown>) => delete d.tenants,
      '/tenants: Invalid input: expected array, received undefined',
    ],
    [
      'an unknown member',
      (d: Record<string, unknown[]>) => (agent(d, 0).colour = 'blue'),
      '/agents/0: Unrecognized key: "colour"',
    ],
    [
      'a bad agent id',
      (d: Record<string, unknown[]>) => (agent(d, 0).id = 'no spaces'),
      '/agents/0/id: must be 1–128 letters, digits, ".", "_", ":" or "-", starting with a letter or digit',
    ],
    [
      'an agent without keys',
      (d: Record<string, unknown[]>) => delete agent(d, 1).jwks,
      '/agents/1/jwks: jwks or jwks_uri is required',
    ],
    [
      'a private key in the registry',
      (d: Record<string, unknown[]>) =>
        (((agent(d, 0).jwks as { keys: Record<string, unknown>[] }).keys[0] as Record<string, unknown>).d = 'secret'),
      '/agents/0/jwks/keys/0/d: private key material is not allowed in a registry',
    ],
    [
      'an unknown tenant',
      (d: Record<string, unknown[]>) => (agent(d, 2).tenant = 'initech'),
      '/agents/2/tenant: unknown tenant "initech"',
    ],
    [
      'a client naming an unknown agent',
      (d: Record<string, unknown[]>) => ((d.clients?.[0] as { agents: string[] }).agents = ['ghost']),
      '/clients/0/agents/0: unknown agent "ghost"',
    ],
    [
      "a client naming another tenant's agent",
      (d: Record<string, unknown[]>) => ((d.clients?.[0] as { agents: string[] }).agents = ['globex-assistant']),
      '/clients/0/agents/0: agent "globex-assistant" belongs to tenant "globex", not "acme"',
    ],
    [
      'a secret method without a hash',
      (d: Record<string, unknown[]>) => delete (d.clients?.[0] as Record<string, unknown>).client_secret_sha256,
      '/clients/0/client_secret_sha256: is required for client_secret_basic',
    ],
    [
      'a clear-text secret',
      (d: Record<string, unknown[]>) => ((d.clients?.[0] as Record<string, unknown>).client_secret_sha256 = 'hunter2'),
      '/clients/0/client_secret_sha256: must be the lowercase hex SHA-256 of the secret',
    ],
    [
      'a public client with client credentials',
      (d: Record<string, unknown[]>) =>
        Object.assign(d.clients?.[0] as object, {
          token_endpoint_auth_method: 'none',
          client_secret_sha256: undefined,
        }),
      '/clients/0/grant_types/0: a public client (auth method none) may not use urn:ietf:params:oauth:grant-type:token-exchange',
    ],
    [
      'an id used twice',
      (d: Record<string, unknown[]>) => ((d.clients?.[0] as Record<string, unknown>).client_id = 'orchestrator'),
      '/clients/0/client_id: "orchestrator" is already registered as an agent',
    ],
    [
      'a duplicate audience',
      (d: Record<string, unknown[]>) =>
        ((d.resource_servers?.[1] as Record<string, unknown>).audience = 'https://payments.example'),
      '/resource_servers/1/audience: duplicate audience "https://payments.example"',
    ],
    [
      "a NUL in an agent's metadata",
      (d: Record<string, unknown[]>) => (agent(d, 0).metadata = { owner: 'ops\u0000@acme.example' }),
      '/agents/0/metadata/owner: contains a NUL character',
    ],
    [
      "an unpaired surrogate in a user's sub",
      (d: Record<string, unknown[]>) => ((d.users?.[0] as Record<string, unknown>).sub = 'ali\uD800ce'),
      '/users/0/sub: contains an unpaired UTF-16 surrogate',
    ],
    [
      'an unknown role',
      (d: Record<string, unknown[]>) => ((d.users?.[0] as Record<string, unknown>).roles = ['auditor', 'admin']),
      '/users/0/roles/1: Invalid option: expected one of "auditor"|"operator"',
    ],
    [
      'a repeated role',
      (d: Record<string, unknown[]>) => ((d.users?.[0] as Record<string, unknown>).roles = ['auditor', 'auditor']),
      '/users/0/roles: must not repeat a role',
    ],
    [
      'a key that cannot be imported',
      (d: Record<string, unknown[]>) =>
        (((agent(d, 0).jwks as { keys: Record<string, unknown>[] }).keys[0] as Record<string, unknown>).x = 'AAAA'),
      '/agents/0/jwks/keys/0: key cannot be imported',
    ],
    [
      'a second tenant with open registration',
      (d: Record<string, unknown[]>) => {
        for (const t of d.tenants as Record<string, unknown>[]) t.dynamic_client_registration = { mode: 'open' };
      },
      '/tenants/1/dynamic_client_registration/mode: only one tenant may take open registration (tenant "acme" already does)',
    ],
    [
      'an unknown registration mode',
      (d: Record<string, unknown[]>) =>
        ((d.tenants?.[0] as Record<string, unknown>).dynamic_client_registration = { mode: 'anyone' }),
      '/tenants/0/dynamic_client_registration/mode: Invalid option: expected one of "off"|"open"|"initial_access_token"',
    ],
    [
      'an unused-client lifetime under an hour',
      (d: Record<string, unknown[]>) =>
        ((d.tenants?.[0] as Record<string, unknown>).dynamic_client_registration = {
          mode: 'open',
          unused_client_ttl_seconds: 3599,
        }),
      '/tenants/0/dynamic_client_registration/unused_client_ttl_seconds: Too small: expected number to be >=3600',
    ],
    [
      'a metadata document host with a path',
      (d: Record<string, unknown[]>) =>
        ((d.tenants?.[0] as Record<string, unknown>).client_id_metadata_documents = {
          enabled: true,
          allowed_hosts: ['clients.example/evil'],
        }),
      '/tenants/0/client_id_metadata_documents/allowed_hosts/0: must be a lowercase host name, or *. followed by one',
    ],
  ])('refuses %s, naming file, path and reason', async (_name, change, expected) => {
    const message = await problems(withChange(change as never));
    expect(message).toContain(`${file}: ${expected}`);
  });

  it('defaults each tenant to metadata documents from any host and registration off, and compiles what a tenant says', async () => {
    const registry = await compileRegistry(
      withChange((d) => {
        Object.assign(d.tenants?.[1] as object, {
          client_id_metadata_documents: { enabled: false, allowed_hosts: ['*.globex.example', 'mcp.example'] },
          dynamic_client_registration: { mode: 'initial_access_token', unused_client_ttl_seconds: 3600 },
        });
      }),
      { issuer, file },
    );
    expect(registry.tenants.get('acme')).toEqual({
      id: 'acme',
      name: 'Acme Corp',
      clientIdMetadataDocuments: { enabled: true, allowedHosts: undefined },
      dynamicClientRegistration: { mode: 'off', unusedClientTtlSeconds: 2_592_000 },
    });
    expect(registry.tenants.get('globex')).toEqual({
      id: 'globex',
      name: 'Globex Inc',
      clientIdMetadataDocuments: { enabled: false, allowedHosts: ['*.globex.example', 'mcp.example'] },
      dynamicClientRegistration: { mode: 'initial_access_token', unusedClientTtlSeconds: 3600 },
    });
  });

  it('publishes its JSON Schema in schemas/, kept in step with the validator', () => {
    expect(JSON.parse(readFileSync('schemas/registry.schema.json', 'utf8'))).toEqual(registryJsonSchema());
  });
});

describe('registry workload issuers', () => {
  const jwks = () => (demo.trusted_issuers?.[0] as { jwks: unknown }).jwks;
  const kubernetes = (subjects: unknown[], more: Record<string, unknown> = {}) => ({
    issuer: 'https://kubernetes.acme.test',
    tenant: 'acme',
    jwks: jwks(),
    subjects,
    ...more,
  });
  const withIssuers = (...issuers: unknown[]) => withChange((d) => (d.workload_issuers = issuers));
  async function problemList(doc: unknown): Promise<readonly unknown[]> {
    try {
      await compileRegistry(doc, { issuer, file });
    } catch (error) {
      if (error instanceof RegistryError) return error.problems;
      throw error;
    }
    throw new Error('registry was accepted');
  }

  it('maps exact subjects and "*" segments to agents, the first match winning', async () => {
    const registry = await compileRegistry(
      withIssuers(
        kubernetes([
          { subject: 'system:serviceaccount:payments:orchestrator', agent: 'orchestrator' },
          { subject: 'system:serviceaccount:payments:*', agent: 'payments-subagent' },
          { subject: 'spiffe://acme.test/ns/*/sa/worker', agent: 'orchestrator' },
        ]),
      ),
      { issuer, file },
    );
    const workload = registry.workloadIssuers.get('https://kubernetes.acme.test');
    expect([workload?.tenant, workload?.audiences, workload?.typ]).toEqual(['acme', [issuer], undefined]);
    const agentOf = (sub: string) => workload?.subjects.find((s) => s.pattern.test(sub))?.agent;
    expect(
      [
        'system:serviceaccount:payments:orchestrator',
        'system:serviceaccount:payments:settlement',
        'system:serviceaccount:payments:',
        'system:serviceaccount:payments:a:b',
        'system:serviceaccount:payments:a/b',
        'system:serviceaccount:paymentsXorchestrator',
        'spiffe://acme.test/ns/prod/sa/worker',
        'spiffe://acme.test/ns/prod/x/sa/worker',
        'spiffe://acmeXtest/ns/prod/sa/worker',
      ].map(agentOf),
    ).toEqual([
      'orchestrator',
      'payments-subagent',
      undefined,
      undefined,
      undefined,
      undefined,
      'orchestrator',
      undefined,
      undefined,
    ]);
  });

  it('lets an agent a workload issuer proves go without keys of its own', async () => {
    const registry = await compileRegistry(
      withChange((d) => {
        delete agent(d, 1).jwks;
        d.workload_issuers = [
          kubernetes([{ subject: 'system:serviceaccount:payments:*', agent: 'payments-subagent' }]),
        ];
      }),
      { issuer, file },
    );
    expect(registry.callers.get('payments-subagent')?.resolve).toBeUndefined();
  });

  it.each<[string, unknown, readonly unknown[]]>([
    [
      'a "*" inside a segment',
      withIssuers(kubernetes([{ subject: 'system:serviceaccount:pay*:orchestrator', agent: 'orchestrator' }])),
      [
        {
          path: '/workload_issuers/0/subjects/0/subject',
          message: 'a "*" must stand alone as a whole segment between ":" or "/"',
        },
      ],
    ],
    [
      'a "**" segment',
      withIssuers(kubernetes([{ subject: 'system:serviceaccount:**', agent: 'orchestrator' }])),
      [
        {
          path: '/workload_issuers/0/subjects/0/subject',
          message: 'a "*" must stand alone as a whole segment between ":" or "/"',
        },
      ],
    ],
    [
      'no subjects',
      withIssuers(kubernetes([])),
      [{ path: '/workload_issuers/0/subjects', message: 'Too small: expected array to have >=1 items' }],
    ],
    [
      'an unknown agent',
      withIssuers(kubernetes([{ subject: 'system:serviceaccount:payments:ghost', agent: 'ghost' }])),
      [{ path: '/workload_issuers/0/subjects/0/agent', message: 'unknown agent "ghost"' }],
    ],
    [
      "another tenant's agent",
      withIssuers(kubernetes([{ subject: 'system:serviceaccount:globex:assistant', agent: 'globex-assistant' }])),
      [
        {
          path: '/workload_issuers/0/subjects/0/agent',
          message: 'agent "globex-assistant" belongs to tenant "globex", not "acme"',
        },
      ],
    ],
    [
      'a duplicate subject',
      withIssuers(
        kubernetes([
          { subject: 'system:serviceaccount:payments:*', agent: 'orchestrator' },
          { subject: 'system:serviceaccount:payments:*', agent: 'payments-subagent' },
        ]),
      ),
      [
        {
          path: '/workload_issuers/0/subjects/1/subject',
          message: 'duplicate subject "system:serviceaccount:payments:*"',
        },
      ],
    ],
    [
      'a duplicate issuer',
      withIssuers(
        kubernetes([{ subject: 'a', agent: 'orchestrator' }]),
        kubernetes([{ subject: 'b', agent: 'orchestrator' }]),
      ),
      [{ path: '/workload_issuers/1/issuer', message: 'duplicate issuer "https://kubernetes.acme.test"' }],
    ],
    [
      "Baton's own issuer",
      withIssuers(kubernetes([{ subject: 'a', agent: 'orchestrator' }], { issuer })),
      [{ path: '/workload_issuers/0/issuer', message: "is Baton's own issuer" }],
    ],
    [
      'a trusted issuer of user tokens',
      withIssuers(kubernetes([{ subject: 'alice', agent: 'orchestrator' }], { issuer: 'https://id.acme.example' })),
      [{ path: '/workload_issuers/0/issuer', message: 'is also a trusted issuer of user tokens (trusted_issuers)' }],
    ],
    [
      'no keys',
      withIssuers(kubernetes([{ subject: 'a', agent: 'orchestrator' }], { jwks: undefined })),
      [{ path: '/workload_issuers/0/jwks', message: 'jwks or jwks_uri is required' }],
    ],
    [
      'an unknown tenant',
      withIssuers(kubernetes([{ subject: 'a', agent: 'orchestrator' }], { tenant: 'initech' })),
      [
        { path: '/workload_issuers/0/tenant', message: 'unknown tenant "initech"' },
        {
          path: '/workload_issuers/0/subjects/0/agent',
          message: 'agent "orchestrator" belongs to tenant "acme", not "initech"',
        },
      ],
    ],
    [
      'an agent without keys that no workload issuer proves',
      withChange((d) => {
        delete agent(d, 1).jwks;
        d.workload_issuers = [kubernetes([{ subject: 'a', agent: 'orchestrator' }])];
      }),
      [{ path: '/agents/1/jwks', message: 'jwks or jwks_uri is required' }],
    ],
  ])('refuses %s', async (_name, doc, expected) => {
    expect(await problemList(JSON.parse(JSON.stringify(doc)))).toEqual(expected);
  });
});

describe('registry owners, expiries and suspensions', () => {
  async function problemList(doc: unknown): Promise<readonly unknown[]> {
    try {
      await compileRegistry(doc, { issuer, file });
    } catch (error) {
      if (error instanceof RegistryError) return error.problems;
      throw error;
    }
    throw new Error('registry was accepted');
  }
  const suspension = (more: Record<string, unknown>) => ({
    tenant: 'acme',
    kind: 'agent',
    id: 'orchestrator',
    since: '2026-12-01T09:00:00Z',
    ...more,
  });
  const withSuspensions = (...suspensions: unknown[]) => withChange((d) => (d.suspensions = suspensions));

  it('compiles owners, expiries (any RFC 3339 offset) and suspensions of agents, clients and users', async () => {
    const registry = await compileRegistry(
      withChange((d) => {
        agent(d, 1).expires_at = '2026-12-01T12:30:00+02:00';
        d.suspensions = [
          suspension({ reason: 'key leaked' }),
          suspension({ kind: 'client', id: 'agent-console' }),
          suspension({ kind: 'user', id: 'someone@idp.example', tenant: 'globex' }),
        ];
      }),
      { issuer, file },
    );
    expect(
      [...registry.agents.values()].map((a) => [
        a.id,
        a.owner,
        a.expiresAt === undefined ? undefined : new Date(a.expiresAt).toISOString(),
      ]),
    ).toEqual([
      ['orchestrator', 'alice', undefined],
      ['payments-subagent', 'alice', '2026-12-01T10:30:00.000Z'],
      ['globex-assistant', 'bob', undefined],
    ]);
    expect([...registry.suspensions.values()]).toEqual([
      { tenant: 'acme', kind: 'agent', id: 'orchestrator', reason: 'key leaked', since: '2026-12-01T09:00:00Z' },
      { tenant: 'acme', kind: 'client', id: 'agent-console', reason: undefined, since: '2026-12-01T09:00:00Z' },
      { tenant: 'globex', kind: 'user', id: 'someone@idp.example', reason: undefined, since: '2026-12-01T09:00:00Z' },
    ]);
  });

  it.each<[string, unknown, readonly unknown[]]>([
    [
      'an agent without an owner',
      withChange((d) => delete agent(d, 0).owner),
      [{ path: '/agents/0/owner', message: 'Invalid input: expected string, received undefined' }],
    ],
    [
      'an empty owner',
      withChange((d) => (agent(d, 0).owner = '')),
      [{ path: '/agents/0/owner', message: 'Too small: expected string to have >=1 characters' }],
    ],
    [
      'a blank owner',
      withChange((d) => (agent(d, 0).owner = '  ')),
      [{ path: '/agents/0/owner', message: "must name a user's sub" }],
    ],
    [
      'an owner with a NUL',
      withChange((d) => (agent(d, 0).owner = 'ali\u0000ce')),
      [{ path: '/agents/0/owner', message: 'contains a NUL character' }],
    ],
    [
      'an owner that is not text',
      withChange((d) => (agent(d, 0).owner = ['alice'])),
      [{ path: '/agents/0/owner', message: 'Invalid input: expected string, received array' }],
    ],
    [
      'an expiry without a time zone',
      withChange((d) => (agent(d, 0).expires_at = '2026-12-01T10:00:00')),
      [{ path: '/agents/0/expires_at', message: 'Invalid ISO datetime' }],
    ],
    [
      'an expiry on a day that does not exist',
      withChange((d) => (agent(d, 0).expires_at = '2026-02-30T10:00:00Z')),
      [{ path: '/agents/0/expires_at', message: 'Invalid ISO datetime' }],
    ],
    [
      'an expiry as a number',
      withChange((d) => (agent(d, 0).expires_at = 1796119200)),
      [{ path: '/agents/0/expires_at', message: 'Invalid input: expected string, received number' }],
    ],
    [
      'a suspension of an unknown agent',
      withSuspensions(suspension({ id: 'ghost' })),
      [{ path: '/suspensions/0/id', message: 'unknown agent "ghost" in tenant "acme"' }],
    ],
    [
      "a suspension of another tenant's agent",
      withSuspensions(suspension({ id: 'globex-assistant' })),
      [{ path: '/suspensions/0/id', message: 'unknown agent "globex-assistant" in tenant "acme"' }],
    ],
    [
      'a suspension of an agent as a client',
      withSuspensions(suspension({ kind: 'client' })),
      [{ path: '/suspensions/0/id', message: 'unknown client "orchestrator" in tenant "acme"' }],
    ],
    [
      'a suspension of a resource server as a client',
      withSuspensions(suspension({ kind: 'client', id: 'payments' })),
      [{ path: '/suspensions/0/id', message: 'unknown client "payments" in tenant "acme"' }],
    ],
    [
      'a suspension in an unknown tenant',
      withSuspensions(suspension({ kind: 'user', id: 'alice', tenant: 'initech' })),
      [{ path: '/suspensions/0/tenant', message: 'unknown tenant "initech"' }],
    ],
    [
      'a duplicate suspension',
      withSuspensions(suspension({}), suspension({ reason: 'again' })),
      [{ path: '/suspensions/1/id', message: 'duplicate suspension of agent "orchestrator" in tenant "acme"' }],
    ],
    [
      'an unknown kind',
      withSuspensions(suspension({ kind: 'resource_server', id: 'payments' })),
      [{ path: '/suspensions/0/kind', message: 'Invalid option: expected one of "agent"|"client"|"user"' }],
    ],
    [
      'a suspension without since',
      withSuspensions(suspension({ since: undefined })),
      [{ path: '/suspensions/0/since', message: 'Invalid input: expected string, received undefined' }],
    ],
    [
      'an unknown member',
      withSuspensions(suspension({ until: '2027-01-01T00:00:00Z' })),
      [{ path: '/suspensions/0', message: 'Unrecognized key: "until"' }],
    ],
    [
      'a user sub with a lone surrogate',
      withSuspensions(suspension({ kind: 'user', id: 'ali\uD800ce' })),
      [{ path: '/suspensions/0/id', message: 'contains an unpaired UTF-16 surrogate' }],
    ],
  ])('refuses %s', async (_name, doc, expected) => {
    expect(await problemList(doc)).toEqual(expected);
  });
});
