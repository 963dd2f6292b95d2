import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import {
  auditEntry,
  canonicalEntry,
  canonicalJson,
  chainCheck,
  entryHash,
  genesisHash,
  isCanonicalEntry,
  type AuditEntry,
  type AuditEvent,
  type ChainLine,
  type ChainVerdict,
} from '../../src/core/audit/chain.js';
import { verifyExport } from '../../src/cli/audit-verify.js';

/** The verdict on a whole chain from the genesis hash, checked in one go. */
function verifyChain(sha256: (text: string) => string, lines: Iterable<ChainLine>): ChainVerdict {
  const check = chainCheck(sha256);
  check.add(lines);
  return check.verdict();
}

describe('RFC 8785 canonicalization', () => {
  it('matches the RFC §3.2.2 example', () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    );
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts properties by UTF-16 code units (RFC §3.2.3)', () => {
    const input = JSON.parse(
      '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control", "\\u00f6": "Latin Small Letter O With Diaeresis"}',
    );
    expect(canonicalJson(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","😀":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it.each([
    [0, '0'],
    [-0, '0'],
    [5e-324, '5e-324'],
    [1e21, '1e+21'],
    [1e23, '1e+23'],
    [9007199254740992, '9007199254740992'],
    [0.000001, '0.000001'],
    [1e-7, '1e-7'],
    [-1.7976931348623157e308, '-1.7976931348623157e+308'],
    [295147905179352830000, '295147905179352830000'],
  ])('serializes the number %s as %s (RFC Appendix B)', (value, text) => {
    expect(canonicalJson(value)).toBe(text);
  });
});

describe('canonical entries', () => {
  const text = fc.string({ unit: 'binary', maxLength: 12 });
  const nullable = fc.option(text, { nil: null });
  const event: fc.Arbitrary<AuditEvent> = fc.record(
    {
      tenant: text,
      type: fc.constantFrom('token.exchange', 'decision', 'authorization.consent', 'policy.reload'),
      decision: fc.constantFrom('granted', 'refused', 'allow', 'deny', 'applied'),
      action_id: nullable,
      jti: nullable,
      parent_jti: nullable,
      root_grant: nullable,
      user: nullable,
      actor_chain: fc.array(text, { maxLength: 3 }),
      client: nullable,
      audience: fc.array(text, { maxLength: 3 }),
      scope: fc.array(text, { maxLength: 3 }),
      authorization_details: fc.array(
        fc
          .dictionary(text, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })
          .map((d) => ({ ...d, type: 'payment_initiation' })),
        { maxLength: 2 },
      ),
      policy_ids: fc.array(text, { maxLength: 3 }),
      reason: nullable,
      request_id: nullable,
      trace_id: nullable,
      span_id: nullable,
    },
    { requiredKeys: ['tenant', 'type', 'decision'] },
  ) as fc.Arbitrary<AuditEvent>;

  it('writes exactly what the general RFC 8785 serializer writes, for any event', () => {
    fc.assert(
      fc.property(
        event,
        fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }),
        (e, time) => {
          const entry = auditEntry(e, time);
          expect(canonicalEntry(entry)).toBe(canonicalJson(entry));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('takes the general path for anything not of the entry shape, as parsed from an edited export', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 20 }),
        (value) => {
          expect(canonicalEntry(value as unknown as AuditEntry)).toBe(canonicalJson(value));
        },
      ),
      { numRuns: 300 },
    );
    const entry = auditEntry(
      { tenant: 'acme', type: 'decision', decision: 'allow' },
      new Date('2026-11-24T00:00:00.000Z'),
    ) as unknown as Record<string, unknown>;
    const { user: _user, ...missing } = entry;
    const odd = [{ ...entry, extra: 1 }, missing, { ...entry, scope: [{ b: 1, a: 2 }] }, { ...entry, user: 5 }];
    expect(odd.map((v) => canonicalEntry(v as unknown as AuditEntry))).toEqual(odd.map((v) => canonicalJson(v)));
  });

  it('tells an entry in canonical form from one that is not', () => {
    const canonical = canonicalEntry(
      auditEntry(
        { tenant: 'acme', type: 'decision', decision: 'allow', scope: ['a'] },
        new Date('2026-11-24T00:00:00.000Z'),
      ),
    );
    expect(isCanonicalEntry(canonical)).toBe(true);
    expect(
      [
        ` ${canonical}`,
        canonical.replace('"scope":["a"]', '"scope":[ "a"]'),
        canonical.replace('{"action_id":null,', '{') + '',
        canonical.slice(0, -1),
        '{"b":1,"a":2}',
        'not json',
      ].map(isCanonicalEntry),
    ).toEqual([false, false, true, false, false, false]);
  });
});

