/**
 * The import graph of src/ (issue 13.6): every folder imports only folders below it in LAYERS,
 * tensor/ and checkpoint/ do not import each other, and no file reaches itself through its
 * relative imports (no circle). Reads the sources as text: the graph is what the files say.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../helpers.js';

/** Lowest first: a folder may import only folders that come before it (and itself). */
const LAYERS = [
  'common',
  'config',
  'tensor',
  'checkpoint',
  'data',
  'visualization',
  'distributed',
  'nn',
  'models',
  'inference',
  'export',
  'web',
  'evaluation',
  'engine',
  'serve',
  'cli',
];

const srcDir = path.join(repoRoot, 'src');

function sourceFiles(): string[] {
  return fs
    .readdirSync(srcDir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

/** The .ts files a source file imports (or re-exports) by relative path, static or dynamic. */
function relativeImports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => path.resolve(path.dirname(file), s).replace(/\.js$/, '.ts'));
}

/** The top folder under src/ ('' for src/index.ts). */
function folderOf(file: string): string {
  const rel = path.relative(srcDir, file).split(path.sep);
  return rel.length > 1 ? rel[0] : '';
}

const graph = new Map(sourceFiles().map((f) => [f, relativeImports(f)] as const));

test('every src folder is in the layer list, and imports only folders below it', () => {
  const upward: string[] = [];
  for (const [file, imports] of graph) {
    const from = folderOf(file);
    if (from === '') continue;
    assert.ok(LAYERS.includes(from), `src/${from} is not in LAYERS: place it in the layering`);
    for (const target of imports) {
      const to = folderOf(target);
      if (to === from) continue;
      if (LAYERS.indexOf(to) > LAYERS.indexOf(from)) {
        upward.push(`${path.relative(repoRoot, file)} -> ${path.relative(repoRoot, target)}`);
      }
    }
  }
  assert.deepEqual(upward, [], `imports that point up the layers:\n${upward.join('\n')}`);
});

test('tensor/ and checkpoint/ are independent of each other', () => {
  const crossing = [...graph].flatMap(([file, imports]) =>
    imports
      .filter((t) => new Set([folderOf(file), folderOf(t)]).size === 2)
      .filter(
        (t) => ['tensor', 'checkpoint'].includes(folderOf(file)) && ['tensor', 'checkpoint'].includes(folderOf(t)),
      )
      .map((t) => `${path.relative(repoRoot, file)} -> ${path.relative(repoRoot, t)}`),
  );
  assert.deepEqual(crossing, []);
});

test('no import circle between files', () => {
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const visit = (file: string, trail: string[]): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      circles.push([...trail.slice(trail.indexOf(file)), file].map((f) => path.relative(srcDir, f)).join(' -> '));
      return;
    }
    state.set(file, 'open');
    for (const next of graph.get(file) ?? []) visit(next, [...trail, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file, []);
  assert.deepEqual(circles, [], `import circles:\n${circles.join('\n')}`);
});
