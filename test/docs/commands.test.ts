/**
 * The docs' commands run (issue 30.11): every fenced block whose info string is `bash tested` in the
 * README or a page under docs/ is run, line by line (backslash continuations joined), from the
 * repository's root, and each command must exit 0. Such blocks use only what a clone has (the tiny
 * fixture model under test/fixtures) and write under /tmp/beitseg-docs/, so a reader can paste them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot } from '../helpers.js';

const exec = promisify(execFile);
const OUTPUT_DIR = '/tmp/beitseg-docs';

interface TestedCommand {
  page: string;
  line: number;
  command: string;
}

/** The commands of the `bash tested` blocks of one Markdown page, continuations joined, comments dropped. */
export function testedCommands(page: string, markdown: string): TestedCommand[] {
  const out: TestedCommand[] = [];
  const lines = markdown.split('\n');
  let inBlock = false;
  let pending = '';
  let pendingLine = 0;
  lines.forEach((text, i) => {
    if (/^```/.test(text)) {
      inBlock = !inBlock && /^```bash\s+tested\s*$/.test(text);
      return;
    }
    if (!inBlock) return;
    const code = text.replace(/\s+#.*$/, '').replace(/^\s*#.*$/, '');
    if (pending === '') pendingLine = i + 1;
    pending += code.replace(/\\$/, ' ');
    if (code.endsWith('\\')) return;
    if (pending.trim() !== '') out.push({ page, line: pendingLine, command: pending.trim() });
    pending = '';
  });
  return out;
}

function allTestedCommands(): TestedCommand[] {
  const pages = ['README.md', ...fs.readdirSync(path.join(repoRoot, 'docs')).map((f) => `docs/${f}`)];
  return pages
    .filter((p) => p.endsWith('.md'))
    .flatMap((p) => testedCommands(p, fs.readFileSync(path.join(repoRoot, p), 'utf8')));
}

describe('commands in the docs', { timeout: 300_000 }, () => {
  // A run's outputs start from nothing (convert, for one, refuses to overwrite a file).
  before(() => fs.rmSync(OUTPUT_DIR, { recursive: true, force: true }));
  after(() => fs.rmSync(OUTPUT_DIR, { recursive: true, force: true }));
  const commands = allTestedCommands();

  it('the docs hold tested commands, and the extraction joins continuations', () => {
    assert.ok(commands.length >= 3, `only ${commands.length} tested commands found`);
    const parsed = testedCommands(
      'x.md',
      '```bash tested\n# note\nnode a.js \\\n    --b c  # why\n```\n```bash\nno\n```',
    );
    assert.deepEqual(
      parsed.map((c) => c.command),
      ['node a.js      --b c'],
    );
  });

  for (const c of commands) {
    it(`${c.page}:${c.line}: ${c.command.slice(0, 80)}`, async () => {
      try {
        await exec('bash', ['-c', c.command], { cwd: repoRoot, maxBuffer: 1 << 24, timeout: 120_000 });
      } catch (err) {
        const e = err as { code?: number; stderr?: string };
        assert.fail(`exit ${e.code}: ${String(e.stderr ?? err).slice(-2000)}`);
      }
    });
  }
});
