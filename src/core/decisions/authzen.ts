import { z } from 'zod';
import { OAuthError } from '../errors.js';
import type { AuditEvent } from '../audit/chain.js';
import { readGovernedContext, type DetailTypes } from '../tokens/authorization-details.js';
import type { AuditLog, Metrics, PolicyDecision, PolicyEngine, PolicyEntity } from '../ports.js';
import { inSpanSync } from '../telemetry.js';
import type { Caller } from '../registry/registry.js';
import { storable } from '../input/storable-text.js';

/** AuthZEN `properties` and `context`: any JSON object. */
export const properties = z.record(z.string(), z.unknown());
/** An AuthZEN subject or resource: its type, id and properties (its attributes). */
export const entitySchema = z.object({
  type: z.string().min(1),
  id: z.string().min(1),
  properties: properties.optional(),
});
/** An AuthZEN action: its name (the Cedar action) and properties. */
export const actionSchema = z.object({ name: z.string().min(1), properties: properties.optional() });

/**
 * OpenID AuthZEN 1.0 Access Evaluation request; no member may hold text Cedar cannot read (see
 * storable-text.ts). Each item of a batch is checked as one, so only that item fails.
 */
export const evaluationSchema = storable(
  z.object({
    subject: entitySchema,
    action: actionSchema,
    resource: entitySchema,
    context: properties.optional(),
  }),
);
export type Evaluation = z.infer<typeof evaluationSchema>;

const partial = {
  subject: z.record(z.string(), z.unknown()).optional(),
  action: z.record(z.string(), z.unknown()).optional(),
  resource: z.record(z.string(), z.unknown()).optional(),
  context: properties.optional(),
};

/** OpenID AuthZEN 1.0 Access Evaluations (batch) request: top-level defaults and items. */
export const evaluationsSchema = z.object({
  ...partial,
  evaluations: z.array(z.object(partial)).max(256).optional(),
  options: z
    .object({
      evaluations_semantic: z.enum(['execute_all', 'deny_on_first_deny', 'permit_on_first_permit']).optional(),
    })
    .loose()
    .optional(),
});
export type Evaluations = z.infer<typeof evaluationsSchema>;

export interface AuthzenDecision {
  readonly decision: boolean;
  readonly context?: { readonly error: { readonly status: number; readonly message: string } };
}

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  const path = issue?.path.join('.') ?? '';
  return `${path === '' ? 'request' : path}: ${issue?.message ?? 'is invalid'}`;
}

/** Validates a request body against a schema; a malformed request is `invalid_request` (400). */
export function parseAuthzen<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new OAuthError('invalid_request', describeIssue(parsed.error));
  return parsed.data;
}

/**
 * Maps an evaluation onto the policy engine: subject and resource become entities of their
 * `type` with `properties` as attributes, the action name is the Cedar action, `context` is the
 * context and `action.properties` arrive as `context.action`. The caller's tenant is `context.tenant`.
 */
export interface AuthzenContext {
  readonly policy: () => PolicyEngine;
  readonly audit: AuditLog;
  readonly metrics: Metrics;
  readonly detailTypes: DetailTypes;
}

/** The audit entry of an evaluation refused as malformed. */
function refusedEvent(caller: Caller, error: OAuthError, requestId: string | null): AuditEvent {
  return {
    tenant: caller.tenant,
    type: 'authzen.evaluation',
    decision: 'refused',
    client: caller.id,
    reason: `${error.code}: ${error.description}`,
    request_id: requestId,
  };
}

/**
 * Asks the policies about one subject, action and resource, as an evaluation does: a governed
 * action's context must first fit its authorization_details type, as at `POST /authorize`.
 */
export function askPolicies(
  ctx: AuthzenContext,
  caller: Caller,
  principal: PolicyEntity,
  action: Evaluation['action'],
  resource: PolicyEntity,
  context: Evaluation['context'],
): PolicyDecision {
  readGovernedContext(ctx.detailTypes, action.name, context ?? {});
  return inSpanSync('baton.policy.evaluate', { 'baton.action': action.name, 'baton.tenant': caller.tenant }, () =>
    ctx.policy().evaluate({
      principal,
      action: action.name,
      resource,
      context: {
        ...context,
        ...(action.properties === undefined ? {} : { action: action.properties }),
        tenant: caller.tenant,
      },
    }),
  );
}

