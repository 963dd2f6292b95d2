import { z } from 'zod';
import type { ServiceContext } from '../context.js';
import { OAuthError, echo, invalidRequest } from '../errors.js';
import { secret } from '../secrets.js';
import { RegistryError, type RegistryProblem } from './compile.js';
import { changedFields } from './diff.js';
import type { RegistryDocument } from './document.js';
import type { Caller } from './registry.js';
import { jwksSchema } from './schema.js';
import type { RegistryStore } from './store.js';
import { refusalAudited } from './audited.js';

/** The kinds of entity the admin API manages: the document section, the member naming one, and its words. */
export const adminKinds = {
  agents: { key: 'id', noun: 'agent', callerId: true, secret: false },
  clients: { key: 'client_id', noun: 'client', callerId: true, secret: true },
  resource_servers: { key: 'id', noun: 'resource server', callerId: true, secret: true },
  trusted_issuers: { key: 'issuer', noun: 'trusted issuer', callerId: false, secret: false },
  workload_issuers: { key: 'issuer', noun: 'workload issuer', callerId: false, secret: false },
} as const;

export type AdminKind = keyof typeof adminKinds;

type Entity = Record<string, unknown>;

/** An entity as the admin API shows it: without its tenant (the caller's) and never its secret's hash. */
export type EntityView = Entity;

/** What a create, an update or a secret rotation answers: the entity, and a new secret shown this once. */
export interface Written {
  readonly entity: EntityView;
  readonly client_secret?: string;
}

/** A page of a listing. */
export interface Page {
  readonly items: readonly EntityView[];
  /** Where the next page starts (give it as `cursor`); null on the last page. */
  readonly next_cursor: string | null;
}

/** An edit refused as invalid: the registry's problems, at paths inside the entity. */
export class InvalidEntityError extends OAuthError {
  constructor(
    description: string,
    readonly problems: readonly RegistryProblem[],
  ) {
    super('invalid_request', description);
  }

  override toJSON(): { error: 'invalid_request'; error_description: string; problems: readonly RegistryProblem[] } {
    return { error: 'invalid_request', error_description: this.description, problems: this.problems };
  }
}

/** Members an operator never sends: the hash is Baton's, the secret Baton's to make, the retiring keys the rotation's. */
const managedMembers = ['client_secret_sha256', 'client_secret', 'retiring_keys'] as const;

/** The most one rotation lets the replaced keys verify: a week. */
export const maxOverlapSeconds = 7 * 86_400;

const keyRotationSchema = z.strictObject({
  jwks: jwksSchema,
  overlap_seconds: z
    .number()
    .int()
    .min(0)
    .max(maxOverlapSeconds, `must be at most ${maxOverlapSeconds}`)
    .describe('how long the replaced keys keep verifying'),
});

const listQuerySchema = z.strictObject({
  limit: z
    .string()
    .regex(/^[0-9]{1,3}$/, 'must be an integer from 1 to 200')
    .transform(Number)
    .refine((n) => n >= 1 && n <= 200, 'must be an integer from 1 to 200')
    .optional(),
  cursor: z.string().min(1).max(2048).optional(),
});

const usesSecret = (entity: Entity): boolean =>
  entity.token_endpoint_auth_method === 'client_secret_basic' ||
  entity.token_endpoint_auth_method === 'client_secret_post';

function view(entity: Entity): EntityView {
  const { tenant: _tenant, client_secret_sha256: _hash, ...shown } = entity;
  return shown;
}

const sectionOf = (document: RegistryDocument, kind: AdminKind): Entity[] => document[kind] as unknown as Entity[];

/**
 * The registry's admin API for one deployment: each call acts in the operator's own tenant only
 * (another tenant's entity is not found, exactly like a missing one), edits through the store (so
 * every change is compiled before it commits, and reaches every instance), and is audited, applied
 * or refused.
 */
