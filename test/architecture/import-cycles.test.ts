import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const src = join(root, 'src');

/** Every TypeScript file under a folder, as paths relative to the repository. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [relative(root, path)] : [];
  });
}

/**
 * The files a module imports (relative `import … from` and `export … from`), type-only imports
 * included: a circle of types is still a circle a reader has to untangle.
 */
function importsOf(file: string, text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gm)) {
    const spec = match[1] as string;
    found.push(relative(root, resolve(root, dirname(file), spec)).replace(/\.js$/, '.ts'));
  }
  return found;
}

/** The import cycles of a graph (each as the list of files round it), found by depth-first search. */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...path.slice(path.indexOf(next)), next]);
      else if (state.get(next) === undefined && graph.has(next)) visit(next);
    }
    path.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (state.get(node) === undefined) visit(node);
  return found;
}

describe('the source tree', () => {
  it('has no import cycle inside src/', () => {
    const graph = new Map(
      sourceFiles(src).map((file) => [file, importsOf(file, readFileSync(join(root, file), 'utf8'))]),
    );
    expect(graph.size).toBeGreaterThan(50);
    expect(cycles(graph).map((cycle) => cycle.join(' → '))).toEqual([]);
  });

  it('finds a cycle when there is one', () => {
    const graph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
    ]);
    expect(cycles(graph)).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
    expect(
      importsOf(
        'src/core/x.ts',
        "import type { A } from './a.js';\nimport {\n  b,\n} from '../b.js';\nexport { c } from './c/c.js';\nimport { z } from 'zod';\n",
      ),
    ).toEqual(['src/core/a.ts', 'src/b.ts', 'src/core/c/c.ts']);
  });
});