/** Asks the policies; returns the decision and the audit entry that records it. */
function decideOne(
  ctx: AuthzenContext,
  caller: Caller,
  request: Evaluation,
  requestId: string | null,
): { result: AuthzenDecision; event: AuditEvent } {
  const decision = askPolicies(
    ctx,
    caller,
    { type: request.subject.type, id: request.subject.id, attributes: request.subject.properties ?? {} },
    request.action,
    { type: request.resource.type, id: request.resource.id, attributes: request.resource.properties ?? {} },
    request.context,
  );
  ctx.metrics.decision('authzen', decision.allowed ? 'allow' : 'deny', 'policy');
  return {
    result: { decision: decision.allowed },
    event: {
      tenant: caller.tenant,
      type: 'authzen.evaluation',
      decision: decision.allowed ? 'allow' : 'deny',
      client: caller.id,
      user: `${request.subject.type}::${request.subject.id}`,
      policy_ids: decision.reasons,
      // The set in force when askPolicies ran: a swap happens only between turns of the event loop.
      policy_digest: ctx.policy().digest,
      reason: `${request.action.name} on ${request.resource.type}::${request.resource.id}${decision.errors.length > 0 ? `: ${decision.errors.join('; ')}` : ''}`,
      request_id: requestId,
    },
  };
}

/** Evaluates one request; answers only once its audit entry is committed. */
export async function evaluate(
  ctx: AuthzenContext,
  caller: Caller,
  request: Evaluation,
  requestId: string | null,
): Promise<AuthzenDecision> {
  let decided;
  try {
    decided = decideOne(ctx, caller, request, requestId);
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    await ctx.audit.append(refusedEvent(caller, error, requestId));
    throw error.markAudited();
  }
  await ctx.audit.append(decided.event);
  return decided.result;
}

/**
 * An item's member replaces the default whole (its properties never mix with the default's),
 * but falls back to the default's identifying fields when it leaves them out.
 */
function override(
  fallback: Record<string, unknown> | undefined,
  value: Record<string, unknown> | undefined,
  identifying: readonly string[],
): Record<string, unknown> | undefined {
  if (value === undefined) return fallback;
  const out = { ...value };
  for (const k of identifying) if (out[k] === undefined && fallback?.[k] !== undefined) out[k] = fallback[k];
  return out;
}

/** Runs a batch with its `evaluations_semantic`; items inherit the top-level defaults. All entries commit together. */
export async function evaluateBatch(
  ctx: AuthzenContext,
  caller: Caller,
  request: Evaluations,
  requestId: string | null,
): Promise<AuthzenDecision | { evaluations: AuthzenDecision[] }> {
  const { evaluations, options, ...defaults } = request;
  if (evaluations === undefined || evaluations.length === 0)
    return evaluate(ctx, caller, parseAuthzen(evaluationSchema, defaults), requestId);
  const semantic = options?.evaluations_semantic ?? 'execute_all';
  const results: AuthzenDecision[] = [];
  const events: AuditEvent[] = [];
  for (const item of evaluations) {
    const merged = {
      subject: override(defaults.subject, item.subject, ['type', 'id']),
      action: override(defaults.action, item.action, ['name']),
      resource: override(defaults.resource, item.resource, ['type', 'id']),
      context: item.context ?? defaults.context,
    };
    let result: AuthzenDecision;
    try {
      const one = decideOne(ctx, caller, parseAuthzen(evaluationSchema, merged), requestId);
      result = one.result;
      events.push(one.event);
    } catch (error) {
      if (!(error instanceof OAuthError)) throw error;
      result = { decision: false, context: { error: { status: error.status, message: error.description } } };
      events.push(refusedEvent(caller, error, requestId));
    }
    results.push(result);
    if (semantic === 'deny_on_first_deny' && !result.decision) break;
    if (semantic === 'permit_on_first_permit' && result.decision) break;
  }
  await Promise.all(events.map((e) => ctx.audit.append(e)));
  return { evaluations: results };
}
