import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintAgentAssertion, mintUserToken } from '../../src/cli/demo-kit.js';
import {
  basic,
  demoChain,
  exchangeHop,
  grants,
  postJson,
  postToken,
  startTestBaton,
  tokenTypes,
  type PostResult,
  type TestBaton,
} from '../support/baton.js';
import { upstreamToken } from '../support/forge.js';

// Hostile input at every endpoint, generated from a fixed seed: NUL, unpaired surrogates, names
// that are members of every JavaScript object, numbers JSON cannot carry, arrays and objects
// where strings belong, deep nesting. No answer may be a 5xx, nothing may be logged as an error,
// and well-formed requests running at the same time (sharing audit batches) must all succeed.
let baton: TestBaton;
beforeAll(async () => {
  baton = await startTestBaton({ BATON_RATE_LIMIT: '0' });
});
afterAll(async () => {
  await baton?.close();
});

const seed = 150_015;
const consoleRedirect = 'http://localhost:3000/console/callback';

/** Strings a caller should never get a 5xx for. */
const hostileText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '\u0000',
    'a\u0000b',
    '\uD800',
    'x\uDC00y',
    '\uDE80\uD83D',
    '\uD83D\uDE80',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    'valueOf',
    '1e400',
    '-1e400',
    '1e-400',
    '9007199254740993',
    '0x1F',
    'NaN',
    'Infinity',
    '',
    ' ',
    '%00',
    '%ED%A0%80',
    '\r\n',
    '"',
    '\\',
    '{}',
    '[]',
    'null',
    '\u202E',
    'x'.repeat(9000),
    'urn:ietf:params:oauth:token-type:jwt',
    'payments',
    'https://payments.example',
  ),
  // Any UTF-16 code units, unpaired surrogates and controls included.
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 }),
);

/** A JSON value built of hostile text, keys included, a few levels deep. */
const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileText,
    fc.constantFrom(0, -0, 1.5, -1, 1e308, -1e308, 5e-324, 2 ** 53 + 1, true, false, null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(hostileText, tie('value'), { maxKeys: 3 }),
  ),
})).value;

const deep = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;
/** JSON text of a hostile value, including what JSON.stringify cannot write. */
const hostileJsonText: fc.Arbitrary<string> = fc.oneof(
  hostileJson.map((v) => JSON.stringify(v) ?? 'null'),
  fc.constantFrom(
    '1e400',
    '-1e400',
    '1E+9999',
    '123456789012345678901234567890',
    '0.00000000000000000000000000001',
    '"\\ud800"',
    '"\\u0000"',
    '{"__proto__":{"polluted":true}}',
    '{"constructor":{"prototype":{"x":1}}}',
    deep(5000),
    `{"a":${deep(1000)}}`,
  ),
);

/** Percent-encodes every byte of the UTF-8 form (an unpaired surrogate becomes U+FFFD). */
const encode = (text: string): string =>
  Array.from(new TextEncoder().encode(text), (b) => `%${b.toString(16).padStart(2, '0')}`).join('');

interface Sent {
  readonly what: string;
  readonly status: number;
}

async function send(what: string, path: string, init: RequestInit = {}): Promise<Sent> {
  const response = await fetch(`${baton.url}${path}`, { redirect: 'manual', ...init });
  await response.arrayBuffer();
  return { what, status: response.status };
}

const form = (path: string, body: string, headers: Record<string, string>) => (what: string) =>
  send(what, path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body,
  });
