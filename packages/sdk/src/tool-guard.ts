import type { AuthorizeResource, Authorizer } from './authorize.js';
import { BatonError } from './errors.js';

/** A guarded tool's call that Baton denied: the tool did not run. */
export class ToolDeniedError extends BatonError {
  constructor(
    readonly tool: string,
    /** The action id the denial is audited under. */
    readonly actionId: string,
    readonly reasons: readonly string[],
  ) {
    super('access_denied', `Baton denied the tool ${tool} (action ${actionId})`);
  }
}

/** How a guarded tool asks Baton: with whose token, about which resource, under which action. */
export interface ToolGuardOptions<A> {
  readonly authorizer: Authorizer;
  /** The Baton token of the agent the tool acts for; read at each call, so the model never holds it. */
  readonly token: () => string | Promise<string>;
  /** The resource the call acts on, fixed or from the call's arguments. */
  readonly resource: AuthorizeResource | ((args: A) => AuthorizeResource);
  /** The action Baton decides; the tool's name when not given. */
  readonly action?: string;
  /** The caller's action id for a call (to join the audit trail to its own logs); Baton makes one when absent. */
  readonly actionId?: (args: A) => string;
}

/**
 * Wraps a tool function (brokered pattern): each call first asks Baton's `/authorize` with the
 * tool's name as the action and its arguments as the context, and runs the tool only when Baton
 * allows it; a denial throws ToolDeniedError before the tool runs. Parameters after the arguments
 * (a framework's call options: tool call id, abort signal) reach the tool unchanged.
 */
export function guardTool<A extends Record<string, unknown>, R, X extends unknown[] = []>(
  name: string,
  run: (args: A, ...rest: X) => R | Promise<R>,
  options: ToolGuardOptions<A>,
): (args: A, ...rest: X) => Promise<R> {
  return async (args, ...rest) => {
    const actionId = options.actionId?.(args);
    const decision = await options.authorizer.authorize({
      token: await options.token(),
      action: options.action ?? name,
      resource: typeof options.resource === 'function' ? options.resource(args) : options.resource,
      context: args,
      ...(actionId === undefined ? {} : { actionId }),
    });
    if (!decision.allowed) throw new ToolDeniedError(name, decision.actionId, decision.reasons);
    return run(args, ...rest);
  };
}

/** A tool in the Vercel AI SDK's `tool()` shape: the part the guard reads. */
export interface AiSdkTool {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any tool's arguments and further parameters
  readonly execute?: ((args: any, ...rest: any[]) => unknown) | undefined;
}

/** The arguments a tool's `execute` takes. */
export type ToolArgs<T extends AiSdkTool> = T['execute'] extends
  ((args: infer A, ...rest: never[]) => unknown) | undefined
  ? A & Record<string, unknown>
  : never;

/** Guards a Vercel AI SDK tool (`tool({ description, inputSchema, execute })`): the same tool, its `execute` asking Baton first. */
export function guardAiSdkTool<T extends AiSdkTool>(name: string, tool: T, options: ToolGuardOptions<ToolArgs<T>>): T {
  const execute = tool.execute;
  if (execute === undefined) throw new BatonError('invalid_configuration', `the tool ${name} has no execute to guard`);
  // execute's second parameter (toolCallId, messages, abortSignal) passes through to the tool.
  return {
    ...tool,
    execute: guardTool(name, (args: ToolArgs<T>, ...rest: unknown[]) => execute(args, ...rest), options),
  };
}

/**
 * A LangChain.js tool made with `tool(fn, { name, schema })` (a DynamicStructuredTool): the part the
 * guard reads. `func` is what the tool's protected `_call` runs, after `invoke` has parsed the input
 * against the schema; class-based tools that implement `_call` themselves have none.
 */
export interface LangChainTool {
  readonly name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any tool's input and run manager, config
  func?: ((input: any, ...rest: any[]) => unknown) | undefined;
}

/** The parsed input a LangChain tool's `func` takes; string-input tools (DynamicTool) have none to guard. */
export type LangChainToolArgs<T extends LangChainTool> =
  NonNullable<T['func']> extends (input: infer A, ...rest: never[]) => unknown
    ? A extends Record<string, unknown>
      ? A
      : never
    : never;

/**
 * Guards a LangChain.js tool made with `tool(fn, { name, schema })`: a tool of the same class, under
 * the same name, description and schema, whose function asks Baton first with `tool.name` as the action.
 */
export function guardLangChainTool<T extends LangChainTool>(
  tool: T,
  options: ToolGuardOptions<LangChainToolArgs<T>>,
): T {
  const func = tool.func;
  if (typeof func !== 'function')
    throw new BatonError('invalid_configuration', `the tool ${tool.name} has no func to guard`);
  // A child of the tool rather than a copy: it stays an instance of the tool's class and inherits
  // every field (schema, callbacks, response format), so only `func` differs. The run manager and
  // config after the input pass through, so callbacks and abort signals keep working.
  const guarded: T = Object.create(tool) as T;
  guarded.func = guardTool(
    tool.name,
    (args: LangChainToolArgs<T>, ...rest: unknown[]) => func.call(tool, args, ...rest),
    options,
  );
  return guarded;
}
