/** `beitseg eval`: mIoU / mAcc / aAcc of a model on an ADE20K-layout (or configured) dataset. */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { buildDataset, type DatasetConfig } from '../data/datasets.js';
import { initModel } from '../inference/api.js';
import { isOnnxFile } from '../inference/model_meta.js';
import type { Quantize } from '../inference/precision.js';
import { evaluateDataset } from '../evaluation/evaluate.js';
import { formatResults, toJSON, toMarkdown } from '../evaluation/report.js';
import { writeFileAtomic } from '../data/image_io.js';
import { isDict } from '../models/config.js';
import { progressBar } from './progress.js';
import { parseNumberList, parsePositiveInt, addInferenceKernelOptions } from './options.js';
import { addCfgOptions, CONFIG_HELP, loadCliConfig } from './config_arg.js';
import { DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, setMaxPixels } from '../data/limits.js';
import { joinFromEnv } from '../distributed/init.js';
import { evaluationShard } from '../evaluation/distributed.js';
import { addDistributedOptions, launchIfRequested, type DistributedCliOptions } from './distributed_options.js';

interface EvalOptions extends DistributedCliOptions {
  config: string;
  weights?: string;
  data?: string;
  split: string;
  tta?: boolean;
  ttaScales?: number[];
  ttaMinSize?: number;
  device?: string;
  mode?: 'whole' | 'slide';
  limit?: number;
  out: string;
  skipBad?: boolean;
  windowBatch: number;
  fresh?: boolean;
  cfgOptions?: string[];
  maxPixels?: number;
  quantize?: Quantize;
  cudaGraphs?: boolean;
}