const json = (path: string, body: string, headers: Record<string, string>) => (what: string) =>
  send(what, path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

/** A form body from pairs; `raw` text goes in unencoded (malformed escapes, say). */
const formBody = (pairs: readonly (readonly [string, string])[], raw = ''): string =>
  [...pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`), ...(raw === '' ? [] : [raw])].join('&');

/** One mutation of a form: a parameter replaced, added, repeated, or a raw fragment appended. */
const formMutation = (names: readonly string[]) =>
  fc.record({
    name: fc.oneof(fc.constantFrom(...names), hostileText),
    // JSON text too, for the parameters that carry JSON (authorization_details).
    value: fc.oneof(
      hostileText,
      hostileJsonText,
      hostileJsonText.map(
        (v) =>
          `[{"type":"payment_initiation","actions":["initiate"],"instructedAmount":{"currency":"EUR","amount":${v}}}]`,
      ),
    ),
    how: fc.constantFrom('replace', 'replace', 'repeat', 'raw'),
    raw: fc.constantFrom('%', '%zz', '%ED%A0%80=1', '=', '&&&', 'a=%00', '%00=%00'),
  });

function mutateForm(
  base: Record<string, string>,
  m: { name: string; value: string; how: string; raw: string },
): string {
  const pairs = Object.entries(base).filter(([k]) => m.how !== 'replace' || k !== m.name);
  return formBody([...pairs, [m.name, m.value]], m.how === 'raw' ? m.raw : '');
}

/** Client credentials at the token endpoint: the right ones mostly, sometimes hostile. */
const clientAuth = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ authorization: basic('agent-platform') }) },
  {
    weight: 1,
    arbitrary: hostileText.map((t) => ({ authorization: `Basic ${Buffer.from(`${t}:${t}`).toString('base64')}` })),
  },
  { weight: 1, arbitrary: hostileText.map((t) => ({ authorization: `Bearer ${encode(t)}` })) },
  { weight: 1, arbitrary: fc.constant({} as Record<string, string>) },
);

/** A JSON body: the template with one member (at a path) replaced by hostile JSON text, or a new member. */
const jsonMutation = (paths: readonly string[]) =>
  fc.record({ path: fc.constantFrom(...paths), value: hostileJsonText, key: hostileText });

function mutateJson(template: Record<string, unknown>, m: { path: string; value: string; key: string }): string {
  const marker = '"@@hostile@@"';
  const copy = structuredClone(template);
  const parts = m.path.split('.');
  let node = copy;
  for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
  const last = parts.at(-1) as string;
  // "+" adds a member with a hostile name beside the others.
  node[last === '+' ? m.key : last] = '@@hostile@@';
  return JSON.stringify(copy).replace(marker, m.value);
}

interface Context {
  readonly token: string;
  readonly userToken: string;
  readonly admin: Record<string, string>;
  readonly auditor: Record<string, string>;
  /** The orchestrator's own token, as Bearer: it registers sub-agents. */
  readonly orchestrator: Record<string, string>;
}

/** Every endpoint: how many requests it gets and how one is made from a generated mutation. */
function endpoints(ctx: Context): {
  readonly name: string;
  readonly runs: number;
  readonly requests: fc.Arbitrary<(what: string) => Promise<Sent>>;
}[] {
  const exchangeBase = (actor: string) => ({
    grant_type: grants.exchange,
    subject_token: ctx.userToken,
    subject_token_type: tokenTypes.jwt,
    actor_token: actor,
    actor_token_type: tokenTypes.jwt,
    audience: 'payments',
    scope: 'payments:read',
  });
  const tokenNames = [
    'grant_type',
    'subject_token',
    'subject_token_type',
    'actor_token',
    'actor_token_type',
    'audience',
    'resource',
    'scope',
    'authorization_details',
    'requested_token_type',
    'code',
    'redirect_uri',
    'code_verifier',
    'refresh_token',
    'client_id',
    'client_secret',
    'client_assertion',
    'client_assertion_type',
  ];
  const grantBases: Record<string, Record<string, string>> = {
    client_credentials: { grant_type: 'client_credentials', audience: 'payments', scope: 'payments:read' },
    authorization_code: {
      grant_type: 'authorization_code',
      code: 'not-a-code',
      redirect_uri: 'http://localhost:3000/callback',
      code_verifier: 'v'.repeat(43),
    },
    refresh_token: { grant_type: 'refresh_token', refresh_token: 'not-a-refresh-token', scope: 'payments:read' },
  };
  const authorizeTemplate = {
    token: ctx.token,
    action: 'payments:transfer',
    resource: { type: 'Account', id: 'acct-1', properties: { currency: 'EUR' } },
    context: { amount: 5, currency: 'EUR' },
    action_id: 'fuzz',
  };
  const evaluationTemplate = {
    subject: { type: 'User', id: 'alice', properties: { role: 'admin' } },
    action: { name: 'payments:read', properties: {} },
    resource: { type: 'Account', id: 'acct-1', properties: {} },
    context: { time: 'now' },
  };
  const authorizeQuery = {
    response_type: 'code',
    client_id: 'agent-console',
    redirect_uri: consoleRedirect,
    scope: 'payments:read',
    code_challenge: 'a'.repeat(43),
    code_challenge_method: 'S256',
    state: 's',
    requested_actor: 'orchestrator',
  };
  const entityPaths = (p: string) => [
    `${p}`,
    `${p}.type`,
    `${p}.id`,
    `${p}.properties`,
    `${p}.properties.role`,
    `${p}.properties.+`,
  ];
  return [
    {
      name: 'token exchange',
      runs: 280,
      requests: fc.tuple(formMutation(tokenNames), clientAuth).map(
        ([m, auth]) =>
          async (what: string) =>
            form(
              '/oauth2/token',
              mutateForm(exchangeBase(await mintAgentAssertion('orchestrator', baton.issuer)), m),
              auth,
            )(what),
      ),
    },
    ...Object.entries(grantBases).map(([grant, base]) => ({
      name: grant,
      runs: 130,
      requests: fc
        .tuple(formMutation(tokenNames), clientAuth)
        .map(([m, auth]) => form('/oauth2/token', mutateForm(base, m), auth)),
    })),
    {
      name: 'revocation',
      runs: 100,
      requests: fc
        .tuple(formMutation(['token', 'token_type_hint', 'client_id']), clientAuth)
        .map(([m, auth]) =>
          form('/oauth2/revoke', mutateForm({ token: 'not-a-token', token_type_hint: 'access_token' }, m), auth),
        ),
    },
    {
      name: 'introspection',
      runs: 100,
      requests: formMutation(['token', 'token_type_hint']).map((m) =>
        form('/oauth2/introspect', mutateForm({ token: ctx.token }, m), { authorization: basic('payments') }),
      ),
    },
    {
      name: '/authorize',
      runs: 280,
      requests: jsonMutation([
        'token',
        'action',
        'resource',
        'resource.type',
        'resource.id',
        'resource.properties',
        'resource.properties.currency',
        'resource.properties.+',
        'context',
        'context.amount',
        'context.currency',
        'context.+',
        'action_id',
        '+',
      ]).map((m) => json('/authorize', mutateJson(authorizeTemplate, m), { authorization: basic('payments') })),
    },
    {
      name: 'AuthZEN evaluation',
      runs: 170,
      requests: jsonMutation([
        ...entityPaths('subject'),
        ...entityPaths('resource'),
        'action',
        'action.name',
        'action.properties',
        'action.properties.+',
        'context',
        'context.+',
        '+',
      ]).map((m) =>
        json('/access/v1/evaluation', mutateJson(evaluationTemplate, m), { authorization: basic('payments') }),
      ),
    },
    {
      name: 'AuthZEN evaluations',
      runs: 130,
      requests: jsonMutation([
        'evaluations',
        'evaluations.0',
        'evaluations.0.subject',
        'evaluations.1.resource',
        'evaluations.1.action.name',
        'options',
        'options.evaluations_semantic',
        'subject.id',
        'context.+',
        '+',
      ]).map((m) =>
        json(
          '/access/v1/evaluations',
          mutateJson(
            {
              ...evaluationTemplate,
              evaluations: [{ resource: { type: 'Account', id: 'a' } }, { action: { name: 'payments:transfer' } }],
              options: { evaluations_semantic: 'execute_all' },
            },
            m,
          ),
          { authorization: basic('payments') },
        ),
      ),
    },
    {
      name: 'kill switch',
      runs: 70,
      requests: jsonMutation(['user', 'agent', '+']).map((m) =>
        json('/admin/revoke', mutateJson({ user: 'fuzz-user' }, m), ctx.admin),
      ),
    },
    {
      name: 'registry admin',
      runs: 60,
      requests: fc
        .tuple(
          jsonMutation(['id', 'name', 'jwks', 'jwks.keys', 'scope', 'metadata.owner', 'tenant', 'retiring_keys', '+']),
          fc.constantFrom('POST', 'PUT', 'GET', 'DELETE', 'keys'),
          hostileText,
        )
        .map(([m, how, id]) => (what: string) => {
          const body = mutateJson(
            {
              id: 'fuzz-agent',
              name: 'Fuzz',
              owner: 'alice',
              jwks: {
                keys: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', kid: 'f' }],
              },
              scope: ['payments:read'],
              metadata: { owner: 'fuzz' },
            },
            m,
          );
          const headers = { 'content-type': 'application/json', ...ctx.admin };
          if (how === 'POST') return send(what, '/admin/agents', { method: 'POST', headers, body });
          if (how === 'keys')
            return send(what, `/admin/agents/${encode(id)}/keys`, {
              method: 'POST',
              headers,
              body: `{"jwks":${body},"overlap_seconds":${m.value}}`,
            });
          return send(what, `/admin/agents/${encode(id)}`, {
            method: how,
            headers,
            ...(how === 'PUT' ? { body } : {}),
          });
        }),
    },
    {
      name: 'suspensions',
      runs: 40,
      requests: fc.oneof(
        jsonMutation(['kind', 'id', 'reason', '+']).map((m) =>
          json('/admin/suspensions', mutateJson({ kind: 'user', id: 'fuzz-user', reason: 'fuzz' }, m), ctx.admin),
        ),
        fc.tuple(fc.oneof(fc.constantFrom('user', 'agent', 'client'), hostileText), hostileText).map(
          ([kind, id]) =>
            (what: string) =>
              send(what, `/admin/suspensions/${encode(kind)}/${encode(id)}`, { method: 'DELETE', headers: ctx.admin }),
        ),
      ),
    },
    {
      name: 'sub-agents',
      runs: 40,
      requests: jsonMutation(['id', 'name', 'jwks', 'jwks.keys', 'scope', 'expires_in', 'metadata', '+']).map((m) =>
        json(
          '/agents',
          mutateJson(
            {
              id: 'fuzz-sub-agent',
              name: 'Fuzz',
              jwks: {
                keys: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', kid: 'f' }],
              },
              scope: ['payments:read'],
              expires_in: 60,
              metadata: { task: 'fuzz' },
            },
            m,
          ),
          ctx.orchestrator,
        ),
      ),
    },
    {
      name: 'reloads',
      runs: 10,
      requests: fc
        .tuple(fc.constantFrom('/admin/policies/reload', '/admin/registry/reload'), hostileJsonText, fc.boolean())
        .map(([path, body, authorized]) =>
          json(path, body, authorized ? ctx.admin : { authorization: basic('payments') }),
        ),
    },
    {
      name: 'policy rollback and upload',
      runs: 40,
      requests: fc.oneof(
        jsonMutation(['version', '+']).map((m) =>
          json('/admin/policies/rollback', mutateJson({ version: 1 }, m), ctx.admin),
        ),
        // No schema file: however mutated, the set is refused and the one in force stays.
        jsonMutation(['files', 'files.x', 'files.+', '+']).map((m) =>
          json('/admin/policies', mutateJson({ files: { x: 'permit (principal, action, resource);' } }, m), ctx.admin),
        ),
      ),
    },
    {
      name: 'audit sinks',
      runs: 40,
      requests: fc.oneof(
        jsonMutation(['kind', 'url', 'credential', 'batch_size', '+']).map(
          (m) => (what: string) =>
            send(what, '/admin/audit-sinks/fuzz', {
              method: 'PUT',
              headers: { 'content-type': 'application/json', ...ctx.admin },
              body: mutateJson({ kind: 'webhook', url: 'https://siem.example/in', credential: 'x' }, m),
            }),
        ),
        hostileText.map(
          (id) => (what: string) =>
            send(what, `/admin/audit-sinks/${encode(id)}`, { method: 'DELETE', headers: ctx.admin }),
        ),
      ),
    },
    {
      name: 'audit',
      runs: 170,
      requests: fc
        .tuple(
          fc.constantFrom(
            'actions',
            'actions-raw',
            'entries',
            'entries-ocsf',
            'entries-format',
            'verify',
            'checkpoint',
            'search',
            'search-time',
            'trail',
            'entries-filter',
          ),
          hostileText,
          hostileText,
        )
        .map(([call, a, b]) => (what: string) => {
          const query = (names: string[]) => names.map((n, i) => `${n}=${encode(i === 0 ? a : b)}`).join('&');
          const path = {
            actions: `/audit/actions/${encode(a)}`,
            'actions-raw': `/audit/actions/${a.replace(/[^\x21-\x7E]/g, '')}%ED%A0%80`,
            entries: `/audit/entries?${query(['from', 'limit'])}`,
            'entries-ocsf': `/audit/entries?format=ocsf&${query(['from', 'limit'])}`,
            'entries-format': `/audit/entries?${query(['format', 'from'])}`,
            verify: `/audit/verify?${query(['from', 'to'])}`,
            checkpoint: `/audit/checkpoint?${query(['x'])}`,
            search: `/audit/search?${query(['user', 'agent'])}`,
            'search-time': `/audit/search?${query(['since', 'before'])}`,
            trail: `/audit/trail/${encode(a)}`,
            'entries-filter': `/audit/entries?${query(['client', 'type'])}`,
          }[call];
          return send(what, path, { headers: ctx.auditor });
        }),
    },
    {
      name: 'the browser sign-in',
      runs: 130,
      requests: fc
        .tuple(
          formMutation([...Object.keys(authorizeQuery), 'resource', 'authorization_details']),
          fc.constantFrom('GET', 'login', 'consent'),
        )
        .map(([m, step]) =>
          step === 'GET'
            ? (what: string) => send(what, `/oauth2/authorize?${mutateForm(authorizeQuery, m)}`)
            : form(
                `/oauth2/authorize/${step}`,
                mutateForm(
                  { request: 'x.y.z', csrf_token: 'c', username: 'alice', password: 'p', decision: 'approve' },
                  m,
                ),
                { cookie: 'baton_csrf=c' },
              ),
        ),
    },
  ];
}

/** globex's own exchange (bob → globex-assistant at ledger), running beside the hostile requests. */
async function globexExchange(): Promise<PostResult> {
  return postToken(
    baton,
    {
      grant_type: grants.exchange,
      subject_token: await mintUserToken('bob', { tenant: 'globex', audience: baton.issuer, scope: 'ledger:read' }),
      subject_token_type: tokenTypes.jwt,
      actor_token: await mintAgentAssertion('globex-assistant', baton.issuer),
      actor_token_type: tokenTypes.jwt,
      audience: 'ledger',
    },
    { authorization: basic('globex-platform') },
  );
}

describe('fuzzing every endpoint with hostile input', () => {
  it('never answers 5xx, logs no error, and fails no well-formed request running alongside', async () => {
    const [, token] = await demoChain(baton);
    const credentials = async (scope: string) => ({
      authorization: `Bearer ${(await postToken(baton, { grant_type: 'client_credentials', scope }, { authorization: basic('ops-console') })).body.access_token as string}`,
    });
    const ctx: Context = {
      token,
      userToken: await mintUserToken('alice', { audience: baton.issuer }),
      admin: await credentials('baton:admin'),
      auditor: await credentials('baton:audit'),
      orchestrator: {
        authorization: `Bearer ${
          (
            await postToken(
              baton,
              {
                grant_type: 'client_credentials',
                client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
                client_assertion: await mintAgentAssertion('orchestrator', baton.issuer),
              },
              {},
            )
          ).body.access_token as string
        }`,
      },
    };

    const cases = endpoints(ctx).flatMap((e, i) =>
      fc
        .sample(e.requests, { seed: seed + i, numRuns: e.runs })
        .map((request, n) => ({ what: `${e.name} #${n}`, request })),
    );
    // Interleaved, so every endpoint's requests share batches with every other's.
    const order =
      fc.sample(fc.shuffledSubarray(cases, { minLength: cases.length, maxLength: cases.length }), {
        seed,
        numRuns: 1,
      })[0] ?? cases;

    let fuzzing = true;
    const wellFormed: string[] = [];
    const alongside = (async () => {
      while (fuzzing) {
        const [exchanged, other, decided] = await Promise.all([
          exchangeHop(baton, await mintUserToken('alice', { audience: baton.issuer }), tokenTypes.jwt, 'orchestrator', {
            audience: 'payments',
            scope: 'payments:read',
          }),
          globexExchange(),
          fetch(`${baton.url}/authorize`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: basic('payments') },
            body: JSON.stringify({
              token,
              action: 'payments:transfer',
              resource: { type: 'Account', id: 'acct-1' },
              context: { amount: 5, currency: 'EUR' },
            }),
          }).then(async (r) => `${r.status} ${((await r.json()) as { decision: string }).decision}`),
        ]);
        wellFormed.push(
          `${exchanged.status} ${String(exchanged.body.token_type)}`,
          `${other.status} ${String(other.body.token_type)}`,
          decided,
        );
      }
    })();

    const answers: Sent[] = [];
    const lanes = 12;
    let next = 0;
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        for (let i = next++; i < order.length; i = next++) {
          const c = order[i] as (typeof cases)[number];
          answers.push(await c.request(c.what));
        }
      }),
    );
    fuzzing = false;
    await alongside;

    expect(answers).toHaveLength(cases.length);
    expect(answers.length).toBeGreaterThanOrEqual(1800);
    expect(answers.filter((a) => a.status >= 500)).toEqual([]);
    expect(wellFormed.length).toBeGreaterThan(0);
    expect(wellFormed.filter((w) => w !== '200 Bearer' && w !== '200 allow')).toEqual([]);
    expect(
      baton.logger.lines.filter((l) => l.level === 'error').map((l) => `${l.message}: ${JSON.stringify(l.fields)}`),
    ).toEqual([]);
    const verified = await fetch(`${baton.url}/audit/verify`, { headers: ctx.auditor });
    expect(await verified.json()).toMatchObject({ valid: true });
    expect((await fetch(`${baton.url}/healthz`)).status).toBe(200);
  });
});

