import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/core/audit/chain.js';
import { createRefusalTally, type Refusal } from '../../src/core/audit/refusal-tally.js';

const start = Date.parse('2030-01-01T00:00:00.000Z');
const clock = (at = start) => ({
  at,
  now() {
    return this.at;
  },
});
const refusal = (source: string, extra: Partial<Refusal> = {}): Refusal => ({
  source,
  tenant: 'unknown',
  client: null,
  route: 'POST /oauth2/token',
  status: 400,
  code: 'invalid_request',
  description: 'content type must be application/x-www-form-urlencoded',
  requestId: null,
  ...extra,
});

describe('the refusal tally', () => {
  it('writes the first refusal of an interval at once and the count of the rest when it ends', () => {
    const time = clock();
    const tally = createRefusalTally({ clock: time, intervalSeconds: 60 });
    expect(tally.note(refusal('address 192.0.2.1', { requestId: 'r-1' }))).toEqual([
      {
        tenant: 'unknown',
        type: 'request.refusal',
        decision: 'refused',
        client: null,
        reason:
          'POST /oauth2/token from address 192.0.2.1: invalid_request (400): content type must be application/x-www-form-urlencoded',
        request_id: 'r-1',
      },
    ]);
    for (let i = 0; i < 99; i++) {
      time.at += 100;
      expect(tally.note(refusal('address 192.0.2.1', { description: `parameter p${i} is repeated` }))).toEqual([]);
    }
    time.at = start + 59_999;
    expect(tally.due()).toEqual([]);
    time.at = start + 60_000;
    expect(tally.due()).toEqual([
      {
        tenant: 'unknown',
        type: 'request.refusal',
        decision: 'refused',
        client: null,
        reason:
          'POST /oauth2/token from address 192.0.2.1: 99 more invalid_request (400) from 2030-01-01T00:00:00.000Z to 2030-01-01T00:01:00.000Z; the last: parameter p98 is repeated',
        request_id: null,
        // A summary stands for many requests: the trace of none.
        trace_id: null,
        span_id: null,
      },
    ]);
    expect(tally.due()).toEqual([]);
    // The next refusal opens a new interval and is written at once.
    expect(tally.note(refusal('address 192.0.2.1'))).toHaveLength(1);
  });

  it('summarizes an ended interval at the next refusal when no timer runs (Workers)', () => {
    const time = clock();
    const tally = createRefusalTally({ clock: time, intervalSeconds: 10 });
    tally.note(refusal('address 192.0.2.1'));
    tally.note(refusal('address 192.0.2.1'));
    tally.note(refusal('address 192.0.2.1'));
    time.at += 10_000;
    expect(tally.note(refusal('address 198.51.100.7')).map((e) => e.reason)).toEqual([
      'POST /oauth2/token from address 192.0.2.1: 2 more invalid_request (400) from 2030-01-01T00:00:00.000Z to 2030-01-01T00:00:10.000Z; the last: content type must be application/x-www-form-urlencoded',
      'POST /oauth2/token from address 198.51.100.7: invalid_request (400): content type must be application/x-www-form-urlencoded',
    ]);
  });

  it('counts each source, route and error apart, and writes open counts at shutdown', () => {
    const time = clock();
    const tally = createRefusalTally({ clock: time, intervalSeconds: 60 });
    const written = [
      refusal('client payments', { tenant: 'acme', client: 'payments' }),
      refusal('client payments', { tenant: 'acme', client: 'payments' }),
      refusal('address 192.0.2.1'),
      refusal('address 192.0.2.1', { status: 413, description: 'request body is larger than 65536 bytes' }),
      refusal('address 192.0.2.1', { route: 'POST /oauth2/revoke' }),
      refusal('address 192.0.2.1', {
        route: 'POST /oauth2/revoke',
        status: 401,
        code: 'invalid_client',
        description: 'client authentication is required',
      }),
    ].flatMap((r) => tally.note(r));
    expect(written.map((e) => [e.tenant, e.client, e.reason])).toEqual([
      [
        'acme',
        'payments',
        'POST /oauth2/token from client payments: invalid_request (400): content type must be application/x-www-form-urlencoded',
      ],
      [
        'unknown',
        null,
        'POST /oauth2/token from address 192.0.2.1: invalid_request (400): content type must be application/x-www-form-urlencoded',
      ],
      [
        'unknown',
        null,
        'POST /oauth2/token from address 192.0.2.1: invalid_request (413): request body is larger than 65536 bytes',
      ],
      [
        'unknown',
        null,
        'POST /oauth2/revoke from address 192.0.2.1: invalid_request (400): content type must be application/x-www-form-urlencoded',
      ],
      [
        'unknown',
        null,
        'POST /oauth2/revoke from address 192.0.2.1: invalid_client (401): client authentication is required',
      ],
    ]);
    time.at += 5_000;
    expect(tally.drain().map((e) => [e.tenant, e.client, e.reason])).toEqual([
      [
        'acme',
        'payments',
        'POST /oauth2/token from client payments: 1 more invalid_request (400) from 2030-01-01T00:00:00.000Z to 2030-01-01T00:00:05.000Z; the last: content type must be application/x-www-form-urlencoded',
      ],
    ]);
    expect(tally.drain()).toEqual([]);
  });

  it('counts sources beyond its cap together, so a flood from many addresses stays bounded', () => {
    const time = clock();
    const tally = createRefusalTally({ clock: time, intervalSeconds: 60, maxSources: 3 });
    const written = Array.from({ length: 1000 }, (_, i) =>
      tally.note(refusal(`address 10.0.${i >> 8}.${i & 255}`)),
    ).flat();
    expect(written.map((e) => e.reason)).toEqual([
      'POST /oauth2/token from address 10.0.0.0: invalid_request (400): content type must be application/x-www-form-urlencoded',
      'POST /oauth2/token from address 10.0.0.1: invalid_request (400): content type must be application/x-www-form-urlencoded',
      'POST /oauth2/token from address 10.0.0.2: invalid_request (400): content type must be application/x-www-form-urlencoded',
      'POST /oauth2/token from other sources: invalid_request (400): content type must be application/x-www-form-urlencoded',
    ]);
    time.at += 60_000;
    expect(tally.due().map((e) => e.reason)).toEqual([
      'POST /oauth2/token from other sources: 996 more invalid_request (400) from 2030-01-01T00:00:00.000Z to 2030-01-01T00:01:00.000Z; the last: content type must be application/x-www-form-urlencoded',
    ]);
    // The cap is per interval: the sources were forgotten with it.
    expect(tally.note(refusal('address 10.0.3.200')).map((e) => e.reason)).toEqual([
      'POST /oauth2/token from address 10.0.3.200: invalid_request (400): content type must be application/x-www-form-urlencoded',
    ]);
  });

  it('accounts for every refusal exactly, and writes at most two entries per key and interval (property-based)', () => {
    const step = fc.record({
      source: fc.integer({ min: 0, max: 5 }),
      code: fc.constantFrom('invalid_request', 'invalid_client'),
      wait: fc.integer({ min: 0, max: 4000 }),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 300 }), fc.integer({ min: 1, max: 5 }), (steps, maxSources) => {
        const time = clock();
        const tally = createRefusalTally({ clock: time, intervalSeconds: 10, maxSources });
        const written: AuditEvent[] = [];
        for (const s of steps) {
          time.at += s.wait;
          written.push(
            ...tally.note(refusal(`address 192.0.2.${s.source}`, { code: s.code })),
            ...(s.wait > 3000 ? tally.due() : []),
          );
        }
        written.push(...tally.drain());
        const counted = written.reduce((sum, e) => sum + Number(/: (\d+) more /.exec(e.reason ?? '')?.[1] ?? 1), 0);
        expect(counted).toBe(steps.length);
        const elapsedIntervals = Math.floor((time.at - start) / 10_000) + 1;
        const keys = 2 * Math.min(6, maxSources + 1);
        expect(written.length).toBeLessThanOrEqual(2 * keys * (elapsedIntervals + 1));
      }),
      { numRuns: 200 },
    );
  });
});
