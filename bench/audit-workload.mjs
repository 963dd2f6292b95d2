// The audit benchmark's log (bench/audit.mjs): a synthetic workload like the demo's delegation
// chains, and the bulk fill that brings the log to its full size with the same workload, chained
// with Baton's own functions.

import { Buffer } from 'node:buffer';
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { sha256Hex } from '../dist/adapters/node-hash.js';
import { auditEntry, canonicalEntry, entryHash } from '../dist/core/audit/chain.js';
import { progress, whole } from './harness.mjs';

/** Decisions per delegated token in the synthetic workload (see makeWorkload). */
const decisionsPerToken = 8;
/** Rows per bulk INSERT (one transaction each) while filling the log. */
const fillBatch = 10_000;

// ---------------------------------------------------------------------------------------------
// A synthetic but realistic workload: the demo's delegation chains, many of them.
//
// One session: the orchestrator exchanges a user's token (hop 1, tokens row with no parent), the
// payments sub-agent exchanges that (hop 2, parent = hop 1), then the payments API asks for
// `decisionsPerToken` decisions with the hop-2 token, each with its own action id. Every 5th
// session is globex's (one hop, ledger decisions); every 7th has a refused exchange as well; every
// 9th decision is a deny; half the chains carry a payment_initiation authorization detail. So each
// acme decision's trail is three entries: hop 1, hop 2 and the decision itself.

/** 22-character random ids like Baton's (16 random bytes, base64url), from a pool. */
function idSource() {
  let pool = Buffer.alloc(0);
  let offset = 0;
  return () => {
    if (offset + 16 > pool.length) {
      pool = randomBytes(16 * 4096);
      offset = 0;
    }
    offset += 16;
    return pool.toString('base64url', offset - 16, offset);
  };
}