// Text PostgreSQL cannot hold (a NUL; a UTF-16 surrogate that is not half of a pair), where it
// once reached an audit batch, is refused to its own request alone.
describe('requests that share an audit batch', () => {
  const NUL = '\u0000';
  const LONE = '\uD800';
  const asPayments = { authorization: basic('payments') };
  async function bearer(client: string, scope: string): Promise<Record<string, string>> {
    const token = await postToken(baton, { grant_type: 'client_credentials', scope }, { authorization: basic(client) });
    return { authorization: `Bearer ${token.body.access_token as string}` };
  }

  it('are answered as if the unstorable ones were never sent, in every tenant', async () => {
    const admin = await bearer('ops-console', 'baton:admin');
    const [, token] = await demoChain(baton);
    const good = async (i: number): Promise<string> => {
      switch (i % 4) {
        case 0: {
          const r = await exchangeHop(
            baton,
            await mintUserToken('alice', { audience: baton.issuer }),
            tokenTypes.jwt,
            'orchestrator',
            { audience: 'payments', scope: 'payments:read' },
          );
          return `${r.status} ${r.body.issued_token_type as string}`;
        }
        case 1: {
          const r = await globexExchange();
          return `${r.status} ${r.body.issued_token_type as string}`;
        }
        case 2: {
          const r = await postJson(
            baton,
            '/authorize',
            { token, action: 'payments:read', resource: { type: 'Account', id: 'acct-1' } },
            asPayments,
          );
          return `${r.status} ${r.body.decision as string}`;
        }
        default: {
          const r = await postToken(
            baton,
            { grant_type: 'client_credentials', scope: 'payments:read', audience: 'payments' },
            { authorization: basic('agent-platform') },
          );
          return `${r.status} ${r.body.token_type as string}`;
        }
      }
    };
    // Mostly exchanges of a user whose name holds the text: what once reached the lineage table.
    const bad = async (i: number): Promise<number> => {
      const text = i % 2 === 0 ? `al${NUL}ice` : `al${LONE}ice`;
      switch (i % 6) {
        case 4:
          return (await postJson(baton, '/admin/revoke', { user: text }, admin)).status;
        case 5:
          return (
            await postJson(
              baton,
              '/authorize',
              { token, action: 'payments:read', resource: { type: 'Account', id: text } },
              asPayments,
            )
          ).status;
        default:
          return (
            await exchangeHop(baton, await upstreamToken(baton.issuer, { sub: text }), tokenTypes.jwt, 'orchestrator', {
              audience: 'payments',
              scope: 'payments:read',
            })
          ).status;
      }
    };
    for (let round = 0; round < 4; round++) {
      const [goods, bads] = await Promise.all([
        Promise.all(Array.from({ length: 40 }, (_, i) => good(i))),
        Promise.all(Array.from({ length: 18 }, (_, i) => bad(i))),
      ]);
      expect(goods).toEqual(
        Array.from(
          { length: 40 },
          (_, i) =>
            [
              '200 urn:ietf:params:oauth:token-type:access_token',
              '200 urn:ietf:params:oauth:token-type:access_token',
              '200 allow',
              '200 Bearer',
            ][i % 4],
        ),
      );
      expect(bads).toEqual(Array.from({ length: 18 }, () => 400));
    }
    const verify = await fetch(`${baton.url}/audit/verify`, { headers: await bearer('ops-console', 'baton:audit') });
    expect(await verify.json()).toMatchObject({ valid: true });
    expect(baton.logger.lines.filter((l) => l.level === 'error')).toEqual([]);
  });
});
