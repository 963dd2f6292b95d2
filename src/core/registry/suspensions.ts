import { z } from 'zod';
import type { AuditType } from '../audit/chain.js';
import type { ServiceContext } from '../context.js';
import { OAuthError, echo, invalidRequest } from '../errors.js';
import { assertStorableText } from '../input/storable-text.js';
import type { RevocationTarget } from '../ports.js';
import { applyRevocation } from '../revocation/revoke.js';
import { suspensionKinds, type RegistryDocument, type SuspensionKind } from './document.js';
import type { Caller } from './registry.js';
import type { RegistryStore } from './store.js';
import { refusalAudited } from './audited.js';

/** The body of `POST /admin/suspensions`. */
const suspendRequestSchema = z.strictObject({
  kind: z.enum(suspensionKinds),
  id: z.string().min(1).max(256),
  reason: z.string().min(1).max(500).optional(),
});

/** A suspension as the API shows it. */
export interface SuspensionView {
  readonly kind: SuspensionKind;
  readonly id: string;
  readonly reason?: string;
  readonly since: string;
}

/** What suspending answers: the suspension in force, whether this call made it, and the tokens it revoked. */
export interface Suspended {
  readonly suspension: SuspensionView;
  readonly created: boolean;
  readonly revoked: number;
}

/** What a suspension of `kind` revokes: everything the agent holds or acts in, the user granted, the client was issued. */
function revocationTarget(kind: SuspensionKind, id: string): RevocationTarget {
  return kind === 'agent'
    ? { kind: 'agent', agent: id }
    : kind === 'user'
      ? { kind: 'user', user: id }
      : { kind: 'client', client: id };
}

/** Refuses an agent or client that is not registered in the operator's tenant (a user may come from anywhere). */
function assertRegistered(document: RegistryDocument, tenant: string, kind: SuspensionKind, id: string): void {
  const known =
    kind === 'user' ||
    (kind === 'agent'
      ? document.agents.some((a) => a.id === id && a.tenant === tenant)
      : document.clients.some((c) => c.client_id === id && c.tenant === tenant));
  if (!known) throw new OAuthError('not_found', `no ${kind} "${echo(id, 128)}"`);
}

/**
 * Suspension and resumption by an operator (`baton:admin`) of its own tenant, through the
 * registry store: a suspension is in force on every instance within a second, refuses every new
 * grant (registry/standing.ts) and revokes what the principal holds; lifting it restores nothing
 * revoked. Each call is audited, applied or refused.
 */
export function suspensionsAdmin(ctx: ServiceContext, store: RegistryStore) {
  const audited = <T>(operator: Caller, type: AuditType, requestId: string | null, run: () => Promise<T>): Promise<T> =>
    refusalAudited(ctx.audit, { caller: operator, type, requestId }, run);

  return {
    /** The suspensions in force in the operator's tenant, oldest first. */
    list(operator: Caller): SuspensionView[] {
      return [...ctx.registry().suspensions.values()]
        .filter((s) => s.tenant === operator.tenant)
        .map((s) => ({
          kind: s.kind,
          id: s.id,
          ...(s.reason === undefined ? {} : { reason: s.reason }),
          since: s.since,
        }));
    },

    /** Suspends an agent, client or user of the operator's tenant (again: nothing changes) and revokes what it holds. */
    suspend(operator: Caller, body: unknown, requestId: string | null): Promise<Suspended> {
      return audited(operator, 'registry.suspend', requestId, async () => {
        const parsed = suspendRequestSchema.safeParse(body);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          throw invalidRequest(`${issue?.path.join('.') || 'body'} ${issue?.message ?? 'is invalid'}`);
        }
        assertStorableText(parsed.data, '');
        const { kind, id, reason } = parsed.data;
        // A file applied never lifts a suspension: an operator suspending itself could not undo it.
        if (kind === operator.kind && id === operator.id) throw invalidRequest('an operator may not suspend itself');
        const tenant = operator.tenant;
        let suspension: SuspensionView | undefined;
        let created = false;
        await store.edit(operator.id, (document) => {
          assertRegistered(document, tenant, kind, id);
          const existing = document.suspensions.find((s) => s.tenant === tenant && s.kind === kind && s.id === id);
          if (existing !== undefined) {
            suspension = {
              kind,
              id,
              ...(existing.reason === undefined ? {} : { reason: existing.reason }),
              since: existing.since,
            };
            return document;
          }
          created = true;
          const since = new Date(ctx.clock.now()).toISOString();
          suspension = { kind, id, ...(reason === undefined ? {} : { reason }), since };
          return { ...document, suspensions: [...document.suspensions, { tenant, ...suspension }] };
        });
        // In force before anything is revoked: nothing new can be granted to replace what goes.
        const revoked = await applyRevocation(ctx, operator, revocationTarget(kind, id), requestId);
        const shown = suspension as SuspensionView;
        await ctx.audit.append({
          tenant,
          type: 'registry.suspend',
          decision: 'applied',
          client: operator.id,
          ...(kind === 'agent' ? { actor_chain: [id] } : kind === 'user' ? { user: id } : {}),
          reason: `${created ? 'suspended' : 'already suspended'} ${kind} ${echo(id, 128)}${
            shown.reason === undefined ? '' : ` (${shown.reason})`
          }; revoked ${revoked.length} token${revoked.length === 1 ? '' : 's'}`,
          request_id: requestId,
        });
        return { suspension: shown, created, revoked: revoked.length };
      });
    },

    /** Lifts a suspension in the operator's tenant; what was revoked stays revoked. */
    resume(operator: Caller, kind: string, id: string, requestId: string | null): Promise<void> {
      return audited(operator, 'registry.resume', requestId, async () => {
        if (!(suspensionKinds as readonly string[]).includes(kind))
          throw invalidRequest('kind must be agent, client or user');
        assertStorableText({ id }, '');
        const tenant = operator.tenant;
        await store.edit(operator.id, (document) => {
          const kept = document.suspensions.filter((s) => !(s.tenant === tenant && s.kind === kind && s.id === id));
          if (kept.length === document.suspensions.length)
            throw new OAuthError('not_found', `${kind} "${echo(id, 128)}" is not suspended`);
          return { ...document, suspensions: kept };
        });
        await ctx.audit.append({
          tenant,
          type: 'registry.resume',
          decision: 'applied',
          client: operator.id,
          ...(kind === 'agent' ? { actor_chain: [id] } : kind === 'user' ? { user: id } : {}),
          reason: `resumed ${kind} ${echo(id, 128)}; nothing revoked is restored`,
          request_id: requestId,
        });
      });
    },
  };
}