/** An endless generator of `{ event, lineage?, actionId? }`: what Baton would append, session after session. */
export function makeWorkload() {
  const newId = idSource();
  const tokenLifetimeMs = 300_000;
  let session = 0;
  let decisionCount = 0;
  const paymentDetail = (n) => ({
    type: 'payment_initiation',
    actions: ['initiate', 'status'],
    instructedAmount: { currency: 'EUR', amount: `${(n % 100) + 1}.00` },
    creditorAccount: { iban: 'DE89370400440532013000' },
  });

  function* acmeSession(user, withDetails, now) {
    const t1 = newId();
    const t2 = newId();
    const details = withDetails ? [paymentDetail(session)] : [];
    const expiresAt = new Date(now + tokenLifetimeMs);
    yield {
      event: {
        tenant: 'acme',
        type: 'token.exchange',
        decision: 'granted',
        jti: t1,
        parent_jti: null,
        root_grant: t1,
        user,
        actor_chain: ['orchestrator'],
        client: 'agent-platform',
        audience: ['https://payments.example'],
        scope: ['payments:read', 'payments:transfer'],
        authorization_details: details,
        policy_ids: ['delegate-within-tenant'],
        request_id: randomUUID(),
      },
      lineage: {
        tenant: 'acme',
        jti: t1,
        parentJti: null,
        rootGrant: t1,
        subject: user,
        actor: 'orchestrator',
        clientId: 'agent-platform',
        expiresAt,
      },
    };
    yield {
      event: {
        tenant: 'acme',
        type: 'token.exchange',
        decision: 'granted',
        jti: t2,
        parent_jti: t1,
        root_grant: t1,
        user,
        actor_chain: ['payments-subagent', 'orchestrator'],
        client: 'agent-platform',
        audience: ['https://payments.example'],
        scope: ['payments:transfer'],
        authorization_details: details,
        policy_ids: ['delegate-within-tenant'],
        request_id: randomUUID(),
      },
      lineage: {
        tenant: 'acme',
        jti: t2,
        parentJti: t1,
        rootGrant: t1,
        subject: user,
        actor: 'payments-subagent',
        clientId: 'agent-platform',
        expiresAt,
      },
    };
    for (let i = 0; i < decisionsPerToken; i += 1) {
      decisionCount += 1;
      const allow = decisionCount % 9 !== 0;
      const actionId = newId();
      yield {
        actionId,
        event: {
          tenant: 'acme',
          type: 'decision',
          decision: allow ? 'allow' : 'deny',
          action_id: actionId,
          jti: t2,
          user,
          actor_chain: ['payments-subagent', 'orchestrator'],
          client: 'payments',
          audience: ['https://payments.example'],
          scope: ['payments:transfer'],
          authorization_details: details.length > 0 ? [details[0]] : [],
          policy_ids: allow ? ['transfer-up-to-100'] : [],
          reason: `payments:transfer on Account::acct-${(decisionCount * 7919) % 100_000}`,
          request_id: randomUUID(),
          trace_id: randomUUID().replaceAll('-', ''),
        },
      };
    }
  }

  function* globexSession(user, now) {
    const t1 = newId();
    yield {
      event: {
        tenant: 'globex',
        type: 'token.exchange',
        decision: 'granted',
        jti: t1,
        parent_jti: null,
        root_grant: t1,
        user,
        actor_chain: ['globex-assistant'],
        client: 'globex-platform',
        audience: ['https://ledger.globex.example'],
        scope: ['ledger:read'],
        policy_ids: ['delegate-within-tenant'],
        request_id: randomUUID(),
      },
      lineage: {
        tenant: 'globex',
        jti: t1,
        parentJti: null,
        rootGrant: t1,
        subject: user,
        actor: 'globex-assistant',
        clientId: 'globex-platform',
        expiresAt: new Date(now + tokenLifetimeMs),
      },
    };
    for (let i = 0; i < decisionsPerToken; i += 1) {
      yield {
        event: {
          tenant: 'globex',
          type: 'decision',
          decision: 'allow',
          action_id: newId(),
          jti: t1,
          user,
          actor_chain: ['globex-assistant'],
          client: 'ledger',
          audience: ['https://ledger.globex.example'],
          scope: ['ledger:read'],
          policy_ids: ['read-ledger'],
          reason: `ledger:read on Ledger::l-${i}`,
          request_id: randomUUID(),
        },
      };
    }
  }

  return (function* () {
    for (;;) {
      session += 1;
      const now = Date.now();
      const user = `user-${String((session * 104_729) % 50_000).padStart(5, '0')}`;
      if (session % 7 === 0) {
        yield {
          event: {
            tenant: 'acme',
            type: 'token.exchange',
            decision: 'refused',
            client: 'agent-platform',
            user,
            reason: 'invalid_grant: subject_token has expired',
            request_id: randomUUID(),
          },
        };
      }
      if (session % 5 === 0) yield* globexSession(user, now);
      else yield* acmeSession(user, session % 2 === 0, now);
    }
  })();
}

