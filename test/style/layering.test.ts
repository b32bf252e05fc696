/**
 * The import graph of src/ against the layer rule in ./layers.ts (issues 13.6 and 31.4): every folder
 * is a layer and imports only the folders its layer allows; only NATIVE_USERS use the addon object;
 * no file reaches itself through its relative imports (no circle); docs/architecture.md's layer
 * table is the one LAYERS generates. Reads the sources as text: the graph is what the files say.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { repoRoot } from '../helpers.js';
import { allowedImports, architecturePage, LAYERS, NATIVE_USERS, withTable } from './layers.js';

const srcDir = path.join(repoRoot, 'src');
const nativeFile = path.join(srcDir, 'tensor', 'native.ts');

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

test('LAYERS is a layering: each folder once, allowed only folders listed before it', () => {
  const folders = LAYERS.map((l) => l.folder);
  assert.equal(new Set(folders).size, folders.length, `a folder listed twice: ${folders}`);
  for (const [i, folder] of folders.entries()) {
    const above = allowedImports(folder).filter((f) => !folders.slice(0, i).includes(f));
    assert.deepEqual(above, [], `${folder} may import folders that are not below it`);
  }
  for (const folder of NATIVE_USERS) assert.ok(folders.includes(folder), `NATIVE_USERS names ${folder}`);
});

test('every src folder is in LAYERS, and imports only the folders its layer allows', () => {
  const folders = LAYERS.map((l) => l.folder);
  const forbidden: string[] = [];
  for (const [file, imports] of graph) {
    const from = folderOf(file);
    if (from === '') continue;
    assert.ok(folders.includes(from), `src/${from} is not in LAYERS: place it in test/style/layers.ts`);
    for (const target of imports) {
      const to = folderOf(target);
      if (to !== from && !allowedImports(from).includes(to)) {
        forbidden.push(`${path.relative(repoRoot, file)} -> ${path.relative(repoRoot, target)}`);
      }
    }
  }
  assert.deepEqual(forbidden, [], `imports the layer rule (test/style/layers.ts) forbids:\n${forbidden.join('\n')}`);
});

/** Whether `file` imports a value (not only types) from src/tensor/native.ts, statically or dynamically. */
function usesAddon(file: string): boolean {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const isNative = (spec: ts.Node): boolean =>
    ts.isStringLiteral(spec) &&
    spec.text.startsWith('.') &&
    path.resolve(path.dirname(file), spec.text).replace(/\.js$/, '.ts') === nativeFile;
  let found = false;
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && isNative(node.moduleSpecifier)) {
      const clause = node.importClause;
      const named = clause?.namedBindings;
      const valueNames =
        named && ts.isNamedImports(named) ? named.elements.filter((e) => !e.isTypeOnly).length : named ? 1 : 0;
      if (!clause || (!clause.isTypeOnly && (clause.name || valueNames > 0))) found = true;
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && isNative(node.moduleSpecifier)) {
      if (!node.isTypeOnly) found = true;
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      if (node.arguments.length > 0 && isNative(node.arguments[0])) found = true;
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

test('only NATIVE_USERS use the addon object; other folders import types from native.ts at most', () => {
  const users = [...graph.keys()].filter((f) => f !== nativeFile && usesAddon(f));
  assert.ok(users.length > 0, 'found the addon users');
  const outside = users.filter((f) => !NATIVE_USERS.includes(folderOf(f))).map((f) => path.relative(repoRoot, f));
  assert.deepEqual(outside, [], `addon users outside ${NATIVE_USERS.join(', ')}: route them through tensor/`);
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

test("docs/architecture.md's layer table is the one LAYERS generates", () => {
  const page = fs.readFileSync(architecturePage(repoRoot), 'utf8');
  assert.equal(page, withTable(page), 'stale table: run `npm run build && node dist/test/style/layers.js --write`');
});

test('layout lists in README.md and docs/ name the src folders in LAYERS order', () => {
  const pages = [
    path.join(repoRoot, 'README.md'),
    ...fs
      .readdirSync(path.join(repoRoot, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => path.join(repoRoot, 'docs', f)),
  ];
  const order = LAYERS.map((l) => l.folder);
  let lists = 0;
  for (const page of pages) {
    // A layout list: lines that begin with a src folder, e.g. "src/tensor/   Tensor, ...".
    const named = [...fs.readFileSync(page, 'utf8').matchAll(/^src\/([a-z_]+)\/\s/gm)].map((m) => m[1]);
    if (named.length === 0) continue;
    lists++;
    assert.deepEqual(named, order, `${path.relative(repoRoot, page)}: the layout lists src/ folders out of LAYERS`);
  }
  assert.ok(lists > 0, 'found a layout list');
});
