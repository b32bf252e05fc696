/**
 * `inspect <file>`: keys, shapes, dtypes and parameter totals of a .pth or .safetensors file.
 * Parsing and printing only; the work is `inspectFile` in src/checkpoint/inspect_file.ts.
 */
import type { Command } from 'commander';
import { addCheckpointReadOptions } from './options.js';
import type { InspectReport } from '../checkpoint/inspect_file.js';
import { defineCommand } from './commands.js';
import { fileText, safeLine } from '../common/safe_text.js';

/**
 * The report as text. Every piece of text that comes from the file (keys, entry names, metadata,
 * group names) and the file's own name go through fileText: a hostile checkpoint cannot clear the
 * screen or forge lines.
 */
export function formatInspectReport(r: InspectReport, opts: { summaryOnly?: boolean } = {}): string {
  const fmt = (n: number) => n.toLocaleString('en-US');
  const ft = (s: string) => fileText(s, 200);
  const d = r.description;
  const lines: string[] = [];
  lines.push(`${ft(d.file)}: ${safeLine(d.summary)}`);
  if (d.topLevelKeys.length) lines.push(`top-level keys: ${d.topLevelKeys.map(ft).join(', ')}`);
  if (d.ignored.length)
    lines.push(
      `non-tensor entries skipped: ${d.ignored.slice(0, 10).map(ft).join(', ')}${d.ignored.length > 10 ? ', ...' : ''}`,
    );
  for (const [k, v] of Object.entries(d.metadata)) lines.push(`metadata ${ft(k)}: ${fileText(String(v), 2000)}`);
  lines.push(`layout: ${r.layout ?? 'not a recognised BEiT layout'}`);
  if (!opts.summaryOnly) {
    const keys = r.tensors.map((t) => ft(t.key));
    const keyWidth = Math.min(72, Math.max(...keys.map((k) => k.length), 3));
    lines.push('');
    lines.push(`${'key'.padEnd(keyWidth)}  ${'dtype'.padEnd(8)}  ${'shape'.padEnd(20)}  ${'numel'.padStart(13)}`);
    for (const [i, t] of r.tensors.entries()) {
      lines.push(
        `${keys[i]!.padEnd(keyWidth)}  ${t.dtype.padEnd(8)}  ${`[${t.shape.join(', ')}]`.padEnd(20)}  ` +
          `${fmt(t.numel).padStart(13)}${t.buffer ? '  (buffer)' : ''}`,
      );
    }
    lines.push('');
  }
  const s = r.stats;
  lines.push(
    `tensors: ${fmt(s.tensors)}   parameters: ${fmt(s.parameters)}   buffer elements: ${fmt(s.bufferElements)}   ` +
      `bytes: ${fmt(s.bytes)}`,
  );
  lines.push(`by group: ${s.byGroup.map(([g, n]) => `${ft(g)} ${fmt(n)}`).join(', ')}`);
  lines.push(
    `by dtype: ${Object.entries(s.byDtype)
      .map(([dt, v]) => `${dt} ${v.tensors} tensors / ${fmt(v.elements)} elements`)
      .join(', ')}`,
  );
  return lines.join('\n');
}

export function register(program: Command): void {
  addCheckpointReadOptions(
    defineCommand(program, 'inspect')
      .argument('<file>', 'checkpoint file')
      .option('--summary', 'totals only, without the per-tensor listing', false)
      .option('--json', 'print the report as JSON', false),
  ).action(
    async (file: string, o: { summary: boolean; json: boolean; verifyCrc: boolean; allowUnknownGlobals: boolean }) => {
      const { inspectFile } = await import('../checkpoint/inspect_file.js');
      const report = await inspectFile(file, { verifyCrc: o.verifyCrc, opaqueGlobals: o.allowUnknownGlobals });
      console.log(o.json ? JSON.stringify(report, null, 2) : formatInspectReport(report, { summaryOnly: o.summary }));
    },
  );
}
