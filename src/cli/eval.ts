/** `beitseg eval`: mIoU / mAcc / aAcc of a model on an ADE20K-layout (or configured) dataset. */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { buildDataset, type DatasetConfig } from '../data/datasets.js';
import { initModel } from '../inference/api.js';
import { parseQuantize, type Quantize } from '../inference/precision.js';
import { evaluateDataset } from '../evaluation/evaluate.js';
import { formatResults, toJSON, toMarkdown } from '../evaluation/report.js';
import { writeFileAtomic } from '../data/image_io.js';
import { isDict } from '../models/config.js';
import { progressBar } from './progress.js';
import { parsePositiveInt } from './options.js';

interface EvalOptions {
  config: string;
  weights?: string;
  data?: string;
  split: string;
  tta?: boolean;
  device?: string;
  mode?: 'whole' | 'slide';
  limit?: number;
  out: string;
  skipBad?: boolean;
  windowBatch: number;
  fresh?: boolean;
  quantize?: Quantize;
}

/** The dataset dict: --data ROOT as ADE20K layout, else the config's test/val dataset. */
function datasetConfig(cfg: Record<string, unknown>, opts: EvalOptions): DatasetConfig {
  if (opts.data) {
    const fromCfg = isDict(cfg.test_dataloader) && isDict(cfg.test_dataloader.dataset) ? cfg.test_dataloader.dataset : null;
    const type = typeof fromCfg?.type === 'string' ? fromCfg.type : 'ADE20KDataset';
    const extra = fromCfg && isDict(fromCfg.metainfo) ? { metainfo: fromCfg.metainfo as DatasetConfig['metainfo'] } : {};
    return { type, data_root: opts.data, data_prefix: { img_path: `images/${opts.split}`, seg_map_path: `annotations/${opts.split}` }, ...extra };
  }
  for (const key of ['test_dataloader', 'val_dataloader']) {
    const dl = cfg[key];
    if (isDict(dl) && isDict(dl.dataset)) {
      const { pipeline: _pipeline, ...rest } = dl.dataset as DatasetConfig;
      return rest;
    }
  }
  throw new Error(`${opts.config}: no test_dataloader.dataset; pass --data ROOT`);
}

/** Identifies what the numbers depend on, so a progress file is only resumed by the same run. */
function runKey(opts: EvalOptions): string {
  const stamp = (f?: string) => {
    if (!f) return null;
    const st = fs.statSync(f);
    return { file: path.resolve(f), size: st.size, mtime: st.mtimeMs };
  };
  return JSON.stringify({ config: stamp(opts.config), weights: stamp(opts.weights), data: opts.data ?? null, split: opts.split,
    mode: opts.mode ?? null, tta: opts.tta ?? false, ...(opts.quantize ? { quantize: opts.quantize } : {}) });
}

function hasMetainfo(cfg: Record<string, unknown>): boolean {
  return isDict(cfg.metainfo) || ['test_dataloader', 'val_dataloader'].some((k) => {
    const dl = cfg[k];
    return isDict(dl) && isDict(dl.dataset) && isDict(dl.dataset.metainfo);
  });
}

export function register(program: Command): void {
  program.command('eval')
    .description('evaluate mIoU / mAcc / aAcc on a dataset (resumable)')
    .requiredOption('--config <file>', 'model config (JSON in mmseg structure)')
    .option('--weights <file>', 'weights (.safetensors or .pth)')
    .option('--data <root>', 'dataset root in ADE20K layout (images/<split>, annotations/<split>)')
    .option('--split <name>', 'split folder name', 'validation')
    .option('--tta', 'multi-scale + flip test-time augmentation')
    .option('--device <device>', 'cpu, cuda or cuda:N (default: cuda when available)')
    .option('--mode <mode>', 'whole or slide (default: the config\'s test_cfg)')
    .option('--limit <n>', 'only the first N images', parsePositiveInt)
    .option('--out <file>', 'results JSON (a .md table and a progress file are written beside it)', 'results.json')
    .option('--skip-bad', 'warn and skip unreadable or mismatched image/label pairs')
    .option('--window-batch <n>', 'slide windows per forward pass', parsePositiveInt, 1)
    .option('--fresh', 'ignore the progress of an earlier interrupted run')
    .option('--quantize <mode>', 'int8: the backbone\'s linear layers in int8 (CPU; dynamic activations)', parseQuantize)
    .action(async (opts: EvalOptions) => {
      const model = await initModel(opts.config, opts.weights, {
        device: opts.device, verbose: true, precision: opts.quantize ? { quantize: opts.quantize } : undefined,
      });
      const dataset = await buildDataset(datasetConfig(model.config, opts), { skipBad: opts.skipBad });
      // class names for the table: the config's metainfo, else the dataset's own (metainfo.json)
      if (!hasMetainfo(model.config) && dataset.metainfo.classes.length === model.model.numClasses) model.meta = dataset.metainfo;
      const total = Math.min(dataset.length, opts.limit ?? dataset.length);
      const base = opts.out.replace(/\.json$/, '');
      const progressFile = `${base}.progress.jsonl`;
      if (opts.fresh) fs.rmSync(progressFile, { force: true });
      if (fs.existsSync(progressFile)) process.stderr.write(`resuming from ${progressFile}\n`);
      const bar = progressBar(total, 'eval', ' | mIoU {miou}');
      const results = await evaluateDataset(model, dataset, {
        mode: opts.mode, tta: opts.tta ?? false, windowBatch: opts.windowBatch, limit: opts.limit, skipBad: opts.skipBad,
        progressFile, runKey: runKey(opts),
        onImage: (done, _n, running) => bar.update(done, { miou: running.numImages ? running.compute().mIoU.toFixed(2) : '-' }),
      });
      bar.stop();
      process.stdout.write(formatResults(results) + '\n');
      fs.mkdirSync(path.dirname(path.resolve(opts.out)), { recursive: true });
      const json = { config: opts.config, weights: opts.weights ?? null, dataset: dataset.root, ...toJSON(results) };
      await writeFileAtomic(opts.out, new TextEncoder().encode(JSON.stringify(json, null, 2) + '\n'));
      await writeFileAtomic(`${base}.md`, new TextEncoder().encode(toMarkdown(results, `beitseg eval: ${path.basename(opts.config)}`)));
      process.stderr.write(`wrote ${opts.out} and ${base}.md\n`);
    });
}
