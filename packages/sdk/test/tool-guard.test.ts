import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoChain, startTestBaton, type TestBaton } from '../../../test/support/baton.js';
import { generateText, stepCountIs, tool as aiTool } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { z } from 'zod';
import { ToolMessage } from '@langchain/core/messages';
import {
  DynamicStructuredTool,
  StructuredTool,
  ToolInputParsingException,
  tool as langChainTool,
} from '@langchain/core/tools';
import {
  BatonError,
  guardAiSdkTool,
  guardLangChainTool,
  guardTool,
  ToolDeniedError,
  type Authorizer,
} from '../src/index.js';
import { paymentsAuthorizer } from './support.js';

let baton: TestBaton;
let payments: Authorizer;
let token: string;

beforeAll(async () => {
  baton = await startTestBaton();
  payments = paymentsAuthorizer(baton);
  [, token] = await demoChain(baton);
});
afterAll(async () => {
  await baton?.close();
});

type Transfer = { amount: number; currency: string };

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 1, text: 1, reasoning: undefined },
};

describe('tool guards', () => {
  it('runs a guarded tool Baton allows and refuses one it denies before the tool runs', async () => {
    const ran: number[] = [];
    const transfer = guardTool(
      'payments:transfer',
      (args: Transfer) => {
        ran.push(args.amount);
        return `sent ${args.amount} ${args.currency}`;
      },
      {
        authorizer: payments,
        token: () => token,
        resource: { type: 'Account', id: 'acct-1' },
        actionId: (args) => `tool-${args.amount}`,
      },
    );
    expect(await transfer({ amount: 50, currency: 'EUR' })).toBe('sent 50 EUR');
    const denied: unknown = await transfer({ amount: 150, currency: 'EUR' }).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(ToolDeniedError);
    expect(denied).toBeInstanceOf(BatonError);
    expect([
      (denied as ToolDeniedError).code,
      (denied as ToolDeniedError).message,
      (denied as ToolDeniedError).actionId,
      (denied as ToolDeniedError).reasons,
    ]).toEqual(['access_denied', 'Baton denied the tool payments:transfer (action tool-150)', 'tool-150', []]);
    expect(ran).toEqual([50]);
  });

  it('asks under the action given instead of the tool name, about the resource the arguments name', async () => {
    const ran: string[] = [];
    const send = guardTool('send_money', (args: Transfer & { account: string }) => void ran.push(args.account), {
      authorizer: payments,
      token: async () => token,
      action: 'payments:transfer',
      resource: (args) => ({ type: 'Account', id: args.account }),
    });
    await send({ amount: 10, currency: 'EUR', account: 'acct-7' });
    expect(ran).toEqual(['acct-7']);
    const unknownAction = guardTool('send_money', () => ran.push('never'), {
      authorizer: payments,
      token: () => token,
      resource: { type: 'Account', id: 'acct-1' },
    });
    await expect(unknownAction({ amount: 10, currency: 'EUR' })).rejects.toBeInstanceOf(ToolDeniedError);
    expect(ran).toEqual(['acct-7']);
  });

  it('guards a Vercel AI SDK tool through a generateText loop: the allowed call runs, the denied one comes back as a tool error', async () => {
    const ran: { amount: number; toolCallId: string }[] = [];
    const transfer = aiTool({
      description: 'Transfer money',
      inputSchema: z.object({ amount: z.number(), currency: z.string() }),
      execute: async ({ amount, currency }, { toolCallId }) => {
        ran.push({ amount, toolCallId });
        return `sent ${amount} ${currency}`;
      },
    });
    const guarded = guardAiSdkTool('payments:transfer', transfer, {
      authorizer: payments,
      token: () => token,
      resource: { type: 'Account', id: 'acct-1' },
      actionId: (args) => `ai-${args.amount}`,
    });
    expect([guarded.description, guarded.inputSchema]).toEqual([transfer.description, transfer.inputSchema]);

    // One model turn asking for the tool, one answering after it: the SDK's own tool loop runs the guard.
    const agentRun = async (amount: number) => {
      const model = new MockLanguageModelV3({
        doGenerate: [
          {
            content: [
              {
                type: 'tool-call',
                toolCallId: `call-${amount}`,
                toolName: 'transfer',
                input: JSON.stringify({ amount, currency: 'EUR' }),
              },
            ],
            finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
            usage,
            warnings: [],
          },
          {
            content: [{ type: 'text', text: 'done' }],
            finishReason: { unified: 'stop', raw: 'stop' },
            usage,
            warnings: [],
          },
        ],
      });
      const result = await generateText({
        model,
        tools: { transfer: guarded },
        stopWhen: stepCountIs(2),
        prompt: `send ${amount} EUR`,
      });
      return { result, model };
    };

    const allowed = await agentRun(50);
    expect(allowed.result.text).toBe('done');
    expect(allowed.result.steps[0]?.content.filter((part) => part.type.startsWith('tool-'))).toEqual([
      expect.objectContaining({ type: 'tool-call', toolCallId: 'call-50', toolName: 'transfer' }),
      expect.objectContaining({ type: 'tool-result', toolCallId: 'call-50', output: 'sent 50 EUR' }),
    ]);
    expect(ran).toEqual([{ amount: 50, toolCallId: 'call-50' }]);

    const denied = await agentRun(150);
    const errors = denied.result.steps[0]?.content.filter((part) => part.type === 'tool-error');
    expect(errors).toEqual([
      expect.objectContaining({
        type: 'tool-error',
        toolCallId: 'call-150',
        toolName: 'transfer',
        input: { amount: 150, currency: 'EUR' },
      }),
    ]);
    const error: unknown = errors?.[0]?.error;
    expect(error).toBeInstanceOf(ToolDeniedError);
    expect([
      (error as ToolDeniedError).code,
      (error as ToolDeniedError).tool,
      (error as ToolDeniedError).actionId,
      (error as ToolDeniedError).reasons,
      (error as ToolDeniedError).message,
    ]).toEqual([
      'access_denied',
      'payments:transfer',
      'ai-150',
      [],
      'Baton denied the tool payments:transfer (action ai-150)',
    ]);
    // The model's second turn sees the denial as the tool's error output, not a result.
    expect(denied.model.doGenerateCalls[1]?.prompt.at(-1)).toEqual({
      role: 'tool',
      content: [
        expect.objectContaining({
          type: 'tool-result',
          toolCallId: 'call-150',
          toolName: 'transfer',
          output: { type: 'error-text', value: 'Baton denied the tool payments:transfer (action ai-150)' },
        }),
      ],
    });
    expect(ran).toEqual([{ amount: 50, toolCallId: 'call-50' }]);
  });

  it('refuses to guard a Vercel AI SDK tool without execute', () => {
    const withoutExecute = aiTool({ description: 'no execute', inputSchema: z.object({}) });
    expect(() =>
      guardAiSdkTool('noop', withoutExecute, {
        authorizer: payments,
        token: () => token,
        resource: { type: 'Account', id: 'a' },
      }),
    ).toThrow(new BatonError('invalid_configuration', 'the tool noop has no execute to guard'));
  });

  it('guards a LangChain.js tool: same class, name, description and schema; the allowed call runs, the denied one throws before it', async () => {
    const ran: number[] = [];
    const schema = z.object({ amount: z.number(), currency: z.string() });
    const transfer = langChainTool(
      ({ amount, currency }) => {
        ran.push(amount);
        return `sent ${amount} ${currency}`;
      },
      { name: 'payments:transfer', description: 'Transfer money', schema },
    );
    const guarded = guardLangChainTool(transfer, {
      authorizer: payments,
      token: () => token,
      resource: { type: 'Account', id: 'acct-1' },
      actionId: (args) => `lc-${args.amount}`,
    });
    expect(guarded).toBeInstanceOf(StructuredTool);
    expect(guarded).toBeInstanceOf(DynamicStructuredTool);
    expect([guarded.name, guarded.description, guarded.schema]).toEqual([
      'payments:transfer',
      'Transfer money',
      schema,
    ]);

    expect(await guarded.invoke({ amount: 50, currency: 'EUR' })).toBe('sent 50 EUR');
    const denied: unknown = await guarded.invoke({ amount: 150, currency: 'EUR' }).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(ToolDeniedError);
    expect([
      (denied as ToolDeniedError).code,
      (denied as ToolDeniedError).tool,
      (denied as ToolDeniedError).actionId,
      (denied as ToolDeniedError).reasons,
      (denied as ToolDeniedError).message,
    ]).toEqual([
      'access_denied',
      'payments:transfer',
      'lc-150',
      [],
      'Baton denied the tool payments:transfer (action lc-150)',
    ]);
    expect(ran).toEqual([50]);

    // An agent's tool call: a ToolMessage answering its id, or the same denial.
    const message = await guarded.invoke({
      name: 'payments:transfer',
      args: { amount: 60, currency: 'EUR' },
      id: 'call-60',
      type: 'tool_call',
    });
    expect(message).toBeInstanceOf(ToolMessage);
    expect([message.content, message.tool_call_id, message.name]).toEqual([
      'sent 60 EUR',
      'call-60',
      'payments:transfer',
    ]);
    await expect(
      guarded.invoke({
        name: 'payments:transfer',
        args: { amount: 160, currency: 'EUR' },
        id: 'call-160',
        type: 'tool_call',
      }),
    ).rejects.toThrow(new ToolDeniedError('payments:transfer', 'lc-160', []));
    // The run config reaches the tool's function past the guard: an aborted call stops there.
    await expect(guarded.invoke({ amount: 70, currency: 'EUR' }, { signal: AbortSignal.abort() })).rejects.toThrow(
      'This operation was aborted',
    );
    // The original tool is left unguarded; input the schema refuses fails before the guard and the tool.
    expect(await transfer.invoke({ amount: 170, currency: 'EUR' })).toBe('sent 170 EUR');
    await expect(guarded.invoke({ amount: 'lots', currency: 'EUR' } as never)).rejects.toBeInstanceOf(
      ToolInputParsingException,
    );
    expect(ran).toEqual([50, 60, 170]);
  });

  it('refuses to guard a LangChain.js tool without func (a class implementing _call)', () => {
    class Ping extends StructuredTool {
      name = 'ping';
      description = 'Ping';
      schema = z.object({});
      protected _call(): Promise<string> {
        return Promise.resolve('pong');
      }
    }
    expect(() =>
      guardLangChainTool(new Ping(), {
        authorizer: payments,
        token: () => token,
        resource: { type: 'Account', id: 'a' },
      }),
    ).toThrow(new BatonError('invalid_configuration', 'the tool ping has no func to guard'));
  });
});
