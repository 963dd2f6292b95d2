import type { TrailEntry } from './chain.js';
import { describeDetail, type AuthorizationDetail, type DetailTypes } from '../tokens/authorization-details.js';

/** One box of an action's delegation graph: the user, each actor in delegation order, then the action. */
export interface ChainNode {
  readonly kind: 'user' | 'actor' | 'action';
  /** The user's sub, the actor's id, or the action id. */
  readonly id: string;
  /** The entry that made this hop (the token issued to the actor, or the action's decision); null for the user. */
  readonly seq: number | null;
  readonly type: string | null;
  readonly decision: string | null;
  readonly scope: readonly string[];
  /** Each authorization detail in words (as the consent page says it). */
  readonly details: readonly string[];
  readonly policyIds: readonly string[];
  readonly audience: readonly string[];
  readonly client: string | null;
  readonly reason: string | null;
  readonly time: string | null;
  /** Whether the hop's entry verifies (its hash and its link to the entry before). */
  readonly verified: boolean | null;
}

type Entry = Record<string, unknown>;
const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/**
 * The delegation graph of an action's trail (see AuditQueries.actionTrail): user → each actor a
 * token was issued to, in the order of issue → the action's decisions. Hops are the granted token
 * entries; a hop for an actor seen twice (a refresh) keeps the latest.
 */
export function chainView(
  trail: readonly TrailEntry[],
  actionId: string,
  types: DetailTypes,
  language = 'en',
): ChainNode[] {
  const describe = (value: unknown): string[] =>
    Array.isArray(value)
      ? value.map((d) => {
          try {
            return describeDetail(types, d as AuthorizationDetail, language);
          } catch {
            return JSON.stringify(d);
          }
        })
      : [];
  const node = (kind: ChainNode['kind'], id: string, t: TrailEntry): ChainNode => {
    const e = (t.entry ?? {}) as Entry;
    return {
      kind,
      id,
      seq: t.seq,
      type: text(e.type),
      decision: text(e.decision),
      scope: strings(e.scope),
      details: describe(e.authorization_details),
      policyIds: strings(e.policy_ids),
      audience: strings(e.audience),
      client: text(e.client),
      reason: text(e.reason),
      time: text(e.time),
      verified: t.verified,
    };
  };
  const entryOf = (t: TrailEntry): Entry => (typeof t.entry === 'object' && t.entry !== null ? (t.entry as Entry) : {});
  const hops = new Map<string, ChainNode>();
  let user: string | null = null;
  const actions: ChainNode[] = [];
  for (const t of trail) {
    const e = entryOf(t);
    user ??= text(e.user);
    if (e.action_id === actionId) {
      actions.push(node('action', actionId, t));
      continue;
    }
    const actor = strings(e.actor_chain)[0];
    if (typeof e.type === 'string' && e.type.startsWith('token.') && e.decision === 'granted' && actor !== undefined) {
      hops.delete(actor);
      hops.set(actor, node('actor', actor, t));
    }
  }
  const head: ChainNode = {
    kind: 'user',
    id: user ?? 'unknown user',
    seq: null,
    type: null,
    decision: null,
    scope: [],
    details: [],
    policyIds: [],
    audience: [],
    client: null,
    reason: null,
    time: null,
    verified: null,
  };
  return [head, ...hops.values(), ...actions];
}
