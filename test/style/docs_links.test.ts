// Style guard (issue 30.11): the README and the pages under docs/ link to each other and to files of the
// repository; a moved or renamed page must not leave a dead link. Every relative link must name a file that
// exists, and a `#fragment` must name a heading of the target page (GitHub's anchor rule).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { findRoot } from './root.js';

const repoRoot = findRoot();

/** README.md and every Markdown page under docs/, relative to the root. */
function markdownPages(): string[] {
  const docs = fs.existsSync(path.join(repoRoot, 'docs'))
    ? fs
        .readdirSync(path.join(repoRoot, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`)
    : [];
  return ['README.md', ...docs];
}

/** The text outside fenced code blocks and inline code, where a `[x](y)` is a link. */
function proseOf(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseOf(markdown).split('\n')) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

interface Link {
  page: string;
  target: string;
}

function linksOf(page: string): Link[] {
  const text = proseOf(fs.readFileSync(path.join(repoRoot, page), 'utf8'));
  const links: Link[] = [];
  for (const m of text.matchAll(/!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    links.push({ page, target: m[1] });
  }
  return links;
}

/** Why the link is dead, or null when it resolves. External links are not fetched (no network in CI). */
function deadReason(link: Link): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) return null;
  const [file, fragment] = link.target.split('#', 2);
  const resolved = file === '' ? link.page : path.normalize(path.join(path.dirname(link.page), decodeURI(file)));
  if (resolved.startsWith('..')) return 'points outside the repository';
  const full = path.join(repoRoot, resolved);
  if (!fs.existsSync(full)) return `${resolved} does not exist`;
  if (fragment === undefined || fragment === '') return null;
  if (!resolved.endsWith('.md')) return null;
  const anchors = headingAnchors(fs.readFileSync(full, 'utf8'));
  return anchors.has(fragment) ? null : `${resolved} has no heading #${fragment}`;
}

test('every relative link of the README and docs/ resolves, anchors included', () => {
  const pages = markdownPages();
  assert.ok(pages.length > 1, 'expected docs/ pages beside the README');
  const dead = pages.flatMap(linksOf).flatMap((l) => {
    const why = deadReason(l);
    return why === null ? [] : [`${l.page}: (${l.target}) ${why}`];
  });
  assert.deepEqual(dead, []);
});

test('the README links every page under docs/', () => {
  const readme = linksOf('README.md').map((l) => path.normalize(l.target.split('#')[0]));
  const unlinked = markdownPages()
    .filter((p) => p !== 'README.md')
    .filter((p) => !readme.includes(p));
  assert.deepEqual(unlinked, [], 'pages a reader of the README cannot find');
});

test('the link check sees a dead link and a dead anchor', () => {
  assert.match(deadReason({ page: 'README.md', target: 'docs/no-such-page.md' }) ?? '', /does not exist/);
  assert.match(deadReason({ page: 'README.md', target: 'README.md#no-such-heading' }) ?? '', /no heading/);
  assert.equal(deadReason({ page: 'README.md', target: 'https://example.org/x' }), null);
  assert.ok(headingAnchors('# Coming from mmseg / HF\n## A\n## A\n').has('a-1'));
  assert.ok(headingAnchors('# Coming from mmseg / HF\n').has('coming-from-mmseg--hf'));
});
