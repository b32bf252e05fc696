/**
 * `convert <src> <dst>`: BEiT checkpoint -> mmseg-keyed safetensors, or a torch.save .pth for a
 * .pth/.pt destination. Parsing and printing only; the work is `convertFile` in
 * src/checkpoint/convert/convert_file.ts.
 */
import type { Command } from 'commander';
import { addCheckpointReadOptions, parsePositiveInt, UsageError } from './options.js';
import type { ConvertFileSummary } from '../checkpoint/convert/convert_file.js';
import { groupKeys, keyPattern } from '../checkpoint/convert/beit2mmseg.js';
import type { PickleValue } from '../checkpoint/formats/pickle_writer.js';
import { isDict, loadConfig } from '../config/schema.js';
import { defineCommand } from './commands.js';

/** meta.dataset_meta {classes, palette} from a config, as mmseg's init_model reads it from a .pth. */
async function datasetMetaOf(configFile: string): Promise<{ [key: string]: PickleValue }> {
  const { datasetMeta } = await import('../inference/metainfo.js');
  const cfg = loadConfig(configFile);
  const head = isDict(cfg.model) && isDict(cfg.model.decode_head) ? cfg.model.decode_head : null;
  if (!head || typeof head.num_classes !== 'number') {
    throw new Error(`${configFile}: model.decode_head.num_classes is missing`);
  }
  const meta = datasetMeta(cfg, head.num_classes);
  return { dataset_meta: { classes: { tuple: meta.classes }, palette: meta.palette.map((c) => [...c]) } };
}

/** Rename pairs grouped by pattern, e.g. "blocks.*.norm1.weight -> layers.*.ln1.weight (x24)". */
function groupRenames(pairs: [string, string][]): string[] {
  const counts = new Map<string, number>();
  for (const [from, to] of pairs) {
    const line = `${keyPattern(from)} -> ${keyPattern(to)}`;
    counts.set(line, (counts.get(line) ?? 0) + 1);
  }
  return [...counts].map(([line, n]) => (n > 1 ? `${line} (x${n})` : line));
}

function groupWithReasons(items: { key: string; reason: string }[]): string[] {
  const counts = new Map<string, number>();
  for (const { key, reason } of items) {
    const line = `${keyPattern(key)}: ${reason}`;
    counts.set(line, (counts.get(line) ?? 0) + 1);
  }
  return [...counts].map(([line, n]) => (n > 1 ? `${line} (x${n})` : line));
}

export function formatConvertSummary(s: ConvertFileSummary): string {
  const lines: string[] = [];
  const fmt = (n: number) => n.toLocaleString('en-US');
  lines.push(`read    ${s.src}: ${s.source.summary}`);
  lines.push(
    `layout  ${s.report.layout} -> mmseg ${s.level} keys` +
      (s.level === 'segmentor'
        ? ' (backbone./neck./decode_head./auxiliary_head.)'
        : ' (no backbone. prefix, as beit2mmseg)'),
  );
  const kind = s.format === 'pth' ? "torch.save zip, {'meta', 'state_dict'}" : 'safetensors';
  lines.push(
    `wrote   ${s.dst} (${kind}): ${fmt(s.stats.tensors)} tensors, ${fmt(s.stats.parameters)} parameters` +
      (s.stats.bufferElements ? ` + ${fmt(s.stats.bufferElements)} buffer elements` : '') +
      `, ${fmt(s.stats.bytes)} bytes`,
  );
  const section = (title: string, items: string[]) => {
    if (items.length === 0) return;
    lines.push(`${title}:`);
    for (const i of items) lines.push(`  ${i}`);
  };
  section('Hugging Face config.json carried over', s.hf?.notes ?? []);
  if (s.hf?.mmsegModel && s.format === 'safetensors') {
    lines.push('        (the mmseg model section is stored in the safetensors metadata as "mmseg_model")');
  }
  section(`renamed ${s.report.renamed.length} keys`, groupRenames(s.report.renamed));
  section(`dropped ${s.report.dropped.length} keys`, groupWithReasons(s.report.dropped));
  section(`added ${s.report.added.length} keys`, groupWithReasons(s.report.added));
  section(
    `kept but unused by mmseg BEiT ${s.report.unused.length} keys`,
    groupKeys(s.report.unused).map(([p, n]) => (n > 1 ? `${p} (x${n})` : p)),
  );
  if (s.window !== null) {
    const byShape = new Map<string, number>();
    for (const r of s.resized)
      byShape.set(`${r.from} -> ${r.to} rows`, (byShape.get(`${r.from} -> ${r.to} rows`) ?? 0) + 1);
    lines.push(
      `window  ${s.window[0]}x${s.window[1]}: resized ${s.resized.length} relative_position_bias_table(s)` +
        (byShape.size ? ` (${[...byShape].map(([k, n]) => `${k} x${n}`).join(', ')})` : ' (already that size)') +
        `, dropped ${s.droppedIndex.length} relative_position_index buffer(s)`,
    );
  }
  return lines.join('\n');
}

export function register(program: Command): void {
  addCheckpointReadOptions(
    defineCommand(program, 'convert')
      .argument('<src>', 'input checkpoint (file or Hugging Face model folder)')
      .argument('<dst>', 'output: .safetensors, or .pth/.pt for a torch.save checkpoint {meta, state_dict}')
      .option(
        '--img-size <n>',
        'resize relative position tables for this (square) input size, e.g. 640',
        parsePositiveInt,
      )
      .option('--window <h w...>', 'resize relative position tables for this patch grid (two integers)')
      .option('--patch-size <n>', 'patch size used with --img-size', parsePositiveInt, 16)
      .option('--force', 'overwrite <dst> if it exists', false)
      .option('--config <file>', 'with a .pth output: class names and palette of this config go to meta.dataset_meta'),
  ).action(
    async (
      src: string,
      dst: string,
      o: {
        imgSize?: number;
        window?: string[];
        patchSize: number;
        force: boolean;
        verifyCrc: boolean;
        allowUnknownGlobals: boolean;
        config?: string;
      },
    ) => {
      let window: [number, number] | undefined;
      if (o.window !== undefined) {
        if (o.window.length !== 2) throw new UsageError(`--window takes two integers (H W), got ${o.window.length}`);
        const [h, w] = o.window.map((v) => {
          try {
            return parsePositiveInt(v);
          } catch (e) {
            throw new UsageError(`--window: ${(e as Error).message}`);
          }
        });
        window = [h!, w!];
      }
      const { convertFile, outputFormatOf } = await import('../checkpoint/convert/convert_file.js');
      if (o.config !== undefined && outputFormatOf(dst) !== 'pth') {
        throw new UsageError(`--config only fills a .pth's meta.dataset_meta; ${dst} is written as safetensors`);
      }
      const summary = await convertFile(src, dst, {
        imgSize: o.imgSize,
        window,
        patchSize: o.patchSize,
        force: o.force,
        verifyCrc: o.verifyCrc,
        opaqueGlobals: o.allowUnknownGlobals,
        ...(o.config !== undefined ? { meta: await datasetMetaOf(o.config) } : {}),
      });
      console.log(formatConvertSummary(summary));
    },
  );
}
