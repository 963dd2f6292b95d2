import { z } from 'zod';
import type { ServiceContext } from '../context.js';
import { OAuthError, echo, invalidRequest } from '../errors.js';
import { assertStorableText } from '../input/storable-text.js';
import { attenuateScope } from '../tokens/attenuate.js';
import { attenuateAuthorizationDetails, parseAuthorizationDetails } from '../tokens/authorization-details.js';
import { RegistryError } from './compile.js';
import { registryId, type RegistryDocument } from './document.js';
import type { Caller } from './registry.js';
import { jwksSchema } from './schema.js';
import type { RegistryStore } from './store.js';
import { refusalAudited } from './audited.js';

/** The most sub-agents one orchestrator may have registered at a time, so that no agent can fill the registry. */
export const maxSubAgentsPerOrchestrator = 64;

const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'must be an RFC 6749 scope token');

/** The body of `POST /agents`. */
const registerRequestSchema = z.strictObject({
  id: registryId,
  name: z.string().min(1).max(200),
  jwks: jwksSchema,
  scope: z.array(scopeToken).max(256).optional(),
  authorization_details: z.array(z.unknown()).max(64).optional(),
  /** Bounded by the configured most when a request is parsed (see `lifetime`). */
  expires_in: z.number(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

/** A lifetime in seconds: positive, at most `max`, whole (a huge number is "too long" before it is "not whole"). */
const lifetime = (max: number) =>
  z
    .number()
    .positive('must be positive')
    .max(max, `must be at most ${max} seconds`)
    .refine(Number.isInteger, 'must be a whole number of seconds');

/** A sub-agent as registered, as `POST /agents` answers it. */
export interface SubAgentView {
  readonly id: string;
  readonly name: string;
  readonly owner: string;
  readonly expires_at: string;
  readonly scope?: readonly string[];
  readonly authorization_details: readonly Record<string, unknown>[];
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** The first problem of a body, as `member message`. */
function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return `${issue?.path.join('.') || 'body'} ${issue?.message ?? 'is invalid'}`;
}

/**
 * An orchestrator agent registers an ephemeral sub-agent of its own tenant, never beyond its own
 * limits: the sub-agent's scope ceiling and authorization details must be covered by the
 * orchestrator's (absent scope: the orchestrator's ceiling; absent details: none), it lives at
 * most `maxSubAgentLifetimeSeconds` and never past the orchestrator's own expiry, its owner is the
 * orchestrator's owner and its metadata names the orchestrator as `parent`. Audited, applied or
 * refused (`registry.subagent`).
 */
export async function registerSubAgent(
  ctx: ServiceContext,
  store: RegistryStore,
  caller: Caller,
  body: unknown,
  requestId: string | null,
): Promise<SubAgentView> {
  return refusalAudited(ctx.audit, { caller, type: 'registry.subagent', requestId }, async () => {
    if (caller.kind !== 'agent')
      throw new OAuthError('access_denied', 'only an agent may register a sub-agent, with its own token');
    const orchestrator = ctx.registry().agents.get(caller.id);
    if (orchestrator === undefined)
      throw new OAuthError('access_denied', 'only a registered agent may register a sub-agent');
    const max = ctx.limits.maxSubAgentLifetimeSeconds;
    const parsed = registerRequestSchema.extend({ expires_in: lifetime(max) }).safeParse(body);
    if (!parsed.success) throw invalidRequest(firstIssue(parsed.error));
    assertStorableText(parsed.data, '');
    const request = parsed.data;

    const holder = `what agent "${orchestrator.id}" may hold`;
    const scope =
      request.scope === undefined
        ? orchestrator.scope === undefined
          ? undefined
          : [...orchestrator.scope]
        : attenuateScope(request.scope.join(' '), [[holder, orchestrator.scope]]);
    const requestedDetails =
      request.authorization_details === undefined || request.authorization_details.length === 0
        ? []
        : (parseAuthorizationDetails(
            JSON.stringify(request.authorization_details),
            ctx.detailTypes,
            ctx.limits.maxAuthorizationDetails,
          ) ?? []);
    const authorizationDetails =
      requestedDetails.length === 0
        ? []
        : attenuateAuthorizationDetails(
            ctx.detailTypes,
            requestedDetails,
            caller.authorizationDetails,
            `agent "${orchestrator.id}"'s registration`,
          );

    const now = ctx.clock.now();
    const expiresAt = now + request.expires_in * 1000;
    if (orchestrator.expiresAt !== undefined && expiresAt > orchestrator.expiresAt)
      throw invalidRequest(
        `expires_in reaches past agent "${orchestrator.id}"'s own expiry (${new Date(orchestrator.expiresAt).toISOString()})`,
      );

    const agent: RegistryDocument['agents'][number] = {
      id: request.id,
      tenant: orchestrator.tenant,
      name: request.name,
      owner: orchestrator.owner,
      expires_at: new Date(expiresAt).toISOString(),
      jwks: request.jwks,
      ...(scope === undefined ? {} : { scope }),
      ...(authorizationDetails.length === 0 ? {} : { authorization_details: authorizationDetails }),
      metadata: { ...request.metadata, parent: orchestrator.id },
    };
    try {
      await store.edit(caller.id, (document) => {
        // Ids are global: a caller authenticates by its id alone.
        const taken = [
          ...document.agents.map((a) => a.id),
          ...document.clients.map((c) => c.client_id),
          ...document.resource_servers.map((r) => r.id),
        ].includes(agent.id);
        if (taken) throw new OAuthError('conflict', `"${agent.id}" is already registered`);
        const live = document.agents.filter(
          (a) =>
            a.metadata?.parent === orchestrator.id && (a.expires_at === undefined || Date.parse(a.expires_at) > now),
        ).length;
        if (live >= maxSubAgentsPerOrchestrator)
          throw invalidRequest(`agent "${orchestrator.id}" already has ${live} live sub-agents, the most it may have`);
        return { ...document, agents: [...document.agents, agent] };
      });
    } catch (error) {
      if (!(error instanceof RegistryError)) throw error;
      const problem = error.problems[0];
      throw invalidRequest(`the sub-agent is invalid: ${problem?.path ?? '/'}: ${problem?.message ?? 'refused'}`);
    }
    const view: SubAgentView = {
      id: agent.id,
      name: agent.name,
      owner: agent.owner,
      expires_at: agent.expires_at as string,
      ...(scope === undefined ? {} : { scope }),
      authorization_details: authorizationDetails,
      metadata: agent.metadata ?? {},
    };
    await ctx.audit.append({
      tenant: orchestrator.tenant,
      type: 'registry.subagent',
      decision: 'applied',
      client: caller.id,
      actor_chain: [agent.id, orchestrator.id],
      user: orchestrator.owner,
      ...(scope === undefined ? {} : { scope }),
      authorization_details: authorizationDetails,
      reason: `registered sub-agent ${agent.id} of agent ${orchestrator.id}, expiring at ${view.expires_at}`,
      request_id: requestId,
    });
    return view;
  });
}

/** The document without the agents expired at `now`, and without every reference to them; and which were removed. */
export function withoutExpiredAgents(
  document: RegistryDocument,
  now: number,
): { document: RegistryDocument; removed: RegistryDocument['agents'] } {
  const removed = document.agents.filter((a) => a.expires_at !== undefined && Date.parse(a.expires_at) <= now);
  if (removed.length === 0) return { document, removed };
  const gone = new Set(removed.map((a) => a.id));
  return {
    removed,
    document: {
      ...document,
      agents: document.agents.filter((a) => !gone.has(a.id)),
      clients: document.clients.map((c) =>
        c.agents?.some((a) => gone.has(a)) === true ? { ...c, agents: c.agents.filter((a) => !gone.has(a)) } : c,
      ),
      workload_issuers: document.workload_issuers
        .map((wi) => ({ ...wi, subjects: wi.subjects.filter((s) => !gone.has(s.agent)) }))
        .filter((wi) => wi.subjects.length > 0),
      suspensions: document.suspensions.filter((s) => !(s.kind === 'agent' && gone.has(s.id))),
    },
  };
}

/**
 * Removes expired agents from the stored registry (they were refused from their expiry on; this
 * only tidies), audited once per tenant. Safe on every instance at once: edits are serialized and
 * the second finds nothing left to remove. Returns how many agents it removed.
 */
export async function sweepExpiredAgents(ctx: ServiceContext, store: RegistryStore): Promise<number> {
  let removed: RegistryDocument['agents'] = [];
  await store.edit('sweep', (document) => {
    const swept = withoutExpiredAgents(document, ctx.clock.now());
    removed = swept.removed;
    return swept.document;
  });
  const byTenant = new Map<string, string[]>();
  for (const agent of removed) byTenant.set(agent.tenant, [...(byTenant.get(agent.tenant) ?? []), agent.id]);
  for (const [tenant, ids] of byTenant) {
    await ctx.audit.append({
      tenant,
      type: 'registry.sweep',
      decision: 'applied',
      actor_chain: ids,
      reason: `removed expired agent${ids.length === 1 ? '' : 's'} ${ids.map((id) => echo(id, 128)).join(', ')}`,
    });
  }
  return removed.length;
}

/**
 * What applying a registry file keeps of the stored registry: the file is the GitOps path for what
 * operators declare, but suspensions, sub-agents and dynamically registered clients are made at run
 * time. A file never lifts a suspension (the API does), never removes a live sub-agent (its expiry
 * does) nor a registered client (the sweep of unused ones does): the stored ones the file does not
 * name are carried over.
 */
export function keepRuntimeState(stored: RegistryDocument, file: RegistryDocument): RegistryDocument {
  const suspended = new Set(file.suspensions.map((s) => `${s.tenant}\u0000${s.kind}\u0000${s.id}`));
  const declared = new Set(file.agents.map((a) => a.id));
  const subAgents = stored.agents.filter((a) => a.metadata?.parent !== undefined && !declared.has(a.id));
  const agents = [...file.agents, ...subAgents];
  // Clients that registered themselves (RFC 7591) are run-time state too: their sweep removes them.
  const declaredClients = new Set(file.clients.map((c) => c.client_id));
  const registered = stored.clients.filter(
    (c) => c.dynamically_registered_at !== undefined && !declaredClients.has(c.client_id),
  );
  const clients = [...file.clients, ...registered];
  // A suspension of an agent or client the file removed goes with it.
  const exists = (s: RegistryDocument['suspensions'][number]): boolean =>
    s.kind === 'user' ||
    (s.kind === 'agent'
      ? agents.some((a) => a.id === s.id && a.tenant === s.tenant)
      : clients.some((c) => c.client_id === s.id && c.tenant === s.tenant));
  const suspensions = stored.suspensions.filter(
    (s) => !suspended.has(`${s.tenant}\u0000${s.kind}\u0000${s.id}`) && exists(s),
  );
  if (suspensions.length === 0 && subAgents.length === 0 && registered.length === 0) return file;
  return {
    ...file,
    agents,
    clients,
    suspensions: [...file.suspensions, ...suspensions],
  };
}
