import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { auditEntry, type AuditEvent } from '../../src/core/audit/chain.js';
import { batonVersion, ocsfOfLine, ocsfPlacement, ocsfPlacements, toOcsf } from '../../src/core/audit/ocsf.js';
import { ocsfErrors } from '../support/ocsf.js';

/** The entry types chain.ts declares: the quoted members of its AuditType union. */
function declaredTypes(): string[] {
  const source = readFileSync(new URL('../../src/core/audit/chain.ts', import.meta.url), 'utf8');
  const union = /export type AuditType =([\s\S]*?);\n/.exec(source)?.[1] ?? '';
  return [...union.matchAll(/^\s*\|\s*'([^']+)'/gm)].map((m) => m[1] as string);
}

const time = new Date('2026-12-01T10:00:00.123Z');
const record = (event: AuditEvent, seq = 7) => ({
  seq,
  hash: 'a'.repeat(64),
  prev_hash: 'b'.repeat(64),
  entry: auditEntry(event, time),
});

describe('OCSF mapping', () => {
  it('places every entry type chain.ts declares, and token requests of any grant', () => {
    const types = declaredTypes();
    expect(types.length).toBeGreaterThanOrEqual(16);
    for (const type of types) expect(Object.keys(ocsfPlacements), type).toContain(type);
    expect(ocsfPlacement('token.exchange')).toEqual(ocsfPlacements['token.*']);
    expect(ocsfPlacement('token.some_future_grant')).toMatchObject({ classUid: 6003, activityId: 1 });
    expect(ocsfPlacement('token.revocation')).toMatchObject({ classUid: 3004, activityId: 4 });
    expect(ocsfPlacement('constructor')).toMatchObject({ classUid: 6003, activityId: 99, activityName: 'Other' });
  });

  it('states the version package.json has', () => {
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(batonVersion).toBe(manifest.version);
  });

  const full: Omit<AuditEvent, 'type' | 'decision'> = {
    tenant: 'acme',
    action_id: 'order-9',
    jti: 'jti-2',
    parent_jti: 'jti-1',
    root_grant: 'jti-1',
    user: 'alice',
    actor_chain: ['payments-subagent', 'orchestrator'],
    client: 'payments',
    audience: ['https://payments.example'],
    scope: ['payments:transfer'],
    policy_ids: ['transfer-up-to-100'],
    policy_digest: 'c'.repeat(64),
    reason: 'because',
    request_id: 'req-1',
  };
  const cases: [string, AuditEvent['decision'], Omit<AuditEvent, 'type' | 'decision'>][] = [
    ...[
      ...declaredTypes(),
      'token.revocation',
      'token.introspection',
      'token.exchange',
      'token.refresh',
      'token.request',
    ].flatMap((type): [string, AuditEvent['decision'], Omit<AuditEvent, 'type' | 'decision'>][] => [
      [type, 'granted', full],
      [type, 'refused', { tenant: 'acme' }],
    ]),
    ['decision', 'allow', full],
    ['decision', 'deny', { ...full, policy_ids: [] }],
  ];
  it.each(cases)('maps %s (%s) to an event its OCSF class schema accepts', (type, decision, fields) => {
    const event = toOcsf(record({ ...fields, type: type as AuditEvent['type'], decision }));
    expect(ocsfErrors(event)).toEqual([]);
    const placement = ocsfPlacement(type);
    expect(event).toMatchObject({
      class_uid: placement.classUid,
      activity_id: placement.activityId,
      type_uid: placement.classUid * 100 + placement.activityId,
      time: time.getTime(),
      status_id: decision === 'refused' || decision === 'deny' ? 2 : 1,
      metadata: { version: '1.8.0', sequence: 7, uid: 'a'.repeat(64), event_code: type },
    });
  });

  it('maps an entry written before policy_digest existed, which lacks the field', () => {
    const { policy_digest: _absent, ...old } = auditEntry({ ...full, type: 'decision', decision: 'allow' }, time);
    const event = toOcsf({ seq: 3, hash: 'd'.repeat(64), prev_hash: 'e'.repeat(64), entry: old });
    expect(ocsfErrors(event)).toEqual([]);
    expect((event.unmapped as { baton: Record<string, unknown> }).baton.policy_digest).toBeNull();
  });

  it('maps a stored line whose text is not JSON (tampered) as an entry of unknown type, with its sequence number and hash', () => {
    const event = ocsfOfLine({ seq: 12, hash: 'f'.repeat(64), prev_hash: 'e'.repeat(64), canonical: '{"type":' });
    expect(ocsfErrors(event)).toEqual([]);
    expect(event).toMatchObject({
      class_uid: 6003,
      activity_id: 99,
      time: 0,
      metadata: { sequence: 12, uid: 'f'.repeat(64), event_code: 'unknown' },
    });
  });

  it('is refused by the schema when a required attribute is missing or a value is off the enum', () => {
    const event = toOcsf(record({ ...full, type: 'decision', decision: 'allow' }));
    const { api: _api, ...noApi } = event;
    expect(ocsfErrors(noApi)).toContain('#: Instance does not have required property "api".');
    expect(ocsfErrors({ ...event, status_id: 5 }).length).toBeGreaterThan(0);
    expect(ocsfErrors({ ...event, type_uid: 300401 }).length).toBeGreaterThan(0);
    expect(ocsfErrors({ ...event, invented: 1 }).length).toBeGreaterThan(0);
  });
});
