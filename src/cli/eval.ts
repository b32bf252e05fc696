/** `beitseg eval`: mIoU / mAcc / aAcc of a model on an ADE20K-layout (or configured) dataset. */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { DatasetConfig } from '../data/datasets.js';
import { isDict } from '../config/merge.js';
import { defineCommand } from './commands.js';
import { addDistributedOptions, launchIfRequested, type DistributedCliOptions } from './distributed_options.js';
import { checkOutFile, defaultOutDir } from './outputs.js';
import {
  addOptions,
  ampDType,
  INFERENCE_OPTIONS,
  ONNX_WEIGHTS_HELP,
  parsePositiveInt,
  requireWeights,
  sharedOption,
  type AmpChoice,
} from './options.js';

interface EvalOptions extends DistributedCliOptions {
  config: string;
  weights?: string;
  randomWeights?: boolean;
  data?: string;
  split: string;
  tta?: boolean;
  ttaScales?: number[];
  ttaMinSize?: number;
  device?: string;
  mode?: 'whole' | 'slide';
  limit?: number;
  out?: string;
  skipBad?: boolean;
  windowBatch: number;
  fresh?: boolean;
  cfgOptions?: string[];
  maxPixels?: number;
  quantize?: 'int8';
  cudaGraphs?: boolean;
  amp?: AmpChoice;
}

/** The dataset dict: --data ROOT in ADE20K layout (with the config's test/val dataset settings), else that dataset. */
function datasetConfig(cfg: Record<string, unknown>, opts: EvalOptions): DatasetConfig {
  if (opts.data) {
    // The config's own dataset settings (type, reduce_zero_label, metainfo) under the new root:
    // a dataset without ADE20K's "other" label must not have its labels shifted by one.
    const dl = isDict(cfg.test_dataloader) ? cfg.test_dataloader : cfg.val_dataloader;
    const fromCfg = isDict(dl) && isDict(dl.dataset) ? dl.dataset : null;
    const type = typeof fromCfg?.type === 'string' ? fromCfg.type : 'ADE20KDataset';
    const extra: Partial<DatasetConfig> =
      fromCfg && isDict(fromCfg.metainfo) ? { metainfo: fromCfg.metainfo as DatasetConfig['metainfo'] } : {};
    if (typeof fromCfg?.reduce_zero_label === 'boolean') extra.reduce_zero_label = fromCfg.reduce_zero_label;
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
    ...(opts.amp && opts.amp !== 'fp32' ? { amp: opts.amp } : {}),
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
  const cmd = defineCommand(program, 'eval');
  addOptions(cmd, [...INFERENCE_OPTIONS.filter((o) => o !== 'weights')]).addOption(
    sharedOption('weights', { help: ONNX_WEIGHTS_HELP }),
  );
  addOptions(cmd, ['tta', 'ttaScales', 'ttaMinSize', 'maxPixels'])
    .option('--data <root>', 'dataset root in ADE20K layout (images/<split>, annotations/<split>)')
    .option('--split <name>', 'split folder name', 'validation')
    .option('--limit <n>', 'only the first N images', parsePositiveInt)
    .option(
      '--out <file>',
      'results JSON, a .md table and a progress file beside it (default: work_dirs/<config name>/eval/results.json)',
    )
    .option('--skip-bad', 'warn and skip unreadable or mismatched image/label pairs')
    .option('--fresh', 'ignore the progress of an earlier interrupted run');
  addDistributedOptions(cmd).action(run);
}

async function run(opts: EvalOptions): Promise<void> {
  requireWeights(opts);
  const out = opts.out ?? path.join(defaultOutDir('eval', opts.config), 'results.json');
  checkOutFile(out);
  if (await launchIfRequested(opts)) return;
  const [
    { buildDataset },
    { initModel },
    { evaluateDataset },
    { formatResults, toJSON, toMarkdown },
    { writeFileAtomic },
    { setMaxPixels },
    { joinFromEnv },
    { evaluationShard },
    { progressBar },
    { loadCliConfig },
  ] = await Promise.all([
    import('../data/datasets.js'),
    import('../inference/api.js'),
    import('../evaluation/evaluate.js'),
    import('../evaluation/report.js'),
    import('../data/image_io.js'),
    import('../data/limits.js'),
    import('../distributed/init.js'),
    import('../evaluation/distributed.js'),
    import('./progress.js'),
    import('./config_arg.js'),
  ]);
  if (opts.maxPixels) setMaxPixels(opts.maxPixels);
  // distributed: every rank evaluates images rank, rank + W, ...; areas are summed over ranks
  const joined = await joinFromEnv({
    device: opts.device,
    timeoutMs: opts.distTimeout * 1000,
    backend: opts.distBackend,
  });
  const main = !joined || joined.pg.rank === 0;
  const cfg = loadCliConfig(opts.config, opts.cfgOptions, { warn: main ? undefined : () => undefined });
  // an exported .onnx runs on ONNX Runtime (its own classes and test settings); the config gives the dataset
  const { isOnnxFile } = await import('../inference/model_meta.js');
  const model = isOnnxFile(opts.weights)
    ? await (await import('../inference/backends/onnxruntime.js')).loadOnnxModel(opts.weights!)
    : await initModel(cfg, opts.weights, {
        device: joined?.device ?? opts.device,
        verbose: main,
        precision: opts.quantize ? { quantize: opts.quantize } : undefined,
        cudaGraphs: opts.cudaGraphs,
      });
  const config = 'runner' in model ? cfg : model.config;
  const { autoAmp } = await import('../inference/precision.js');
  const amp = ampDType(opts.amp);
  const device = 'runner' in model ? 'cpu' : model.device;
  const dataset = await buildDataset(datasetConfig(config, opts), { skipBad: opts.skipBad });
  // class names for the table: the config's metainfo, else the dataset's own (metainfo.json)
  if (!('runner' in model) && !hasMetainfo(config) && dataset.metainfo.classes.length === model.model.numClasses)
    model.meta = dataset.metainfo;
  const total = Math.min(dataset.length, opts.limit ?? dataset.length);
  const base = out.replace(/\.json$/, '');
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
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
    amp: amp === 'auto' ? autoAmp(device) : amp,
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
  const json = { config: opts.config, weights: opts.weights ?? null, dataset: dataset.root, ...toJSON(results) };
  await writeFileAtomic(out, new TextEncoder().encode(`${JSON.stringify(json, null, 2)}\n`));
  await writeFileAtomic(
    `${base}.md`,
    new TextEncoder().encode(toMarkdown(results, `beitseg eval: ${path.basename(opts.config)}`)),
  );
  process.stderr.write(`wrote ${out} and ${base}.md\n`);
}
