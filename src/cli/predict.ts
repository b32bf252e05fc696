/** `beitseg predict`: segment images; writes label PNGs, colour overlays and JSON summaries. */
import type { Command } from 'commander';
import { defineCommand } from './commands.js';
import { checkOutDir, checkOutFile, defaultOutDir } from './outputs.js';
import {
  addOptions,
  ampDType,
  INFERENCE_OPTIONS,
  parseUnit,
  requireWeights,
  UsageError,
  type AmpChoice,
} from './options.js';

interface PredictOptions {
  config: string;
  weights?: string;
  randomWeights?: boolean;
  device?: string;
  mode?: 'whole' | 'slide';
  tta?: boolean;
  ttaScales?: number[];
  ttaMinSize?: number;
  resize: boolean;
  out?: string;
  saveLogits?: string;
  opacity: number;
  windowBatch: number;
  amp?: AmpChoice;
  cfgOptions?: string[];
  maxPixels?: number;
  quantize?: 'int8';
  cudaGraphs?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = defineCommand(program, 'predict').argument('<images...>', 'image files, directories or glob patterns');
  addOptions(cmd, [...INFERENCE_OPTIONS, 'tta', 'ttaScales', 'ttaMinSize', 'maxPixels', 'json'])
    .option('--no-resize', 'skip the test Resize: feed each image at its own size')
    .option('--out <dir>', 'output folder (default: work_dirs/<config name>/predict)')
    .option('--save-logits <file>', 'write logits (or --tta probabilities) [1,C,H,W] float32 as safetensors')
    .option('--opacity <a>', 'overlay opacity in [0,1]', parseUnit, 0.5)
    .action(run);
}

async function run(images: string[], opts: PredictOptions): Promise<void> {
  requireWeights(opts);
  const out = opts.out ?? defaultOutDir('predict', opts.config);
  checkOutDir(out);
  if (opts.saveLogits) checkOutFile(opts.saveLogits, '--save-logits');
  const { expandImageArgs } = await import('./inputs.js');
  const { outputStems, uniqueInputs } = await import('./output_names.js');
  const files = uniqueInputs(await expandImageArgs(images));
  const stems = outputStems(files, out);
  if (opts.saveLogits && files.length > 1) {
    throw new UsageError('--save-logits takes one image (logits are large); run predict per image to save several');
  }
  const [{ initModel, inferenceModel }, { writePrediction }, { readImage }, { setMaxPixels }, { progressBar }] =
    await Promise.all([
      import('../inference/api.js'),
      import('../inference/outputs.js'),
      import('../data/image_io.js'),
      import('../data/limits.js'),
      import('./progress.js'),
    ]);
  const { loadCliConfig } = await import('./config_arg.js');
  if (opts.maxPixels) setMaxPixels(opts.maxPixels);
  const cfg = loadCliConfig(opts.config, opts.cfgOptions);
  const model = await initModel(cfg, opts.weights, {
    device: opts.device,
    verbose: true,
    precision: opts.quantize ? { quantize: opts.quantize } : undefined,
    cudaGraphs: opts.cudaGraphs,
  });
  if (!opts.weights) process.stderr.write('warning: --random-weights: the model has random weights\n');
  const fs = await import('node:fs');
  fs.mkdirSync(out, { recursive: true });
  const bar = progressBar(files.length, 'predict');
  for (const [i, file] of files.entries()) {
    const img = await readImage(file);
    const result = await inferenceModel(model, img, {
      mode: opts.mode,
      noResize: !opts.resize,
      windowBatch: opts.windowBatch,
      amp: ampDType(opts.amp),
      tta: opts.tta ? { scales: opts.ttaScales, minSize: opts.ttaMinSize } : false,
    });
    const summary = await writePrediction(stems[i], img, result, model.meta, {
      opacity: opts.opacity,
      saveLogits: opts.saveLogits,
    });
    if (opts.json) process.stdout.write(`${JSON.stringify({ input: file, ...summary })}\n`);
    result.logits.dispose();
    bar.update(i + 1);
  }
  bar.stop();
  process.stderr.write(`wrote ${files.length} prediction(s) to ${out}\n`);
}
