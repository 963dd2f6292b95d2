import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoChain, startTestBaton, type TestBaton } from '../../../test/support/baton.js';
import {
  BatonError,
  guardAiSdkTool,
  guardTool,
  ToolDeniedError,
  type AiSdkTool,
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

  it('guards a Vercel AI SDK tool in its own shape, and refuses one without execute', async () => {
    const ran: number[] = [];
    const tool = {
      description: 'Transfer money',
      inputSchema: { type: 'object' },
      execute: async (args: Transfer) => {
        ran.push(args.amount);
        return { ok: true };
      },
    };
    const guarded = guardAiSdkTool('payments:transfer', tool, {
      authorizer: payments,
      token: () => token,
      resource: { type: 'Account', id: 'acct-1' },
    });
    expect(guarded.description).toBe('Transfer money');
    expect(guarded.inputSchema).toEqual({ type: 'object' });
    expect(await guarded.execute({ amount: 20, currency: 'EUR' })).toEqual({ ok: true });
    await expect(guarded.execute({ amount: 500, currency: 'EUR' })).rejects.toBeInstanceOf(ToolDeniedError);
    expect(ran).toEqual([20]);
    const withoutExecute: AiSdkTool & { description: string } = { description: 'no execute' };
    expect(() =>
      guardAiSdkTool('noop', withoutExecute, {
        authorizer: payments,
        token: () => token,
        resource: { type: 'Account', id: 'a' },
      }),
    ).toThrow(new BatonError('invalid_configuration', 'the tool noop has no execute to guard'));
  });
});
