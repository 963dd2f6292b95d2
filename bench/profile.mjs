// CPU profiles of Baton (node --cpu-prof): where the busy time went, by part and by function.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
/**
 * What a sample's CPU time was spent on: the innermost frame of its stack that belongs to a
 * known part wins, so Wasm code counts for the library that called it (cedar-wasm or PGlite),
 * a write(2) for whoever wrote, and a WebCrypto job for crypto.
 */
const parts = [
  [
    'Cedar (cedar-wasm and its Baton adapter)',
    (url) => url.includes('@cedar-policy/cedar-wasm') || url.includes('/dist/adapters/cedar/'),
  ],
  ['PGlite (embedded PostgreSQL, Wasm)', (url) => url.includes('@electric-sql/pglite')],
  ['postgres.js driver', (url) => url.includes('node_modules/postgres/')],
  [
    'crypto (jose, WebCrypto: signatures, hashes)',
    (url) => url.includes('node_modules/jose/') || url.startsWith('node:internal/crypto'),
  ],
  ['request log', (url) => url.includes('/dist/adapters/json-logger')],
  [
    'audit log (canonical JSON, hash chain, group commit)',
    (url) =>
      url.includes('node_modules/canonicalize/') ||
      url.includes('/dist/core/audit') ||
      url.includes('/dist/adapters/db/audit'),
  ],
  ['zod (request parsing)', (url) => url.includes('node_modules/zod/')],
  [
    'HTTP (hono, node:http, sockets)',
    (url) =>
      /node_modules\/(@hono\/node-server|hono)\/|^node:(_http|net|internal\/http|internal\/stream_base|internal\/deps\/undici)/.test(
        url,
      ),
  ],
  ['Baton, other', (url) => url.includes('/dist/')],
];

/** A frame's script, relative to node_modules/ or to the repository. */
const shortUrl = (url) =>
  url.includes('/node_modules/')
    ? url.slice(url.lastIndexOf('/node_modules/') + 1)
    : url.replace(`file://${root}/`, '');

function partOf(frames) {
  for (const frame of frames) for (const [name, test] of parts) if (test(frame.url)) return name;
  const leaf = frames[0].functionName;
  return leaf === '(garbage collector)' || leaf === '(program)' ? leaf : 'other (Node internals, native)';
}

/** Self time by part and by function, from every .cpuprofile in `dir` (start to stop, idle left out). */
export function summarizeProfiles(dir, top = 15) {
  const byFunction = new Map();
  const byPart = new Map();
  let totalUs = 0;
  let idleUs = 0;
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  for (const file of files) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map();
    for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
    const stackCache = new Map();
    /** The sample's frames, innermost first. */
    const stack = (id) => {
      let frames = stackCache.get(id);
      if (frames === undefined) {
        frames = [];
        for (let at = id; at !== undefined; at = parent.get(at)) frames.push(nodes.get(at).callFrame);
        stackCache.set(id, frames);
      }
      return frames;
    };
    profile.samples.forEach((id, i) => {
      const us = profile.timeDeltas[i] ?? 0;
      const frames = stack(id);
      const [frame] = frames;
      if (frame.functionName === '(idle)') {
        idleUs += us;
        return;
      }
      totalUs += us;
      const part = partOf(frames);
      byPart.set(part, (byPart.get(part) ?? 0) + us);
      // Wasm functions have no names here; say whose module they are.
      const where = frame.url.startsWith('wasm://')
        ? ` (Wasm, ${part})`
        : frame.url === ''
          ? ''
          : ` ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
      const name = `${frame.url.startsWith('wasm://') ? 'wasm-function' : frame.functionName || '(anonymous)'}${where}`;
      byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    });
  }
  const rank = (map, n) =>
    [...map.entries()]
      .sort((x, y) => y[1] - x[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, share: us / Math.max(1, totalUs), ms: us / 1000 }));
  return {
    files: files.map((f) => join(dir, f)),
    busyMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    functions: rank(byFunction, top),
    parts: rank(byPart, parts.length + 3),
  };
}

/** The summary as markdown tables, for a report. */
export function profileReport(label, p) {
  const pct = (share) => `${(100 * share).toFixed(1)} %`;
  return [
    `CPU profile of Baton (${label}): ${(p.busyMs / 1000).toFixed(1)} s busy, ${(p.idleMs / 1000).toFixed(1)} s idle, start to stop; ${p.files.join(', ')}`,
    '',
    '| spent in (innermost known frame) | share of busy time |',
    '| --- | ---: |',
    ...p.parts.map((a) => `| ${a.name} | ${pct(a.share)} |`),
    '',
    '| function (self time) | share of busy time |',
    '| --- | ---: |',
    ...p.functions.map((f) => `| \`${f.name.replaceAll('|', '\\|')}\` | ${pct(f.share)} |`),
  ].join('\n');
}
