import { base64url } from 'jose';
import { z } from 'zod';
import { OAuthError } from '../errors.js';
import { storable } from '../input/storable-text.js';
import type { PolicyCatalog, PolicyEntity } from '../ports.js';
import type { Caller, Registry } from '../registry/registry.js';
import { readGovernedContext } from '../tokens/authorization-details.js';
import { actionSchema, askPolicies, entitySchema, properties, type AuthzenContext } from './authzen.js';
import { agentEntity, userEntity } from './policy.js';

/** How many results a page holds when the request does not say. */
export const defaultPageLimit = 50;
/** The most results a page may hold (`page.limit`). */
export const maxPageLimit = 100;

const searchedEntity = z.object({ type: z.string().min(1), properties: properties.optional() });
const pageSchema = z
  .object({
    token: z.string().optional(),
    limit: z
      .number()
      .int(`must be an integer from 1 to ${maxPageLimit}`)
      .min(1, `must be an integer from 1 to ${maxPageLimit}`)
      .max(maxPageLimit, `must be an integer from 1 to ${maxPageLimit}`)
      .optional(),
  })
  .optional();

/** AuthZEN 1.0 Subject Search request: the subject is given by its type alone. */
export const subjectSearchSchema = storable(
  z.object({
    subject: searchedEntity,
    action: actionSchema,
    resource: entitySchema,
    context: properties.optional(),
    page: pageSchema,
  }),
);
/** AuthZEN 1.0 Resource Search request: the resource is given by its type alone. */
export const resourceSearchSchema = storable(
  z.object({
    subject: entitySchema,
    action: actionSchema,
    resource: searchedEntity,
    context: properties.optional(),
    page: pageSchema,
  }),
);
/** AuthZEN 1.0 Action Search request: no action. */
export const actionSearchSchema = storable(
  z.object({ subject: entitySchema, resource: entitySchema, context: properties.optional(), page: pageSchema }),
);
export type SubjectSearch = z.infer<typeof subjectSearchSchema>;
export type ResourceSearch = z.infer<typeof resourceSearchSchema>;
export type ActionSearch = z.infer<typeof actionSearchSchema>;

/** What a search needs: an evaluation's context and the registry, whose agents and users are candidates. */
export interface SearchContext extends AuthzenContext {
  readonly registry: () => Registry;
}

/** A page of results; `next_token` is empty on the last page. */
export interface SearchPage<T> {
  readonly results: readonly T[];
  readonly page: { readonly next_token: string };
}

type Page = z.infer<typeof pageSchema>;

/** The candidate after which a page starts, from the opaque token of the previous page. */
function pageStart(page: Page): string | undefined {
  if (page?.token === undefined || page.token === '') return undefined;
  let after: unknown;
  try {
    after = (
      JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(base64url.decode(page.token))) as { a?: unknown }
    ).a;
  } catch {
    after = undefined;
  }
  if (typeof after !== 'string')
    throw new OAuthError('invalid_request', 'page.token: is not a token this endpoint issued');
  return after;
}

const pageToken = (after: string): string => base64url.encode(JSON.stringify({ a: after }));

/** Whether an entity belongs to the tenant: its `tenant` attribute or a parent is that tenant. */
function inTenant(entity: PolicyEntity, tenant: string): boolean {
  const ref = (entity.attributes?.tenant as { __entity?: { type?: unknown; id?: unknown } } | undefined)?.__entity;
  if (ref?.type === 'Tenant' && ref.id === tenant) return true;
  return (entity.parents ?? []).some((p) => p.type === 'Tenant' && p.id === tenant);
}

/**
 * The tenant's entities of a type, in id order: the policy set's entity data, then the
 * registry's agents and users (which the policies see as `agentEntity` and `userEntity` do).
 */
function candidates(
  catalog: PolicyCatalog,
  registry: Registry,
  tenant: string,
  type: string,
  member: string,
): PolicyEntity[] {
  if (!catalog.entityTypes.includes(type))
    throw new OAuthError('invalid_request', `${member}.type: is not an entity type of the policy set`);
  const found = new Map<string, PolicyEntity>();
  for (const e of catalog.entities) if (e.type === type) found.set(e.id, e);
  if (type === 'Agent') for (const id of registry.agents.keys()) found.set(id, agentEntity(registry, id));
  if (type === 'User')
    for (const user of registry.users.values())
      if (user.tenant === tenant) found.set(user.sub, userEntity(user.tenant, user.sub));
  return [...found.values()]
    .filter((e) => inTenant(e, tenant))
    .sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
}

interface Searched<C, T> {
  readonly kind: 'subject' | 'resource' | 'action';
  /** In key order. */
  readonly candidates: readonly C[];
  /** Where a candidate is in the order (what a page token holds), and what it is as a result. */
  readonly key: (candidate: C) => string;
  readonly result: (candidate: C) => T;
  readonly ask: (candidate: C) => { readonly allowed: boolean; readonly reasons: readonly string[] };
  readonly user: string | null;
  readonly question: string;
}