export function registryAdmin(ctx: ServiceContext, store: RegistryStore) {
  /** The entity of `kind` named `id` in the operator's tenant, with its index, or not found. */
  function find(document: RegistryDocument, kind: AdminKind, operator: Caller, id: string): [Entity, number] {
    const entities = sectionOf(document, kind);
    const index = entities.findIndex((e) => e[adminKinds[kind].key] === id && e.tenant === operator.tenant);
    const entity = entities[index];
    if (entity === undefined) throw new OAuthError('not_found', `no ${adminKinds[kind].noun} "${echo(id, 128)}"`);
    return [entity, index];
  }

  /** Refuses what an operator may not send, and puts the entity in the operator's tenant. */
  function accepted(kind: AdminKind, operator: Caller, body: unknown): Entity {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw invalidRequest('request body must be a JSON object');
    const entity = body as Entity;
    for (const member of managedMembers)
      if (Object.hasOwn(entity, member))
        throw invalidRequest(
          member === 'retiring_keys'
            ? 'retiring_keys is set by a key rotation (POST /admin/agents/{id}/keys), not in a body'
            : `${member} may not be given: Baton generates a client secret and shows it once`,
        );
    if (Object.hasOwn(entity, 'tenant') && entity.tenant !== operator.tenant)
      throw invalidRequest("tenant must be left out or be the caller's own tenant");
    return { ...entity, tenant: operator.tenant };
  }

  /** Stores the edited document; a registry problem becomes a 400 naming paths inside the entity. */
  async function write(
    operator: Caller,
    kind: AdminKind,
    edit: (document: RegistryDocument) => { document: RegistryDocument; index?: number },
  ): Promise<void> {
    let index: number | undefined;
    try {
      await store.edit(operator.id, (document) => {
        const result = edit(document);
        index = result.index;
        return result.document;
      });
    } catch (error) {
      if (!(error instanceof RegistryError)) throw error;
      const prefix = index === undefined ? undefined : `/${kind}/${index}`;
      const problems = error.problems.map((p) =>
        prefix !== undefined && (p.path === prefix || p.path.startsWith(`${prefix}/`))
          ? { path: p.path.slice(prefix.length) || '/', message: p.message }
          : { path: '', message: p.message },
      );
      const first = problems[0];
      throw new InvalidEntityError(
        `the ${adminKinds[kind].noun} is invalid${first === undefined ? '' : `: ${first.path || '/'}: ${first.message}`}`,
        problems,
      );
    }
  }

  /** Audits a change applied in the operator's tenant. */
  const applied = (operator: Caller, reason: string, requestId: string | null): Promise<void> =>
    ctx.audit
      .append({
        tenant: operator.tenant,
        type: 'registry.change',
        decision: 'applied',
        client: operator.id,
        reason,
        request_id: requestId,
      })
      .then(() => undefined);

  /** Runs one call: a refusal is audited in the operator's tenant and marked so. */
  const audited = <T>(operator: Caller, requestId: string | null, what: string, run: () => Promise<T>): Promise<T> =>
    refusalAudited(ctx.audit, { caller: operator, type: 'registry.change', requestId, what }, run);

  /** Refuses an id another entity holds in any tenant: ids are global (a caller authenticates by its id alone). */
  function assertFree(document: RegistryDocument, kind: AdminKind, id: string): void {
    const taken = adminKinds[kind].callerId
      ? (['agents', 'clients', 'resource_servers'] as const).some((k) =>
          sectionOf(document, k).some((e) => e[adminKinds[k].key] === id),
        )
      : (['trusted_issuers', 'workload_issuers'] as const).some((k) =>
          sectionOf(document, k).some((e) => e.issuer === id),
        );
    if (taken) throw new OAuthError('conflict', `"${echo(id, 128)}" is already registered`);
  }

  /** What refers to an entity in the operator's tenant (which a delete would break). */
  function references(document: RegistryDocument, kind: AdminKind, id: string): string[] {
    if (kind !== 'agents') return [];
    return [
      ...document.clients.filter((c) => (c.agents ?? []).includes(id)).map((c) => `client "${c.client_id}"`),
      ...document.workload_issuers
        .filter((w) => w.subjects.some((s) => s.agent === id))
        .map((w) => `workload issuer "${w.issuer}"`),
    ];
  }

  return {
    /** Registers an entity in the operator's tenant; a secret-authenticated caller gets its secret here, once. */
    create(operator: Caller, kind: AdminKind, body: unknown, requestId: string | null): Promise<Written> {
      const { key, noun } = adminKinds[kind];
      return audited(operator, requestId, `create ${noun}`, async () => {
        const entity = accepted(kind, operator, body);
        const id = entity[key];
        if (typeof id !== 'string') throw invalidRequest(`${key} is required`);
        const made = adminKinds[kind].secret && usesSecret(entity) ? secret() : undefined;
        if (made !== undefined) entity.client_secret_sha256 = ctx.sha256(made);
        await write(operator, kind, (document) => {
          assertFree(document, kind, id);
          const section = sectionOf(document, kind);
          return { document: { ...document, [kind]: [...section, entity] }, index: section.length };
        });
        await applied(operator, `created ${noun} "${id}"`, requestId);
        return { entity: view(entity), ...(made === undefined ? {} : { client_secret: made }) };
      });
    },

    /** One entity of the operator's tenant. */
    read(operator: Caller, kind: AdminKind, id: string, requestId: string | null): Promise<EntityView> {
      return audited(operator, requestId, `read ${adminKinds[kind].noun}`, async () =>
        view(find((await store.read()).document, kind, operator, id)[0]),
      );
    },

    /** The operator's tenant's entities of `kind`, ordered by id, a page at a time. */
    list(operator: Caller, kind: AdminKind, query: Record<string, string>, requestId: string | null): Promise<Page> {
      return audited(operator, requestId, `list ${kind}`, async () => {
        const parsed = listQuerySchema.safeParse(query);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          throw invalidRequest(`${issue?.path.join('.') || 'query'} ${issue?.message ?? 'is invalid'}`);
        }
        const limit = parsed.data.limit ?? 50;
        const { key } = adminKinds[kind];
        const mine = sectionOf((await store.read()).document, kind)
          .filter((e) => e.tenant === operator.tenant)
          .sort((a, b) => (String(a[key]) < String(b[key]) ? -1 : 1));
        const cursor = parsed.data.cursor;
        const after = cursor === undefined ? mine : mine.filter((e) => String(e[key]) > cursor);
        const items = after.slice(0, limit);
        const last = items.at(-1);
        return {
          items: items.map(view),
          next_cursor: after.length > limit && last !== undefined ? String(last[key]) : null,
        };
      });
    },

    /** Replaces an entity (PUT: the body is the whole entity); its secret is kept, or made if it now needs one. */
    update(operator: Caller, kind: AdminKind, id: string, body: unknown, requestId: string | null): Promise<Written> {
      const { key, noun } = adminKinds[kind];
      return audited(operator, requestId, `update ${noun} "${echo(id, 128)}"`, async () => {
        const entity = accepted(kind, operator, body);
        if (Object.hasOwn(entity, key) && entity[key] !== id)
          throw invalidRequest(`${key} must be left out or equal the ${noun} in the path (ids do not change)`);
        entity[key] = id;
        let made: string | undefined;
        let fields: string[] = [];
        await write(operator, kind, (document) => {
          const [old, index] = find(document, kind, operator, id);
          if (adminKinds[kind].secret && usesSecret(entity)) {
            if (typeof old.client_secret_sha256 === 'string') entity.client_secret_sha256 = old.client_secret_sha256;
            else entity.client_secret_sha256 = ctx.sha256((made = secret()));
          }
          if (old.retiring_keys !== undefined) entity.retiring_keys = old.retiring_keys;
          fields = changedFields(old, entity);
          const section = [...sectionOf(document, kind)];
          section[index] = entity;
          return { document: { ...document, [kind]: section }, index };
        });
        await applied(
          operator,
          `updated ${noun} "${id}": ${fields.length === 0 ? 'no change' : fields.join(', ')}`,
          requestId,
        );
        return { entity: view(entity), ...(made === undefined ? {} : { client_secret: made }) };
      });
    },

    /** Deletes an entity, unless something in the tenant still refers to it (409 naming what). */
    remove(operator: Caller, kind: AdminKind, id: string, requestId: string | null): Promise<void> {
      const { noun } = adminKinds[kind];
      return audited(operator, requestId, `delete ${noun} "${echo(id, 128)}"`, async () => {
        await write(operator, kind, (document) => {
          const [, index] = find(document, kind, operator, id);
          const referrers = references(document, kind, id);
          if (referrers.length > 0)
            throw new OAuthError('conflict', `the ${noun} is still referred to by ${referrers.join(', ')}`);
          // A suspension of the agent or client goes with it.
          const suspended = kind === 'agents' ? 'agent' : kind === 'clients' ? 'client' : undefined;
          const suspensions = document.suspensions.filter(
            (s) => !(s.kind === suspended && s.id === id && s.tenant === operator.tenant),
          );
          return {
            document: { ...document, [kind]: sectionOf(document, kind).filter((_, i) => i !== index), suspensions },
          };
        });
        await applied(operator, `deleted ${noun} "${id}"`, requestId);
      });
    },

    /** Makes a new secret for a client or resource server authenticating with one; the old one stops at once. */
    rotateSecret(operator: Caller, kind: AdminKind, id: string, requestId: string | null): Promise<Written> {
      const { noun } = adminKinds[kind];
      return audited(operator, requestId, `rotate the secret of ${noun} "${echo(id, 128)}"`, async () => {
        const made = secret();
        let entity: Entity = {};
        await write(operator, kind, (document) => {
          const [old, index] = find(document, kind, operator, id);
          if (!adminKinds[kind].secret || !usesSecret(old))
            throw invalidRequest(`the ${noun} does not authenticate with a client secret`);
          entity = { ...old, client_secret_sha256: ctx.sha256(made) };
          const section = [...sectionOf(document, kind)];
          section[index] = entity;
          return { document: { ...document, [kind]: section }, index };
        });
        await applied(operator, `rotated the secret of ${noun} "${id}"`, requestId);
        return { entity: view(entity), client_secret: made };
      });
    },

    /**
     * Replaces an agent's inline keys: the new ones verify at once, the replaced ones until the
     * overlap ends (an earlier overlap still running ends now). Every new key needs a `kid` no
     * replaced key has, so a header names which set it was signed with.
     */
    rotateKeys(operator: Caller, id: string, body: unknown, requestId: string | null): Promise<Written> {
      return audited(operator, requestId, `rotate the keys of agent "${echo(id, 128)}"`, async () => {
        const parsed = keyRotationSchema.safeParse(body);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          throw invalidRequest(`${issue?.path.join('.') || 'body'} ${issue?.message ?? 'is invalid'}`);
        }
        const { jwks, overlap_seconds: overlap } = parsed.data;
        const until = new Date(ctx.clock.now() + overlap * 1000).toISOString();
        let entity: Entity = {};
        await write(operator, 'agents', (document) => {
          const [old, index] = find(document, 'agents', operator, id);
          const oldJwks = old.jwks as { keys: { kid?: string }[] } | undefined;
          if (oldJwks === undefined)
            throw invalidRequest('the agent has no inline keys to rotate (its keys are at its jwks_uri)');
          const oldKids = new Set(oldJwks.keys.map((k) => k.kid));
          jwks.keys.forEach((k, i) => {
            if (k.kid === undefined) throw invalidRequest(`jwks.keys.${i}.kid is required for a rotation`);
            if (oldKids.has(k.kid)) throw invalidRequest(`jwks.keys.${i}.kid is a kid of the keys being replaced`);
          });
          const { retiring_keys: _previous, ...rest } = old;
          entity = { ...rest, jwks, ...(overlap > 0 ? { retiring_keys: { jwks: oldJwks, until } } : {}) };
          const section = [...document.agents] as unknown as Entity[];
          section[index] = entity;
          return { document: { ...document, agents: section as unknown as RegistryDocument['agents'] }, index };
        });
        await applied(
          operator,
          `rotated the keys of agent "${id}": ${overlap > 0 ? `replaced keys accepted until ${until}` : 'replaced keys refused at once'}`,
          requestId,
        );
        return { entity: view(entity) };
      });
    },
  };
}

/** The admin API's calls (see registryAdmin). */
export type RegistryAdmin = ReturnType<typeof registryAdmin>;
