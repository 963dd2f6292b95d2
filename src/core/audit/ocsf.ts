import type { AuditEntry, AuditRecord } from './chain.js';

/** The OCSF release the events follow (schema.ocsf.io, github.com/ocsf/ocsf-schema tag 1.8.0). */
export const ocsfVersion = '1.8.0';

/** Baton's version as OCSF's metadata.product states it (kept equal to package.json by a test). */
export const batonVersion = '0.1.0';

/** An OCSF event: a JSON object of one class. */
export type OcsfEvent = Readonly<Record<string, unknown>>;

/** Where one entry type goes: its OCSF class, category and activity. */
interface Placement {
  readonly classUid: number;
  readonly className: string;
  readonly categoryUid: number;
  readonly categoryName: string;
  readonly activityId: number;
  readonly activityName: string;
}

const apiActivity = { classUid: 6003, className: 'API Activity', categoryUid: 6, categoryName: 'Application Activity' };
const authentication = {
  classUid: 3002,
  className: 'Authentication',
  categoryUid: 3,
  categoryName: 'Identity & Access Management',
};
const authorizeSession = {
  classUid: 3003,
  className: 'Authorize Session',
  categoryUid: 3,
  categoryName: 'Identity & Access Management',
};
const entityManagement = {
  classUid: 3004,
  className: 'Entity Management',
  categoryUid: 3,
  categoryName: 'Identity & Access Management',
};
const applicationError = {
  classUid: 6008,
  className: 'Application Error',
  categoryUid: 6,
  categoryName: 'Application Activity',
};

const create = { activityId: 1, activityName: 'Create' };
const read = { activityId: 2, activityName: 'Read' };
const update = { activityId: 3, activityName: 'Update' };
const remove = { activityId: 4, activityName: 'Delete' };
const authorize = { ...apiActivity, activityId: 99, activityName: 'Authorize' };

/**
 * Each entry type's class and activity (the README's table is this one). A token request of any
 * grant (`token.exchange`, `token.client_credentials`, …: a new grant brings its own type) is an
 * API call that creates a token; revocations, policy and registry changes are operations on a
 * managed entity; decisions are API calls whose outcome is the decision (OCSF's API Activity has
 * no "authorize" activity, hence Other, named).
 */
export const ocsfPlacements: Readonly<Record<string, Placement>> = {
  'token.*': { ...apiActivity, ...create },
  'token.introspection': { ...apiActivity, ...read },
  'token.revocation': { ...entityManagement, ...remove },
  'request.refusal': { ...apiActivity, activityId: 99, activityName: 'Refuse' },
  decision: authorize,
  'authzen.evaluation': authorize,
  'authzen.search': authorize,
  'authorization.login': { ...authentication, activityId: 1, activityName: 'Logon' },
  'authorization.consent': { ...authorizeSession, activityId: 1, activityName: 'Assign Privileges' },
  'policy.reload': { ...entityManagement, ...update },
  'policy.rollback': { ...entityManagement, ...update },
  'registry.reload': { ...entityManagement, ...update },
  'registry.change': { ...entityManagement, ...update },
  'registry.suspend': { ...entityManagement, activityId: 12, activityName: 'Suspend' },
  'registry.resume': { ...entityManagement, activityId: 13, activityName: 'Resume' },
  'registry.subagent': { ...entityManagement, ...create },
  'registry.registration': { ...entityManagement, ...create },
  'registry.sweep': { ...entityManagement, ...remove },
  'audit.undelivered': { ...applicationError, activityId: 1, activityName: 'General Error' },
};

/** An entry type's class and activity: its own, that of token requests for any `token.` type, else API Activity Other. */
export function ocsfPlacement(type: string): Placement {
  return (
    (Object.hasOwn(ocsfPlacements, type) ? ocsfPlacements[type] : undefined) ??
    (type.startsWith('token.') ? ocsfPlacements['token.*'] : undefined) ?? {
      ...apiActivity,
      activityId: 99,
      activityName: 'Other',
    }
  );
}

/** The entry's members as `unmapped.baton` states them when an entry (an older one) lacks them. */
const entryDefaults = {
  decision: undefined,
  action_id: null,
  user: null,
  actor_chain: [],
  client: null,
  jti: null,
  parent_jti: null,
  root_grant: null,
  audience: [],
  scope: [],
  authorization_details: [],
  policy_ids: [],
  policy_digest: null,
  reason: null,
  request_id: null,
  trace_id: null,
};