/** Keeps a uniform sample of the acme action ids seen (reservoir sampling). */
export function actionSampler(size) {
  const sample = [];
  let seen = 0;
  return {
    sample,
    offer(actionId) {
      seen += 1;
      if (sample.length < size) sample.push(actionId);
      else {
        const j = Math.floor(Math.random() * seen);
        if (j < size) sample[j] = actionId;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Filling the log: rows chained in JS with Baton's own functions, bulk-inserted.

/** audit_log's columns as the writer (createAuditWriter) fills them: SQL type, value. */
const auditColumns = {
  seq: ['bigint', (r) => r.seq],
  tenant: ['text', (r) => r.entry.tenant],
  type: ['text', (r) => r.entry.type],
  action_id: ['text', (r) => r.entry.action_id],
  jti: ['text', (r) => r.entry.jti],
  root_grant: ['text', (r) => r.entry.root_grant],
  recorded_at: ['timestamptz', (r) => r.recordedAt],
  canonical: ['text', (r) => r.canonical],
  prev_hash: ['text', (r) => r.prevHash],
  hash: ['text', (r) => r.hash],
};

/**
 * Brings the log to `total` entries: the workload's next entries chained in JS (auditEntry,
 * canonicalEntry, entryHash) from `audit_head`, inserted 10,000 per transaction with their tokens
 * rows and the moved head. Resolves with `{ inserted, elapsed }`.
 */
export async function fillLog(raw, workload, sampler, total) {
  const [head] = await raw`SELECT seq, hash FROM audit_head WHERE id = 1`;
  let seq = Number(head.seq);
  let prev = head.hash;
  const toInsert = total - seq;
  if (toInsert <= 0) return { inserted: 0, elapsed: 0 };
  progress(`fill: ${whole(toInsert)} entries in batches of ${whole(fillBatch)} (from seq ${seq + 1})`);

  // The columns are read from the table, so a column the writer fills and this bench does not know
  // stops the run instead of being left empty.
  const present = (
    await raw`SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'audit_log' ORDER BY ordinal_position`
  ).map((r) => r.column_name);
  const unknown = present.filter((name) => !(name in auditColumns));
  if (unknown.length > 0)
    throw new Error(
      `audit_log has columns this bench does not fill: ${unknown.join(', ')}; update auditColumns in bench/audit-workload.mjs`,
    );
  const columns = present.map((name) => [name, ...auditColumns[name]]);
  const insertAudit = `
    INSERT INTO audit_log (${present.join(', ')})
    SELECT ${present.join(', ')} FROM json_to_recordset($1::text::json) AS r(${columns.map(([name, type]) => `${name} ${type}`).join(', ')})`;

  // Each batch goes to PostgreSQL as two JSON parameters (json_to_recordset): the writer's
  // INSERT ... unnest(text[]) makes postgres.js escape every quote of every canonical entry into
  // an array literal, which costs more CPU here than canonicalizing and hashing the entry.
  const build = (n) => {
    const time = new Date();
    const iso = time.toISOString();
    const rows = [];
    const tokens = [];
    for (let i = 0; i < n; i += 1) {
      const { value } = workload.next();
      if (value.actionId !== undefined) sampler.offer(value.actionId);
      seq += 1;
      const entry = auditEntry(value.event, time);
      const canonical = canonicalEntry(entry);
      const hash = entryHash(sha256Hex, seq, prev, canonical);
      const row = {};
      for (const [name, , value] of columns)
        row[name] = value({ seq, entry, recordedAt: iso, canonical, prevHash: prev, hash });
      rows.push(row);
      prev = hash;
      const l = value.lineage;
      if (l !== undefined) {
        tokens.push({
          tenant: l.tenant,
          jti: l.jti,
          parent_jti: l.parentJti,
          root_grant: l.rootGrant,
          subject: l.subject,
          actor: l.actor,
          client_id: l.clientId,
          expires_at: l.expiresAt.toISOString(),
        });
      }
    }
    return {
      count: n,
      rows: JSON.stringify(rows),
      tokens: tokens.length === 0 ? undefined : JSON.stringify(tokens),
      lastSeq: seq,
      lastHash: prev,
    };
  };
  // One transaction per batch, the head moved with it, so the chain is whole after every commit.
  const insert = ({ count, rows, tokens, lastSeq, lastHash }) =>
    raw.begin(async (tx) => {
      if (tokens !== undefined) {
        await tx`
          INSERT INTO tokens (tenant, jti, parent_jti, root_grant, subject, actor, client_id, expires_at)
          SELECT tenant, jti, parent_jti, root_grant, subject, actor, client_id, expires_at FROM json_to_recordset(${tokens}::text::json)
            AS t(tenant text, jti text, parent_jti text, root_grant text, subject text, actor text, client_id text, expires_at timestamptz)`;
      }
      await tx.unsafe(insertAudit, [rows]);
      const [moved] =
        await tx`UPDATE audit_head SET seq = ${lastSeq}, hash = ${lastHash} WHERE id = 1 AND seq = ${lastSeq - count} RETURNING seq`;
      if (moved === undefined) throw new Error('audit head moved during the fill');
    });

  const started = performance.now();
  let inFlight = Promise.resolve();
  let done = 0;
  let reported = started;
  // The next batch is built (hashing, canonical JSON) while the previous one is being inserted.
  while (done < toInsert) {
    const batch = build(Math.min(fillBatch, toInsert - done));
    await inFlight;
    inFlight = insert(batch);
    done += batch.count;
    if (performance.now() - reported > 10_000) {
      reported = performance.now();
      progress(`fill: ${whole(done)} of ${whole(toInsert)}`);
    }
  }
  await inFlight;
  return { inserted: toInsert, elapsed: performance.now() - started };
}
