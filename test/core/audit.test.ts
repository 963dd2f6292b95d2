import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/adapters/node-hash.js';
import { auditEntry, canonicalEntry, canonicalJson, entryHash, genesisHash, verifyChain, type ChainLine } from '../../src/core/audit.js';

describe('RFC 8785 canonicalization', () => {
  it('matches the RFC §3.2.2 example', () => {
    const input = JSON.parse('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}');
    expect(canonicalJson(input)).toBe('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
  });

  it('sorts properties by UTF-16 code units (RFC §3.2.3)', () => {
    const input = JSON.parse('{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control", "\\u00f6": "Latin Small Letter O With Diaeresis"}');
    expect(canonicalJson(input)).toBe('{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","😀":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}');
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

describe('the hash chain', () => {
  const time = new Date('2026-11-24T00:00:00.000Z');
  async function chain(n: number): Promise<ChainLine[]> {
    const lines: ChainLine[] = [];
    let prev = genesisHash;
    for (let seq = 1; seq <= n; seq++) {
      const canonical = canonicalEntry(auditEntry({ tenant: 'acme', type: 'decision', decision: 'allow', action_id: `a${seq}` }, time));
      const hash = await entryHash(sha256Hex, seq, prev, canonical);
      lines.push({ seq, prev_hash: prev, hash, canonical });
      prev = hash;
    }
    return lines;
  }

  it('hashes a domain-separated string of seq, previous hash and canonical entry', async () => {
    const canonical = canonicalEntry(auditEntry({ tenant: 'acme', type: 'decision', decision: 'deny' }, time));
    expect(canonical).toBe(
      '{"action_id":null,"actor_chain":[],"audience":[],"authorization_details":[],"client":null,"decision":"deny","jti":null,"parent_jti":null,"policy_ids":[],"reason":null,"request_id":null,"root_grant":null,"scope":[],"tenant":"acme","time":"2026-11-24T00:00:00.000Z","trace_id":null,"type":"decision","user":null}',
    );
    expect(await entryHash(sha256Hex, 1, genesisHash, canonical)).toBe(sha256Hex(`baton.audit.v1\n1\n${genesisHash}\n${canonical}`));
  });

  it('verifies an intact chain and names the first bad entry', async () => {
    const lines = await chain(5);
    expect(await verifyChain(sha256Hex, lines)).toEqual({ valid: true, entries: 5 });
    const edited = lines.map((l) => (l.seq === 3 ? { ...l, canonical: (l.canonical as string).replace('"a3"', '"zz"') } : l));
    expect(await verifyChain(sha256Hex, edited)).toEqual({ valid: false, entries: 2, seq: 3, reason: 'hash does not match its content' });
    expect(await verifyChain(sha256Hex, lines.filter((l) => l.seq !== 4))).toEqual({ valid: false, entries: 3, seq: 4, reason: 'entries 4–4 are missing' });
    const relinked = lines.map((l) => (l.seq === 2 ? { ...l, prev_hash: 'f'.repeat(64) } : l));
    expect(await verifyChain(sha256Hex, relinked)).toEqual({ valid: false, entries: 1, seq: 2, reason: 'does not link to the previous entry' });
    const reformatted = lines.map((l) => (l.seq === 1 ? { ...l, canonical: ` ${l.canonical as string}` } : l));
    expect(await verifyChain(sha256Hex, reformatted)).toEqual({ valid: false, entries: 0, seq: 1, reason: 'is not in canonical form' });
  });

  it('checks redacted lines for linkage only', async () => {
    const lines = (await chain(3)).map((l) => (l.seq === 2 ? { seq: l.seq, prev_hash: l.prev_hash, hash: l.hash } : l));
    expect(await verifyChain(sha256Hex, lines)).toEqual({ valid: true, entries: 3 });
  });
});
