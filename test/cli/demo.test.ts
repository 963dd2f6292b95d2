import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '../../src/cli/demo.js';
import { startTestBaton, type TestBaton } from '../support/baton.js';

let baton: TestBaton;
beforeAll(async () => {
  baton = await startTestBaton();
});
afterAll(async () => {
  await baton?.close();
});

describe('npm run demo', () => {
  it('walks alice → orchestrator → payments-subagent and prints each token', async () => {
    const lines: string[] = [];
    await runDemo(baton.url, (line) => lines.push(line));
    const out = lines.join('\n');
    expect(out).toContain(
      '"act": {\n    "sub": "payments-subagent",\n    "act": {\n      "sub": "orchestrator"\n    }\n  }',
    );
    expect(out).toContain('Both Baton tokens verify against');
  });
});