describe('the hash chain', () => {
  const time = new Date('2026-11-24T00:00:00.000Z');
  async function chain(n: number): Promise<ChainLine[]> {
    const lines: ChainLine[] = [];
    let prev = genesisHash;
    for (let seq = 1; seq <= n; seq++) {
      const canonical = canonicalEntry(
        auditEntry({ tenant: 'acme', type: 'decision', decision: 'allow', action_id: `a${seq}` }, time),
      );
      const hash = await entryHash(sha256Hex, seq, prev, canonical);
      lines.push({ seq, prev_hash: prev, hash, canonical });
      prev = hash;
    }
    return lines;
  }

  it('hashes a domain-separated string of seq, previous hash and canonical entry', async () => {
    const canonical = canonicalEntry(auditEntry({ tenant: 'acme', type: 'decision', decision: 'deny' }, time));
    expect(canonical).toBe(
      '{"action_id":null,"actor_chain":[],"audience":[],"authorization_details":[],"client":null,"decision":"deny","jti":null,"parent_jti":null,"policy_digest":null,"policy_ids":[],"reason":null,"request_id":null,"root_grant":null,"scope":[],"span_id":null,"tenant":"acme","time":"2026-11-24T00:00:00.000Z","trace_id":null,"type":"decision","user":null}',
    );
    expect(await entryHash(sha256Hex, 1, genesisHash, canonical)).toBe(
      sha256Hex(`baton.audit.v1\n1\n${genesisHash}\n${canonical}`),
    );
  });

  it('verifies an intact chain and names the first bad entry', async () => {
    const lines = await chain(5);
    expect(await verifyChain(sha256Hex, lines)).toEqual({ valid: true, entries: 5 });
    const edited = lines.map((l) =>
      l.seq === 3 ? { ...l, canonical: (l.canonical as string).replace('"a3"', '"zz"') } : l,
    );
    expect(await verifyChain(sha256Hex, edited)).toEqual({
      valid: false,
      entries: 2,
      seq: 3,
      reason: 'hash does not match its content',
    });
    expect(
      await verifyChain(
        sha256Hex,
        lines.filter((l) => l.seq !== 4),
      ),
    ).toEqual({ valid: false, entries: 3, seq: 4, reason: 'entries 4–4 are missing' });
    const relinked = lines.map((l) => (l.seq === 2 ? { ...l, prev_hash: 'f'.repeat(64) } : l));
    expect(await verifyChain(sha256Hex, relinked)).toEqual({
      valid: false,
      entries: 1,
      seq: 2,
      reason: 'does not link to the previous entry',
    });
    const reformatted = lines.map((l) => (l.seq === 1 ? { ...l, canonical: ` ${l.canonical as string}` } : l));
    expect(await verifyChain(sha256Hex, reformatted)).toEqual({
      valid: false,
      entries: 0,
      seq: 1,
      reason: 'is not in canonical form',
    });
  });

  it('names an entry that is not JSON as not in canonical form rather than failing', async () => {
    const lines = (await chain(3)).map((l) => (l.seq === 2 ? { ...l, canonical: '{"tenant":' } : l));
    expect(await verifyChain(sha256Hex, lines)).toEqual({
      valid: false,
      entries: 1,
      seq: 2,
      reason: 'is not in canonical form',
    });
  });

  it('checks a chain fed page by page, and keeps the first failure', async () => {
    const lines = await chain(7);
    const check = chainCheck(sha256Hex, { seq: 0, hash: genesisHash }, false);
    expect(await check.add(lines.slice(0, 3))).toBe(true);
    expect(check.verdict()).toEqual({ valid: true, entries: 3 });
    const edited = lines
      .slice(3)
      .map((l) => (l.seq === 5 ? { ...l, hash: l.hash.replace(/^./, (c) => (c === '0' ? '1' : '0')) } : l));
    expect(await check.add(edited)).toBe(false);
    expect(await check.add(lines.slice(0, 1))).toBe(false);
    // Entry 5's stored hash no longer matches its content; 6 then fails to link, but 5 is named.
    expect(check.verdict()).toEqual({ valid: false, entries: 4, seq: 5, reason: 'hash does not match its content' });
    const fromMiddle = chainCheck(sha256Hex, { seq: 3, hash: (lines[2] as ChainLine).hash });
    expect(await fromMiddle.add(lines.slice(4))).toBe(false);
    expect(fromMiddle.verdict()).toEqual({ valid: false, entries: 0, seq: 4, reason: 'entries 4–4 are missing' });
  });

  it('checks redacted lines for linkage only', async () => {
    const lines = (await chain(3)).map((l) => (l.seq === 2 ? { seq: l.seq, prev_hash: l.prev_hash, hash: l.hash } : l));
    expect(await verifyChain(sha256Hex, lines)).toEqual({ valid: true, entries: 3 });
  });
});