/** Decides candidates from the page start on until the page is full; one audit entry records the search. */
async function runSearch<C, T>(
  ctx: SearchContext,
  caller: Caller,
  searched: Searched<C, T>,
  page: Page,
  requestId: string | null,
): Promise<SearchPage<T>> {
  const after = pageStart(page);
  const limit = page?.limit ?? defaultPageLimit;
  const results: T[] = [];
  const policyIds = new Set<string>();
  let decisions = 0;
  let lastKey = '';
  let nextToken = '';
  for (const candidate of searched.candidates) {
    const key = searched.key(candidate);
    if (after !== undefined && key <= after) continue;
    const decision = searched.ask(candidate);
    decisions += 1;
    if (!decision.allowed) continue;
    // A permitted candidate beyond a full page says there is a next one, which starts after this page's last.
    if (results.length === limit) {
      nextToken = pageToken(lastKey);
      break;
    }
    results.push(searched.result(candidate));
    lastKey = key;
    for (const id of decision.reasons) policyIds.add(id);
  }
  await ctx.audit.append({
    tenant: caller.tenant,
    type: 'authzen.search',
    decision: results.length > 0 ? 'allow' : 'deny',
    client: caller.id,
    user: searched.user,
    policy_ids: [...policyIds],
    // Read in the same turn of the event loop as every decision above (a swap happens only between turns).
    policy_digest: ctx.policy().digest,
    reason: `${searched.kind} search: ${searched.question}: ${decisions} decisions, ${results.length} results`,
    request_id: requestId,
  });
  return { results, page: { next_token: nextToken } };
}

const refOf = (e: { type: string; id: string }) => `${e.type}::${e.id}`;
const given = (e: z.infer<typeof entitySchema>): PolicyEntity => ({
  type: e.type,
  id: e.id,
  attributes: e.properties ?? {},
});

/** AuthZEN subject search: the subjects of the type, within the caller's tenant, that the policies permit. */
export async function searchSubjects(
  ctx: SearchContext,
  caller: Caller,
  request: SubjectSearch,
  requestId: string | null,
): Promise<SearchPage<{ type: string; id: string }>> {
  const found = candidates(ctx.policy().catalog, ctx.registry(), caller.tenant, request.subject.type, 'subject');
  readGovernedContext(ctx.detailTypes, request.action.name, request.context ?? {});
  const resource = given(request.resource);
  return runSearch(
    ctx,
    caller,
    {
      kind: 'subject',
      candidates: found,
      key: (e) => e.id,
      result: (e) => ({ type: e.type, id: e.id }),
      ask: (e) => askPolicies(ctx, caller, e, request.action, resource, request.context),
      user: null,
      question: `${request.subject.type} for ${request.action.name} on ${refOf(request.resource)}`,
    },
    request.page,
    requestId,
  );
}

/** AuthZEN resource search: the resources of the type, within the caller's tenant, that the policies permit. */
export async function searchResources(
  ctx: SearchContext,
  caller: Caller,
  request: ResourceSearch,
  requestId: string | null,
): Promise<SearchPage<{ type: string; id: string }>> {
  const found = candidates(ctx.policy().catalog, ctx.registry(), caller.tenant, request.resource.type, 'resource');
  readGovernedContext(ctx.detailTypes, request.action.name, request.context ?? {});
  const subject = given(request.subject);
  return runSearch(
    ctx,
    caller,
    {
      kind: 'resource',
      candidates: found,
      key: (e) => e.id,
      result: (e) => ({ type: e.type, id: e.id }),
      ask: (e) => askPolicies(ctx, caller, subject, request.action, e, request.context),
      user: refOf(request.subject),
      question: `${request.resource.type} for ${request.action.name} by ${refOf(request.subject)}`,
    },
    request.page,
    requestId,
  );
}

/**
 * AuthZEN action search: the actions the schema declares that the policies permit the subject
 * on the resource. A governed action whose context does not fit its type is not permitted.
 */
export async function searchActions(
  ctx: SearchContext,
  caller: Caller,
  request: ActionSearch,
  requestId: string | null,
): Promise<SearchPage<{ name: string }>> {
  const subject = given(request.subject);
  const resource = given(request.resource);
  const actions = [...ctx.policy().catalog.actions].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  return runSearch(
    ctx,
    caller,
    {
      kind: 'action',
      candidates: actions,
      key: (name) => name,
      result: (name) => ({ name }),
      ask: (name) => {
        try {
          return askPolicies(ctx, caller, subject, { name }, resource, request.context);
        } catch (error) {
          if (error instanceof OAuthError) return { allowed: false, reasons: [] };
          throw error;
        }
      },
      user: refOf(request.subject),
      question: `${refOf(request.subject)} on ${refOf(request.resource)}`,
    },
    request.page,
    requestId,
  );
}
