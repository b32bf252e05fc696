/**
 * Output helpers for IoUMetric results: the per-class table mmseg logs
 * (PrettyTable look: centred cells, "+---+" rules, values as Python prints
 * numbers rounded to 2 decimals, e.g. 74.55, 50.0, nan), a Markdown table,
 * and a JSON object (NaN -> null).
 */

import type { IoUResults } from './iou_metric.js';

/** How Python prints a float: shortest round-trip digits, at least one decimal, 'nan'/'inf'. */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return x.toFixed(1);
  return String(x);
}

/** Python str.center (CPython: the odd space goes left when both margin and width are odd). */
export function pyCenter(s: string, width: number): string {
  const marg = width - s.length;
  if (marg <= 0) return s;
  const left = Math.floor(marg / 2) + (marg & width & 1);
  return ' '.repeat(left) + s + ' '.repeat(marg - left);
}

/** A PrettyTable-style text table (all columns centred, one space of padding). */
export function prettyTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const line = (cells: readonly string[]): string =>
    `|${cells.map((v, c) => ` ${pyCenter(v, widths[c])} `).join('|')}|`;
  return [rule, line(header), rule, ...rows.map(line), rule].join('\n');
}

/** mmseg's "per class results" table: Class | IoU | Acc. */
export function formatClassTable(r: IoUResults): string {
  return prettyTable(
    ['Class', 'IoU', 'Acc'],
    r.perClass.map((c) => [c.name, pyFloat(c.iou), pyFloat(c.acc)]),
  );
}

/** The summary table mmseg 0.x printed (aAcc | mIoU | mAcc). */
export function formatSummaryTable(r: IoUResults): string {
  return prettyTable(['aAcc', 'mIoU', 'mAcc'], [[pyFloat(r.aAcc), pyFloat(r.mIoU), pyFloat(r.mAcc)]]);
}

/** Both tables with mmseg's headings, ready for a log. */
export function formatResults(r: IoUResults): string {
  return `per class results:\n${formatClassTable(r)}\nSummary:\n${formatSummaryTable(r)}`;
}

const fixed2 = (x: number): string => (Number.isNaN(x) ? 'nan' : x.toFixed(2));

/** Markdown: a summary line and a per-class table, values with 2 decimals. */
export function toMarkdown(r: IoUResults, title = 'Evaluation'): string {
  const lines = [
    `### ${title}`,
    '',
    `images: ${r.images} | **mIoU ${fixed2(r.mIoU)}** | mAcc ${fixed2(r.mAcc)} | aAcc ${fixed2(r.aAcc)}`,
    '',
    '| Class | IoU | Acc |',
    '| --- | ---: | ---: |',
    // Escape '|' in names; keep trailing spaces visible as written (e.g. 'bed ').
    ...r.perClass.map((c) => `| ${c.name.replace(/\|/g, '\\|')} | ${fixed2(c.iou)} | ${fixed2(c.acc)} |`),
  ];
  return `${lines.join('\n')}\n`;
}

export interface ResultsJson {
  aAcc: number | null;
  mIoU: number | null;
  mAcc: number | null;
  images: number;
  per_class: { class: string; IoU: number | null; Acc: number | null }[];
}

/** JSON-ready object (percent values, NaN as null). */
export function toJSON(r: IoUResults): ResultsJson {
  const n = (x: number): number | null => (Number.isNaN(x) ? null : x);
  return {
    aAcc: n(r.aAcc),
    mIoU: n(r.mIoU),
    mAcc: n(r.mAcc),
    images: r.images,
    per_class: r.perClass.map((c) => ({ class: c.name, IoU: n(c.iou), Acc: n(c.acc) })),
  };
}