describe('entries written before policy_digest existed', () => {
  const time = new Date('2026-11-24T00:00:00.000Z');
  /** An entry as Baton wrote it before the field existed: the same shape without policy_digest. */
  const oldCanonical = (event: AuditEvent): string => {
    const { policy_digest: _dropped, ...old } = auditEntry(event, time);
    return canonicalJson(old);
  };
  function mixedLog(): ChainLine[] {
    const canonicals = [
      oldCanonical({ tenant: 'acme', type: 'decision', decision: 'allow', policy_ids: ['transfer-up-to-100'] }),
      oldCanonical({ tenant: '*', type: 'policy.reload', decision: 'applied', client: 'SIGHUP' }),
      canonicalEntry(
        auditEntry({ tenant: 'acme', type: 'decision', decision: 'allow', policy_digest: 'a'.repeat(64) }, time),
      ),
      canonicalEntry(auditEntry({ tenant: 'acme', type: 'token.client_credentials', decision: 'granted' }, time)),
    ];
    let prev = genesisHash;
    return canonicals.map((canonical, index) => {
      const hash = entryHash(sha256Hex, index + 1, prev, canonical);
      const line = { seq: index + 1, prev_hash: prev, hash, canonical };
      prev = hash;
      return line;
    });
  }

  it('keep their canonical form, so a log with entries before and after verifies', () => {
    const lines = mixedLog();
    expect(lines.map((l) => 'policy_digest' in (JSON.parse(l.canonical as string) as object))).toEqual([
      false,
      false,
      true,
      true,
    ]);
    expect(lines.map((l) => isCanonicalEntry(l.canonical as string))).toEqual([true, true, true, true]);
    expect(verifyChain(sha256Hex, lines)).toEqual({ valid: true, entries: 4 });
  });

  it('verify offline with the CLI, and a tampered digest does not', async () => {
    const lines = mixedLog();
    const text = (ls: ChainLine[]) => `${ls.map((l) => JSON.stringify(l)).join('\n')}\n`;
    expect(await verifyExport(text(lines), { keys: [] }, sha256Hex)).toEqual({
      ok: true,
      message: '4 entries valid (4 whole, 0 redacted), 0 checkpoints valid',
    });
    const tampered = lines.map((l) =>
      l.seq === 3 ? { ...l, canonical: (l.canonical as string).replace('"aaaa', '"baaa') } : l,
    );
    expect(await verifyExport(text(tampered), { keys: [] }, sha256Hex)).toEqual({
      ok: false,
      message: 'entry 3: hash does not match its content',
    });
    // An old entry given a digest it never had is caught as well.
    const added = lines.map((l) =>
      l.seq === 1
        ? { ...l, canonical: (l.canonical as string).replace('"policy_ids"', '"policy_digest":null,"policy_ids"') }
        : l,
    );
    expect(await verifyExport(text(added), { keys: [] }, sha256Hex)).toEqual({
      ok: false,
      message: 'entry 1: hash does not match its content',
    });
  });
});