/** A field of an entry that may be absent (entries written before it existed) or null. */
function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function list(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** Drops undefined members, so that an absent fact is absent rather than null. */
function compact<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** The object an Entity Management event is about (OCSF requires one, named by uid or name). */
function managedEntity(entry: Partial<AuditEntry>, type: string): Record<string, unknown> {
  const agents = list(entry.actor_chain);
  const user = text(entry.user);
  switch (type) {
    case 'token.revocation':
      if (text(entry.jti) !== undefined) return { type: 'token', uid: entry.jti };
      if (text(entry.root_grant) !== undefined) return { type: 'grant', uid: entry.root_grant };
      if (agents[0] !== undefined) return { type: 'tokens of agent', uid: agents[0] };
      if (user !== undefined) return { type: 'tokens of user', uid: user, type_id: 2 };
      return { type: 'token', name: 'unknown' };
    case 'policy.reload':
    case 'policy.rollback':
      return compact({ type: 'policy set', type_id: 5, name: 'policy set', uid: text(entry.policy_digest) });
    case 'registry.suspend':
    case 'registry.resume':
      if (agents[0] !== undefined) return { type: 'agent', uid: agents[0] };
      if (user !== undefined) return { type: 'user', type_id: 2, uid: user };
      return { type: 'client', name: 'the client named in the comment' };
    case 'registry.subagent':
      return agents[0] === undefined ? { type: 'agent', name: 'unknown' } : { type: 'agent', uid: agents[0] };
    case 'registry.sweep':
      return agents.length > 0 ? { type: 'agent', name: agents.join(', ') } : { type: 'client', name: 'registry' };
    case 'registry.registration':
      return { type: 'client', name: 'a dynamically registered client' };
    default:
      return { type: 'registry', name: 'registry' };
  }
}

/** Entry types whose user and actor chain name what was acted upon (the managed entity), not on whose behalf. */
const targetTypes = new Set(['token.revocation', 'registry.suspend', 'registry.resume', 'registry.sweep']);

/** Who acted: the user on whose behalf, the OAuth client that called, the token it used, and each policy's decision. */
function actorOf(entry: Partial<AuditEntry>, type: string): Record<string, unknown> | undefined {
  const user = targetTypes.has(type) ? undefined : text(entry.user);
  const client = text(entry.client);
  const jti = text(entry.jti);
  const decision = entry.decision === 'allow' || entry.decision === 'deny' ? entry.decision : undefined;
  const policies = list(entry.policy_ids);
  const actor = compact({
    user: user === undefined ? undefined : { uid: user, type_id: 1 },
    app_uid: client,
    app_name: client,
    session: jti === undefined ? undefined : { uid: jti },
    authorizations:
      decision === undefined
        ? undefined
        : (policies.length === 0 ? [undefined] : policies).map((uid) =>
            compact({ decision, policy: uid === undefined ? undefined : { uid } }),
          ),
  });
  // OCSF's actor names at least one of user, app, process, session or invoker.
  return Object.keys(actor).length === 0 ? undefined : actor;
}

/** An entry's decision as OCSF status and severity: refusals and denials are failures, of low severity. */
function outcome(decision: unknown): { statusId: number; status: string; severityId: number; severity: string } {
  return decision === 'refused' || decision === 'deny'
    ? { statusId: 2, status: 'Failure', severityId: 2, severity: 'Low' }
    : { statusId: 1, status: 'Success', severityId: 1, severity: 'Informational' };
}

/** The delegation chain in words: the user first, then each actor in the order they were delegated to. */
function chainText(entry: Partial<AuditEntry>): string | undefined {
  const hops = [...list(entry.actor_chain)].reverse();
  const user = text(entry.user);
  if (hops.length === 0 && user === undefined) return undefined;
  return [...(user === undefined ? [] : [user]), ...hops].join(' → ');
}

/**
 * One committed audit entry as an OCSF 1.8.0 event. The entry's sequence number and hash go to
 * `metadata.sequence` and `metadata.uid` (a consumer that sees a hash twice has a duplicate), the
 * action ID to `metadata.correlation_uid`, the user to `actor.user.uid`, the calling client to
 * `actor.app_uid`, the token to `actor.session.uid`; the delegation chain and the rest that OCSF
 * has no place for go to `unmapped.baton`, under the entry's own names.
 */
export function toOcsf(
  record: Pick<AuditRecord, 'seq' | 'hash' | 'prev_hash'> & { readonly entry: unknown },
): OcsfEvent {
  const entry = (record.entry !== null && typeof record.entry === 'object' ? record.entry : {}) as Partial<AuditEntry>;
  const type = text(entry.type) ?? 'unknown';
  const placement = ocsfPlacement(type);
  const result = outcome(entry.decision);
  const actor = actorOf(entry, type);
  const client = text(entry.client);
  const reason = text(entry.reason);
  const chain = targetTypes.has(type) ? undefined : chainText(entry);
  const time = Date.parse(text(entry.time) ?? '');
  const { tenant: _tenant, time: _time, ...fields } = entry as Record<string, unknown>;
  const event: Record<string, unknown> = {
    class_uid: placement.classUid,
    class_name: placement.className,
    category_uid: placement.categoryUid,
    category_name: placement.categoryName,
    activity_id: placement.activityId,
    activity_name: placement.activityName,
    type_uid: placement.classUid * 100 + placement.activityId,
    type_name: `${placement.className}: ${placement.activityName}`,
    time: Number.isNaN(time) ? 0 : time,
    severity_id: result.severityId,
    severity: result.severity,
    status_id: result.statusId,
    status: result.status,
    ...(reason === undefined ? {} : { status_detail: reason }),
    message: `${type} ${String(entry.decision)}${chain === undefined ? '' : `: ${chain}`}${reason === undefined ? '' : ` (${reason})`}`,
    metadata: compact({
      version: ocsfVersion,
      product: { name: 'Baton', vendor_name: 'Baton', version: batonVersion },
      uid: record.hash,
      sequence: record.seq,
      correlation_uid: text(entry.action_id),
      tenant_uid: text(entry.tenant),
      event_code: type,
      log_name: 'audit',
      log_provider: 'Baton',
      original_time: text(entry.time),
    }),
    unmapped: {
      // Every member of the entry but its tenant and time (in metadata and time), including members
      // added after this mapping was written; those an older entry lacks are null or empty.
      baton: compact({
        seq: record.seq,
        hash: record.hash,
        prev_hash: record.prev_hash,
        ...entryDefaults,
        ...fields,
        type,
      }),
    },
  };
  if (actor !== undefined) event.actor = actor;
  switch (placement.classUid) {
    case apiActivity.classUid:
      event.api = compact({
        operation: type,
        service: { name: 'Baton' },
        request: text(entry.request_id) === undefined ? undefined : { uid: entry.request_id },
      });
      // OCSF requires the source endpoint; the log records the calling client, not its address.
      event.src_endpoint = { name: client ?? 'unknown' };
      event.actor ??= { app_name: 'unknown' };
      if (list(entry.audience).length > 0)
        event.resources = list(entry.audience).map((uid) => ({ uid, type: 'audience' }));
      break;
    case authentication.classUid:
      event.user = text(entry.user) === undefined ? { name: 'unknown' } : { uid: entry.user, type_id: 1 };
      event.service = { name: 'Baton' };
      break;
    case authorizeSession.classUid:
      event.user = text(entry.user) === undefined ? { name: 'unknown' } : { uid: entry.user, type_id: 1 };
      // OCSF requires the privileges (or a group): the scope consented to, empty when refused before one was known.
      event.privileges = list(entry.scope);
      break;
    case entityManagement.classUid:
      event.entity = managedEntity(entry, type);
      if (reason !== undefined) event.comment = reason;
      break;
  }
  return event;
}

/** The event of a stored line (`seq, prev_hash, hash, canonical`); a canonical text that is not JSON (tampered) maps as an entry of unknown type, still with its sequence number and hash. */
export function ocsfOfLine(
  line: Pick<AuditRecord, 'seq' | 'hash' | 'prev_hash'> & { readonly canonical: string },
): OcsfEvent {
  let entry: unknown;
  try {
    entry = JSON.parse(line.canonical) as unknown;
  } catch {
    entry = undefined;
  }
  return toOcsf({ seq: line.seq, hash: line.hash, prev_hash: line.prev_hash, entry });
}
