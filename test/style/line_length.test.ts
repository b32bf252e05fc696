// Style guard (issue 13.8): Biome formats at 120 columns but does not break long string literals or comments,
// and clang-format leaves some C++ lines alone, so this test keeps every tracked source line within 120 characters.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { findRoot } from './root.js';

const repoRoot = findRoot();
const MAX_COLUMNS = 120;
const FOLDERS = ['src', 'test', 'bench', 'scripts', 'bin'];
const EXCLUDED = ['test/fixtures/'];
const EXTENSIONS = ['.ts', '.mjs', '.js', '.cc', '.h', '.css'];

/** Tracked files under FOLDERS (git ls-files); outside a git checkout, every file found on disk. */
function sourceFiles(): string[] {
  let files: string[];
  try {
    const out = execFileSync('git', ['ls-files', '-z', '--', ...FOLDERS], { cwd: repoRoot, encoding: 'utf8' });
    files = out.split('\0').filter((f) => f.length > 0);
  } catch {
    files = FOLDERS.filter((d) => fs.existsSync(path.join(repoRoot, d))).flatMap((d) =>
      fs
        .readdirSync(path.join(repoRoot, d), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) =>
          path
            .relative(repoRoot, path.join(e.parentPath ?? e.path, e.name))
            .split(path.sep)
            .join('/'),
        ),
    );
  }
  return files
    .filter((f) => EXTENSIONS.includes(path.extname(f)))
    .filter((f) => !EXCLUDED.some((prefix) => f.startsWith(prefix)))
    .sort();
}

/** 'file:line: N characters' for every line longer than MAX_COLUMNS (counted in Unicode code points). */
function longLines(file: string): string[] {
  const text = fs.readFileSync(path.join(repoRoot, file), 'utf8');
  const offenders: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const length = [...line].length;
    if (length > MAX_COLUMNS) offenders.push(`${file}:${i + 1}: ${length} characters`);
  });
  return offenders;
}

test(`no source line is longer than ${MAX_COLUMNS} characters`, () => {
  const files = sourceFiles();
  assert.ok(files.length > 50, `expected the tree's source files, found only ${files.length}`);
  const offenders = files.flatMap(longLines);
  assert.deepEqual(offenders, [], `lines over ${MAX_COLUMNS} characters:\n${offenders.join('\n')}`);
});
