// The SDK's cost on a token exchange: Baton's exchange hop 1 (alice's token → a token for the
// orchestrator) sent flat out through the SDK's `batonClient().delegate()`, in turns with the same
// request sent with a bare `fetch` and `response.json()`. Both sides send byte-for-byte the same
// form to the same Baton (on PostgreSQL) from this process, with the same concurrency; the ratio is
// the bare side's exchanges/s over the SDK's, per pair of runs (target <= 1.05). Then the client's
// own work alone: both sides answered at once with the body Baton gave, one call at a time.
//
//   npm run build && npm run build -w @baton-sts/sdk && node bench/sdk-exchange.mjs [--pairs 6] [--pair-duration 5] [--concurrency 16]

/* global fetch, Response, URL */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { URLSearchParams } from 'node:url';
import { batonClient, tokenTypes } from '../packages/sdk/dist/index.js';
import { demoSecret } from '../dist/cli/demo-kit.js';
import {
  benchDatabase,
  fixed,
  integerOption,
  limitRunTime,
  machineLine,
  print,
  progress,
  ratioWithSpread,
  readCommandLine,
  secondsOption,
  spread,
  startBatonSetup,
  whole,
  withCleanups,
  workFolder,
} from './harness.mjs';
import { tokenScenarios } from './token-exchange.mjs';

const root = new URL('..', import.meta.url).pathname;
const usage = `usage: node bench/sdk-exchange.mjs [--pairs N] [--pair-duration SECONDS] [--concurrency N]

  --pairs          pairs of runs (SDK, then bare fetch), 1 to 50 (default 6)
  --pair-duration  seconds per run, 0.5 to 60 (default 5)
  --concurrency    exchanges in flight on each side, 1 to 256 (default 16)
`;
const options = readCommandLine(
  usage,
  { pairs: { type: 'string' }, 'pair-duration': { type: 'string' }, concurrency: { type: 'string' } },
  (values) => ({
    pairs: integerOption('pairs', values.pairs, 1, 50, 6),
    seconds: secondsOption('pair-duration', values['pair-duration'], 60, 5),
    concurrency: integerOption('concurrency', values.concurrency, 1, 256, 16),
  }),
);
limitRunTime((options.pairs * options.seconds * 2 + 120) * 1000);

/** Exchanges per second of `exchange` run `concurrency` at a time for `seconds`; throws on any refusal. */
async function rate(exchange, seconds, concurrency) {
  let done = 0;
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await exchange();
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

await withCleanups(async () => {
  const workDir = await workFolder('baton-bench-sdk-');
  const baton = await startBatonSetup({ root, setup: 'postgres', workDir, database: benchDatabase('baton_bench_sdk') });
  const { tokenPath, authorization, scenarios } = await tokenScenarios(baton.url);
  // One hop-1 form (alice's token, the orchestrator's own token as actor) for every request.
  const form = await scenarios.find((scenario) => scenario.name === 'exchange hop 1').params();
  const endpoint = new URL(tokenPath, baton.url).href;

  /** The two ways of sending the exchange, each through `send` (the network, or a canned answer). */
  const sides = (send) => {
    const client = batonClient({
      issuer: new URL(baton.url).origin,
      tokenEndpoint: endpoint,
      client: { id: 'agent-platform', secret: demoSecret('agent-platform') },
      fetch: send,
    });
    return {
      sdk: () =>
        client.delegate(form.subject_token, {
          subjectTokenType: tokenTypes.jwt,
          actor: { token: form.actor_token, tokenType: form.actor_token_type },
          audience: form.audience,
          scope: form.scope,
        }),
      bare: async () => {
        const response = await send(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
          body: new URLSearchParams(form),
        });
        const body = await response.json();
        if (!response.ok) throw new Error(`exchange refused (HTTP ${response.status}): ${JSON.stringify(body)}`);
        return body;
      },
    };
  };
  const { sdk, bare } = sides(fetch);

  progress('warming up');
  await rate(sdk, 2, options.concurrency);
  await rate(bare, 2, options.concurrency);
  const pairs = [];
  for (let i = 0; i < options.pairs; i++) {
    const viaSdk = await rate(sdk, options.seconds, options.concurrency);
    const viaFetch = await rate(bare, options.seconds, options.concurrency);
    pairs.push({ viaSdk, viaFetch });
    progress(
      `pair ${i + 1}: SDK ${whole(viaSdk)}/s, bare fetch ${whole(viaFetch)}/s, ratio ${fixed(viaFetch / viaSdk)}`,
    );
  }
  print(machineLine());
  print(`| exchange hop 1, ${options.concurrency} in flight | exchanges/s (median) |`);
  print('| --- | --- |');
  print(`| SDK batonClient().delegate() | ${whole(spread(pairs.map((p) => p.viaSdk)).median)} |`);
  print(`| bare fetch + response.json() | ${whole(spread(pairs.map((p) => p.viaFetch)).median)} |`);
  print();
  print(
    `SDK overhead (bare fetch rate / SDK rate): ${ratioWithSpread(spread(pairs.map((p) => p.viaFetch / p.viaSdk)))} (target <= 1.05)`,
  );

  // The client's own work, apart from Baton and the network: the same calls answered at once with
  // the body Baton gave, one at a time, in turns.
  const answer = JSON.stringify(await bare());
  const canned = sides(() =>
    Promise.resolve(new Response(answer, { status: 200, headers: { 'content-type': 'application/json' } })),
  );
  const cost = { sdk: [], bare: [] };
  for (let i = 0; i < options.pairs; i++) {
    cost.sdk.push(1e6 / (await rate(canned.sdk, 1, 1)));
    cost.bare.push(1e6 / (await rate(canned.bare, 1, 1)));
  }
  const median = (values) => spread(values).median;
  print(
    `Client work per exchange with a canned answer (no network): SDK ${fixed(median(cost.sdk), 1)} µs, bare fetch ${fixed(median(cost.bare), 1)} µs; ` +
      `the whole exchange above cost ${fixed((1e6 * availableParallelism()) / spread(pairs.map((p) => p.viaFetch)).median, 0)} µs of the machine's ${availableParallelism()} cores`,
  );
});
