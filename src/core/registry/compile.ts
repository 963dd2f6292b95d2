import type { z } from 'zod';
import { importPublicJwks, JwkImportError, remoteJwks } from '../tokens/jwks.js';
import type { AuthorizationDetail } from '../tokens/authorization-details.js';
import type { KeyResolver } from '../ports.js';
import { findUnstorableText } from '../input/storable-text.js';
import { isDocumentClientId } from '../clients/document-client-id.js';
import { clientCredentials } from '../grants/client-credentials.js';
import { tokenExchange } from '../grants/token-exchange.js';
import { registryDocumentSchema, type RegistryDocument } from './document.js';
import {
  suspensionKey,
  userKey,
  type Agent,
  type Caller,
  type RegisteredUser,
  type Registry,
  type ResourceServer,
  type Suspension,
  type Tenant,
  type TrustedIssuer,
  type WorkloadIssuer,
} from './registry.js';
import type { Jwks } from './schema.js';
import { hexToBytes } from '../sha256.js';

export interface RegistryProblem {
  /** JSON pointer into the registry file. */
  readonly path: string;
  readonly message: string;
}

/** A registry that cannot be used, with every problem found. */
export class RegistryError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly RegistryProblem[],
  ) {
    super(`invalid registry ${file}:\n${problems.map((p) => `  ${file}: ${p.path || '/'}: ${p.message}`).join('\n')}`);
    this.name = 'RegistryError';
  }
}

function pointer(path: readonly PropertyKey[]): string {
  return path.map((p) => `/${String(p).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

const kindNames: Record<Caller['kind'], string> = {
  agent: 'an agent',
  client: 'a client',
  resource_server: 'a resource server',
};

/** A subject pattern as an anchored expression: a lone "*" segment matches one non-empty segment. */
function subjectMatcher(pattern: string): RegExp {
  const parts = pattern
    .split(/([:/])/)
    .map((part) => (part === '*' ? '[^:/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('')}$`, 'u');
}

export interface CompileOptions {
  /** Baton's issuer, the default audience of upstream tokens. */
  readonly issuer: string;
  /** Name of the file the document came from, for error messages. */
  readonly file: string;
  readonly fetch?: typeof fetch;
  /** Milliseconds since the epoch, read when an agent's retiring keys are tried (default Date.now). */
  readonly now?: () => number;
  /** Key sets imported by the previous compile, reused (see KeyCache). */
  readonly keyCache?: KeyCache;
}

/**
 * Key sets a registry that is compiled again and again (each stored version) reuses: a JWKS already
 * imported is not imported again, and a jwks_uri keeps its fetched, cached keys. `previous` is what
 * the last compile used; this one puts what it uses in `next`, which its owner keeps for the next
 * compile (so keys of removed entities are dropped).
 */
export interface KeyCache {
  readonly previous: ReadonlyMap<string, KeyResolver>;
  readonly next: Map<string, KeyResolver>;
}

/**
 * An agent's keys during a rotation: its keys, and the keys it replaced until `until` (read on the
 * clock at verification time, so they stop verifying then, with no edit needed).
 */
function withRetiringKeys(current: KeyResolver, retiring: KeyResolver, until: number, now: () => number): KeyResolver {
  return async (header) => {
    try {
      return await current(header);
    } catch (error) {
      if (now() >= until) throw error;
      return retiring(header);
    }
  };
}

