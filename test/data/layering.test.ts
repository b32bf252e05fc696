/**
 * The data layer sits beneath everything but the file formats: no module in src/data imports
 * from another src/ folder (issue 13.6: visualization imports data, never the other way).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../helpers.js';

function tsFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
    );
}

test('src/data imports only from src/data, node and packages', () => {
  const dataDir = path.join(repoRoot, 'src', 'data');
  const outside: string[] = [];
  for (const file of tsFiles(dataDir)) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']*)'/g)) {
      const target = path.resolve(path.dirname(file), m[1]);
      if (!target.startsWith(dataDir + path.sep)) outside.push(`${path.relative(repoRoot, file)} -> ${m[1]}`);
    }
  }
  assert.ok(tsFiles(dataDir).length > 10, 'found the data sources');
  assert.deepEqual(outside, []);
});