/** The dataset dict: --data ROOT as ADE20K layout, else the config's test/val dataset. */
function datasetConfig(cfg: Record<string, unknown>, opts: EvalOptions): DatasetConfig {
  if (opts.data) {
    const fromCfg =
      isDict(cfg.test_dataloader) && isDict(cfg.test_dataloader.dataset) ? cfg.test_dataloader.dataset : null;
    const type = typeof fromCfg?.type === 'string' ? fromCfg.type : 'ADE20KDataset';
    const extra =
      fromCfg && isDict(fromCfg.metainfo) ? { metainfo: fromCfg.metainfo as DatasetConfig['metainfo'] } : {};
    return {
      type,
      data_root: opts.data,
      data_prefix: { img_path: `images/${opts.split}`, seg_map_path: `annotations/${opts.split}` },
      ...extra,
    };
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
function runKey(opts: EvalOptions, merged: Record<string, unknown>): string {
  const stamp = (f?: string) => {
    if (!f) return null;
    const st = fs.statSync(f);
    return { file: path.resolve(f), size: st.size, mtime: st.mtimeMs };
  };
  return JSON.stringify({
    config: stamp(opts.config),
    weights: stamp(opts.weights),
    data: opts.data ?? null,
    split: opts.split,
    mode: opts.mode ?? null,
    tta: opts.tta ?? false,
    ttaScales: opts.ttaScales ?? null,
    ttaMinSize: opts.ttaMinSize ?? null,
    cfgOptions: opts.cfgOptions ?? [],
    ...(opts.quantize ? { quantize: opts.quantize } : {}),
    // a .py config's _base_ files can change without the file itself changing
    merged: createHash('sha256').update(JSON.stringify(merged)).digest('hex'),
  });
}

function hasMetainfo(cfg: Record<string, unknown>): boolean {
  return (
    isDict(cfg.metainfo) ||
    ['test_dataloader', 'val_dataloader'].some((k) => {
      const dl = cfg[k];
      return isDict(dl) && isDict(dl.dataset) && isDict(dl.dataset.metainfo);
    })
  );
}

export function register(program: Command): void {
  const cmd = program
    .command('eval')
    .description('evaluate mIoU / mAcc / aAcc on a dataset (resumable)')
    .requiredOption('--config <file>', CONFIG_HELP)
    .option(
      '--weights <file>',
      'weights (.safetensors or .pth, a Hugging Face BEiT folder with config.json, or an exported .onnx)',
    )
    .option('--data <root>', 'dataset root in ADE20K layout (images/<split>, annotations/<split>)')
    .option('--split <name>', 'split folder name', 'validation')
    .option(
      '--tta',
      'multi-scale + flip test-time augmentation ' +
        "(scales and flips: the config's tta_pipeline, else 0.5..1.75 + flip)",
    )
    .option('--tta-scales <list>', 'scale ratios of the test scale for --tta, e.g. 0.5,1,1.5', parseNumberList)
    .option(
      '--tta-min-size <n>',
      "mmseg 0.x min_size for --tta scales (640 reproduces BEiT's ms+flip configs)",
      parsePositiveInt,
    )
    .option('--device <device>', 'cpu, cuda or cuda:N (default: cuda when available)')
    .option('--mode <mode>', "whole or slide (default: the config's test_cfg)")
    .option('--limit <n>', 'only the first N images', parsePositiveInt)
    .option('--out <file>', 'results JSON (a .md table and a progress file are written beside it)', 'results.json')
    .option('--skip-bad', 'warn and skip unreadable or mismatched image/label pairs')
    .option('--window-batch <n>', 'slide windows per forward pass', parsePositiveInt, 1)
    .option('--fresh', 'ignore the progress of an earlier interrupted run')
    .option(
      '--max-pixels <n>',
      `refuse images and labels with more pixels (default ${DEFAULT_MAX_PIXELS}, or ${MAX_PIXELS_ENV})`,
      parsePositiveInt,
    );
  addDistributedOptions(addCfgOptions(addInferenceKernelOptions(cmd))).action(async (opts: EvalOptions) => {
    if (await launchIfRequested(opts)) return;
    if (opts.maxPixels) setMaxPixels(opts.maxPixels);
    // distributed: every rank evaluates images rank, rank + W, ...; areas are summed over ranks
    const joined = await joinFromEnv({
      device: opts.device,
      timeoutMs: opts.distTimeout * 1000,
      backend: opts.distBackend,
    });
    const main = !joined || joined.pg.rank === 0;
    const cfg = loadCliConfig(opts.config, opts.cfgOptions, main ? undefined : () => undefined);
    // an exported .onnx runs on ONNX Runtime (its own classes and test settings); the config gives the dataset
    const model = isOnnxFile(opts.weights)
      ? await (await import('../inference/backends/onnxruntime.js')).loadOnnxModel(opts.weights!)
      : await initModel(cfg, opts.weights, {
          device: joined?.device ?? opts.device,
          verbose: main,
          precision: opts.quantize ? { quantize: opts.quantize } : undefined,
          cudaGraphs: opts.cudaGraphs,
        });
    const config = 'runner' in model ? cfg : model.config;
    const dataset = await buildDataset(datasetConfig(config, opts), { skipBad: opts.skipBad });
    // class names for the table: the config's metainfo, else the dataset's own (metainfo.json)
    if (!('runner' in model) && !hasMetainfo(config) && dataset.metainfo.classes.length === model.model.numClasses)
      model.meta = dataset.metainfo;
    const total = Math.min(dataset.length, opts.limit ?? dataset.length);
    const base = opts.out.replace(/\.json$/, '');
    const progressFile = joined
      ? `${base}.progress.rank${joined.pg.rank}-of-${joined.pg.worldSize}.jsonl`
      : `${base}.progress.jsonl`;
    if (opts.fresh) fs.rmSync(progressFile, { force: true });
    if (fs.existsSync(progressFile)) process.stderr.write(`resuming from ${progressFile}\n`);
    const shardTotal = joined ? Math.ceil((total - joined.pg.rank) / joined.pg.worldSize) : total;
    const bar = main
      ? progressBar(shardTotal, joined ? `eval (rank 0 of ${joined.pg.worldSize})` : 'eval', ' | mIoU {miou}')
      : null;
    let shardDone = 0;
    const results = await evaluateDataset(model, dataset, {
      mode: opts.mode,
      tta: opts.tta ? { scales: opts.ttaScales, minSize: opts.ttaMinSize } : false,
      windowBatch: opts.windowBatch,
      limit: opts.limit,
      skipBad: opts.skipBad,
      progressFile,
      runKey: runKey(opts, config),
      shard: joined ? evaluationShard(joined.pg) : undefined,
      onImage: (done, _n, running) => {
        shardDone = joined ? shardDone + 1 : done;
        bar?.update(shardDone, { miou: running.numImages ? running.compute().mIoU.toFixed(2) : '-' });
      },
    });
    bar?.stop();
    if (!main) return;
    process.stdout.write(`${formatResults(results)}\n`);
    fs.mkdirSync(path.dirname(path.resolve(opts.out)), { recursive: true });
    const json = { config: opts.config, weights: opts.weights ?? null, dataset: dataset.root, ...toJSON(results) };
    await writeFileAtomic(opts.out, new TextEncoder().encode(`${JSON.stringify(json, null, 2)}\n`));
    await writeFileAtomic(
      `${base}.md`,
      new TextEncoder().encode(toMarkdown(results, `beitseg eval: ${path.basename(opts.config)}`)),
    );
    process.stderr.write(`wrote ${opts.out} and ${base}.md\n`);
  });
}