describe('entries written before span_id existed', () => {
  // Written and hashed by Baton before span_id was added (commit f2d99f4): its stored canonical text and hash.
  const before = {
    seq: 1,
    prev_hash: genesisHash,
    hash: '7f870cbb00e4edaa0920a6314b4234320a15bb065e291d3e6ad4af8d4dd73883',
    canonical:
      '{"action_id":"act-7","actor_chain":["orchestrator"],"audience":["payments"],"authorization_details":[],"client":"agent-platform","decision":"granted","jti":"j-1","parent_jti":null,"policy_digest":null,"policy_ids":["p1"],"reason":null,"request_id":"req-old-1","root_grant":"g-1","scope":["payments:read"],"tenant":"acme","time":"2026-11-24T00:00:00.000Z","trace_id":null,"type":"token.exchange","user":"alice"}',
  } satisfies ChainLine;
  const time = new Date('2026-11-24T00:00:01.000Z');
  function mixedLog(): ChainLine[] {
    const lines: ChainLine[] = [before];
    for (const event of [
      { tenant: 'acme', type: 'decision', decision: 'allow', trace_id: 'a'.repeat(32), span_id: 'b'.repeat(16) },
      { tenant: '*', type: 'registry.sweep', decision: 'applied' },
    ] satisfies AuditEvent[]) {
      const prev = lines.at(-1) as ChainLine;
      const canonical = canonicalEntry(auditEntry(event, time));
      const seq = prev.seq + 1;
      lines.push({ seq, prev_hash: prev.hash, hash: entryHash(sha256Hex, seq, prev.hash, canonical), canonical });
    }
    return lines;
  }

  it('hash exactly as before, and stay canonical without the field', () => {
    expect(entryHash(sha256Hex, 1, genesisHash, before.canonical)).toBe(before.hash);
    expect(isCanonicalEntry(before.canonical)).toBe(true);
    // Re-read and re-canonicalized, an old entry gains no span_id.
    expect(canonicalEntry(JSON.parse(before.canonical) as AuditEntry)).toBe(before.canonical);
  });

  it('verify in one log with new entries, which always carry span_id', async () => {
    const lines = mixedLog();
    expect(lines.map((l) => (JSON.parse(l.canonical as string) as Record<string, unknown>).span_id)).toEqual([
      undefined,
      'b'.repeat(16),
      null,
    ]);
    expect(verifyChain(sha256Hex, lines)).toEqual({ valid: true, entries: 3 });
    const text = (ls: ChainLine[]) => `${ls.map((l) => JSON.stringify(l)).join('\n')}\n`;
    expect(await verifyExport(text(lines), { keys: [] }, sha256Hex)).toEqual({
      ok: true,
      message: '3 entries valid (3 whole, 0 redacted), 0 checkpoints valid',
    });
    // An old entry given a span_id it never had no longer matches its hash.
    const added = lines.map((l) =>
      l.seq === 1 ? { ...l, canonical: before.canonical.replace('"tenant"', '"span_id":null,"tenant"') } : l,
    );
    expect(await verifyExport(text(added), { keys: [] }, sha256Hex)).toEqual({
      ok: false,
      message: 'entry 1: hash does not match its content',
    });
  });
});