/** Validates a registry document and compiles it; throws RegistryError naming file, path and reason. */
export async function compileRegistry(input: unknown, options: CompileOptions): Promise<Registry> {
  const parsed = registryDocumentSchema.safeParse(input);
  if (!parsed.success) {
    throw new RegistryError(
      options.file,
      parsed.error.issues.map((i: z.core.$ZodIssue) => ({ path: pointer(i.path), message: i.message })),
    );
  }
  const doc: RegistryDocument = parsed.data;
  const problems: RegistryProblem[] = [];
  // Registry values become token claims, lineage and Cedar attributes: text neither can hold is refused here.
  const text = findUnstorableText(doc);
  if (text !== undefined) problems.push({ path: pointer(text.path), message: text.problem });
  const tenants = new Map<string, Tenant>();
  doc.tenants.forEach((t, i) => {
    if (tenants.has(t.id)) problems.push({ path: `/tenants/${i}/id`, message: `duplicate tenant "${t.id}"` });
    tenants.set(t.id, {
      id: t.id,
      name: t.name,
      clientIdMetadataDocuments: {
        enabled: t.client_id_metadata_documents?.enabled ?? true,
        allowedHosts: t.client_id_metadata_documents?.allowed_hosts,
      },
      dynamicClientRegistration: {
        mode: t.dynamic_client_registration?.mode ?? 'off',
        unusedClientTtlSeconds: t.dynamic_client_registration?.unused_client_ttl_seconds ?? 2_592_000,
      },
    });
  });
  // An open registration request names no tenant: only one tenant can be the one it joins.
  const open = doc.tenants.flatMap((t, i) => (t.dynamic_client_registration?.mode === 'open' ? [i] : []));
  for (const i of open.slice(1))
    problems.push({
      path: `/tenants/${i}/dynamic_client_registration/mode`,
      message: `only one tenant may take open registration (tenant "${doc.tenants[open[0] ?? 0]?.id}" already does)`,
    });
  const checkTenant = (tenant: string, path: string): void => {
    if (!tenants.has(tenant)) problems.push({ path, message: `unknown tenant "${tenant}"` });
  };

  async function keys(
    source: { jwks?: Jwks | undefined; jwks_uri?: string | undefined },
    path: string,
  ): Promise<KeyResolver | undefined> {
    const cache = options.keyCache;
    const key =
      source.jwks_uri !== undefined
        ? `uri ${source.jwks_uri}`
        : source.jwks === undefined
          ? undefined
          : `jwks ${JSON.stringify(source.jwks)}`;
    if (key === undefined) return undefined;
    const kept = cache?.next.get(key) ?? cache?.previous.get(key);
    if (kept !== undefined) {
      cache?.next.set(key, kept);
      return kept;
    }
    try {
      const resolver =
        source.jwks_uri !== undefined
          ? remoteJwks(source.jwks_uri, options.fetch)
          : await importPublicJwks(source.jwks as Jwks);
      cache?.next.set(key, resolver);
      return resolver;
    } catch (cause) {
      if (!(cause instanceof JwkImportError)) throw cause;
      problems.push({ path: `${path}/jwks/keys/${cause.index}`, message: `key cannot be imported: ${cause.message}` });
      return undefined;
    }
  }
  const unresolvable: KeyResolver = () => Promise.reject(new Error('unresolvable key set'));

  const issuers = new Map<string, TrustedIssuer>();
  for (const [i, ti] of doc.trusted_issuers.entries()) {
    const path = `/trusted_issuers/${i}`;
    checkTenant(ti.tenant, `${path}/tenant`);
    if (issuers.has(ti.issuer)) problems.push({ path: `${path}/issuer`, message: `duplicate issuer "${ti.issuer}"` });
    if (ti.issuer === options.issuer) problems.push({ path: `${path}/issuer`, message: "is Baton's own issuer" });
    issuers.set(ti.issuer, {
      issuer: ti.issuer,
      tenant: ti.tenant,
      audiences: ti.audiences ?? [options.issuer],
      algorithms: ti.algorithms ?? ['EdDSA', 'ES256', 'RS256', 'PS256'],
      resolve: (await keys(ti, path)) ?? unresolvable,
    });
  }

  const callers = new Map<string, Caller>();
  const addCaller = (caller: Caller, path: string): void => {
    const existing = callers.get(caller.id);
    if (existing !== undefined)
      problems.push({ path, message: `"${caller.id}" is already registered as ${kindNames[existing.kind]}` });
    callers.set(caller.id, caller);
  };

  const agents = new Map<string, Agent>();
  for (const [i, a] of doc.agents.entries()) {
    const path = `/agents/${i}`;
    checkTenant(a.tenant, `${path}/tenant`);
    if (a.owner.trim() === '') problems.push({ path: `${path}/owner`, message: "must name a user's sub" });
    let resolve = await keys(a, path);
    if (a.retiring_keys !== undefined && resolve !== undefined) {
      const retiring = await keys(a.retiring_keys, `${path}/retiring_keys`);
      if (retiring !== undefined)
        resolve = withRetiringKeys(resolve, retiring, Date.parse(a.retiring_keys.until), options.now ?? Date.now);
    }
    const scope = a.scope === undefined ? undefined : new Set(a.scope);
    agents.set(a.id, {
      id: a.id,
      tenant: a.tenant,
      name: a.name,
      owner: a.owner,
      expiresAt: a.expires_at === undefined ? undefined : Date.parse(a.expires_at),
      scope,
      metadata: a.metadata ?? {},
      resolve: resolve ?? unresolvable,
    });
    addCaller(
      {
        kind: 'agent',
        id: a.id,
        tenant: a.tenant,
        authMethod: 'private_key_jwt',
        secretSha256: undefined,
        resolve,
        grantTypes: new Set([clientCredentials.grantType, tokenExchange.grantType]),
        scope,
        agents: new Set([a.id]),
        authorizationDetails: (a.authorization_details ?? []) as AuthorizationDetail[],
        redirectUris: [],
        name: a.name,
        registeredAt: undefined,
      },
      `${path}/id`,
    );
  }

  const workloadIssuers = new Map<string, WorkloadIssuer>();
  for (const [i, wi] of doc.workload_issuers.entries()) {
    const path = `/workload_issuers/${i}`;
    checkTenant(wi.tenant, `${path}/tenant`);
    if (workloadIssuers.has(wi.issuer))
      problems.push({ path: `${path}/issuer`, message: `duplicate issuer "${wi.issuer}"` });
    if (wi.issuer === options.issuer) problems.push({ path: `${path}/issuer`, message: "is Baton's own issuer" });
    // A user's token from an identity provider must never prove an agent, whatever its subject.
    if (issuers.has(wi.issuer))
      problems.push({ path: `${path}/issuer`, message: `is also a trusted issuer of user tokens (trusted_issuers)` });
    const patterns = new Set<string>();
    for (const [j, { subject, agent: agentId }] of wi.subjects.entries()) {
      if (patterns.has(subject))
        problems.push({ path: `${path}/subjects/${j}/subject`, message: `duplicate subject "${subject}"` });
      patterns.add(subject);
      const agent = agents.get(agentId);
      if (agent === undefined)
        problems.push({ path: `${path}/subjects/${j}/agent`, message: `unknown agent "${agentId}"` });
      else if (agent.tenant !== wi.tenant)
        problems.push({
          path: `${path}/subjects/${j}/agent`,
          message: `agent "${agentId}" belongs to tenant "${agent.tenant}", not "${wi.tenant}"`,
        });
    }
    workloadIssuers.set(wi.issuer, {
      issuer: wi.issuer,
      tenant: wi.tenant,
      audiences: wi.audiences ?? [options.issuer],
      algorithms: wi.algorithms ?? ['EdDSA', 'ES256', 'RS256', 'PS256'],
      typ: wi.typ,
      resolve: (await keys(wi, path)) ?? unresolvable,
      subjects: wi.subjects.map(({ subject, agent }) => ({ pattern: subjectMatcher(subject), agent })),
    });
  }

  const workloadAgents = new Set(doc.workload_issuers.flatMap((wi) => wi.subjects.map((s) => s.agent)));
  doc.agents.forEach((a, i) => {
    if (a.jwks === undefined && a.jwks_uri === undefined && !workloadAgents.has(a.id))
      problems.push({ path: `/agents/${i}/jwks`, message: 'jwks or jwks_uri is required' });
  });

  for (const [i, c] of doc.clients.entries()) {
    const path = `/clients/${i}`;
    checkTenant(c.tenant, `${path}/tenant`);
    for (const [j, agentId] of (c.agents ?? []).entries()) {
      const agent = agents.get(agentId);
      if (agent === undefined) problems.push({ path: `${path}/agents/${j}`, message: `unknown agent "${agentId}"` });
      else if (agent.tenant !== c.tenant)
        problems.push({
          path: `${path}/agents/${j}`,
          message: `agent "${agentId}" belongs to tenant "${agent.tenant}", not "${c.tenant}"`,
        });
    }
    addCaller(
      {
        kind: 'client',
        id: c.client_id,
        tenant: c.tenant,
        authMethod: c.token_endpoint_auth_method,
        secretSha256: c.client_secret_sha256 === undefined ? undefined : hexToBytes(c.client_secret_sha256),
        resolve: await keys(c, path),
        grantTypes: new Set(c.grant_types),
        scope: c.scope === undefined ? undefined : new Set(c.scope),
        agents: new Set(c.agents ?? []),
        authorizationDetails: (c.authorization_details ?? []) as AuthorizationDetail[],
        redirectUris: c.redirect_uris ?? [],
        name: c.name,
        registeredAt: c.dynamically_registered_at === undefined ? undefined : Date.parse(c.dynamically_registered_at),
      },
      `${path}/client_id`,
    );
  }

  const resourceServers = new Map<string, ResourceServer>();
  const audiences = new Map<string, ResourceServer>();
  for (const [i, rs] of doc.resource_servers.entries()) {
    const path = `/resource_servers/${i}`;
    checkTenant(rs.tenant, `${path}/tenant`);
    if (audiences.has(rs.audience))
      problems.push({ path: `${path}/audience`, message: `duplicate audience "${rs.audience}"` });
    const server: ResourceServer = {
      id: rs.id,
      tenant: rs.tenant,
      name: rs.name ?? rs.id,
      audience: rs.audience,
      scopes: rs.scopes ?? [],
      actions: rs.actions ?? [],
    };
    resourceServers.set(rs.id, server);
    audiences.set(rs.audience, server);
    addCaller(
      {
        kind: 'resource_server',
        id: rs.id,
        tenant: rs.tenant,
        authMethod: rs.token_endpoint_auth_method,
        secretSha256: rs.client_secret_sha256 === undefined ? undefined : hexToBytes(rs.client_secret_sha256),
        resolve: await keys(rs, path),
        grantTypes: new Set([clientCredentials.grantType]),
        scope: undefined,
        agents: new Set(),
        authorizationDetails: [],
        redirectUris: [],
        name: rs.name ?? rs.id,
        registeredAt: undefined,
      },
      `${path}/id`,
    );
  }

  const users = new Map<string, RegisteredUser>();
  doc.users.forEach((u, i) => {
    checkTenant(u.tenant, `/users/${i}/tenant`);
    if (users.has(userKey(u.tenant, u.sub)))
      problems.push({ path: `/users/${i}/sub`, message: `duplicate user "${u.sub}" in tenant "${u.tenant}"` });
    users.set(userKey(u.tenant, u.sub), {
      tenant: u.tenant,
      sub: u.sub,
      name: u.name ?? u.sub,
      passwordScrypt: u.password_scrypt,
      roles: u.roles ?? [],
    });
  });

  const suspensions = new Map<string, Suspension>();
  doc.suspensions.forEach((s, i) => {
    const path = `/suspensions/${i}`;
    checkTenant(s.tenant, `${path}/tenant`);
    // A user may come from an identity provider, so any sub can be suspended; agents and clients must exist.
    // A client identified by a metadata document (an https URL) is in no registry: it is suspended by its URL.
    if (s.kind !== 'user' && !(s.kind === 'client' && isDocumentClientId(s.id))) {
      const known = s.kind === 'agent' ? agents.get(s.id) : callers.get(s.id);
      if (
        known === undefined ||
        known.tenant !== s.tenant ||
        (s.kind === 'client' && callers.get(s.id)?.kind !== 'client')
      )
        problems.push({ path: `${path}/id`, message: `unknown ${s.kind} "${s.id}" in tenant "${s.tenant}"` });
    }
    const key = suspensionKey(s.tenant, s.kind, s.id);
    if (suspensions.has(key))
      problems.push({
        path: `${path}/id`,
        message: `duplicate suspension of ${s.kind} "${s.id}" in tenant "${s.tenant}"`,
      });
    suspensions.set(key, { tenant: s.tenant, kind: s.kind, id: s.id, reason: s.reason, since: s.since });
  });

  if (problems.length > 0) throw new RegistryError(options.file, problems);
  return { tenants, issuers, workloadIssuers, agents, callers, resourceServers, audiences, users, suspensions };
}
