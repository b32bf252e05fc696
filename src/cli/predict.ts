/** `beitseg predict`: segment images; writes label PNGs, colour overlays and JSON summaries. */
import { type Command, Option } from 'commander';
import { DEFAULT_MAX_WINDOWS } from '../data/limits.js';
import { CONFIG_HELP } from './config_help.js';
import type { OnnxPredictOptions } from './predict_onnx.js';
import { defineCommand } from './commands.js';
import { checkOutDir, checkOutFile, defaultOutDir } from './outputs.js';
import {
  addOptions,
  ampDType,
  INFERENCE_OPTIONS,
  ONNX_WEIGHTS_HELP,
  parsePositiveInt,
  parseUnit,
  requireWeights,
  sharedOption,
  UsageError,
  type AmpChoice,
} from './options.js';

/** What commander parses for predict: the options the ONNX Runtime path reads, and the libtorch path's. */
interface PredictOptions extends Omit<OnnxPredictOptions, 'out' | 'amp' | 'quantize'> {
  weights?: string;
  randomWeights?: boolean;
  out?: string;
  amp?: AmpChoice;
  maxPixels?: number;
  quantize?: 'int8';
  maxWindows: number;
}

const seconds = (s: number): string => (s < 90 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`);

export function register(program: Command): void {
  const cmd = defineCommand(program, 'predict').argument('<images...>', 'image files, directories or glob patterns');
  cmd.addOption(new Option('--config <file>', `${CONFIG_HELP} (not needed with an .onnx model)`));
  addOptions(cmd, [...INFERENCE_OPTIONS.filter((o) => o !== 'config' && o !== 'weights')]).addOption(
    sharedOption('weights', { help: ONNX_WEIGHTS_HELP }),
  );
  addOptions(cmd, ['tta', 'ttaScales', 'ttaMinSize', 'maxPixels', 'json'])
    .option('--no-resize', 'skip the test Resize: feed each image at its own size')
    .option('--out <dir>', 'output folder (default: work_dirs/<config name>/predict)')
    .option('--save-logits <file>', 'write logits (or --tta probabilities) [1,C,H,W] float32 as safetensors')
    .option('--opacity <a>', 'overlay opacity in [0,1]', parseUnit, 0.5)
    .option('--color', 'also write <stem>_color.png (the label map in class colours) and <stem>_legend.png')
    .option(
      '--max-windows <n>',
      'refuse, before predicting any, an image needing more slide windows (or TTA passes) than this',
      parsePositiveInt,
      DEFAULT_MAX_WINDOWS,
    )
    .action(run);
}

async function run(images: string[], opts: PredictOptions): Promise<void> {
  requireWeights(opts);
  const { isOnnxFile } = await import('../inference/model_meta.js');
  const onnx = isOnnxFile(opts.weights);
  if (!onnx && !opts.config) throw new UsageError("required option '--config <file>' not specified");
  const out = opts.out ?? defaultOutDir('predict', opts.config ?? opts.weights!.replace(/\.onnx$/i, ''));
  checkOutDir(out);
  if (opts.saveLogits) checkOutFile(opts.saveLogits, '--save-logits');
  const { expandImageArgs } = await import('./inputs.js');
  const { outputStems, uniqueInputs } = await import('./output_names.js');
  const files = uniqueInputs(await expandImageArgs(images));
  const stems = outputStems(files, out);
  if (opts.saveLogits && files.length > 1) {
    throw new UsageError('--save-logits takes one image (logits are large); run predict per image to save several');
  }
  if (onnx) {
    // an exported graph runs on ONNX Runtime from its own metadata, without libtorch
    const { predictOnnx } = await import('./predict_onnx.js');
    await predictOnnx(files, stems, opts.weights!, { ...opts, out });
    return;
  }
  const config = opts.config!;
  const [api, { writePrediction }, io, { setMaxPixels }, { progressBar }] = await Promise.all([
    import('../inference/api.js'),
    import('../inference/outputs.js'),
    import('../data/image_io.js'),
    import('../data/limits.js'),
    import('./progress.js'),
  ]);
  const { initModel, inferenceModel, DEFAULT_TTA_SCALES } = api;
  const { describePlan, planWindows } = await import('../inference/window_plan.js');
  const { loadCliConfig } = await import('./config_arg.js');
  if (opts.maxPixels) setMaxPixels(opts.maxPixels);
  const cfg = loadCliConfig(config, opts.cfgOptions);
  const model = await initModel(cfg, opts.weights, {
    device: opts.device,
    verbose: true,
    precision: opts.quantize ? { quantize: opts.quantize } : undefined,
    cudaGraphs: opts.cudaGraphs,
  });
  if (!opts.weights) process.stderr.write('warning: --random-weights: the model has random weights\n');
  const { autoAmp } = await import('../inference/precision.js');
  const ampChoice = ampDType(opts.amp);
  const amp = ampChoice === 'auto' ? autoAmp(model.device) : ampChoice;
  // Every image's work from its header, before any output: a large image under a config
  // without a test Resize slides thousands of windows.
  const views = {
    mode: opts.mode,
    noResize: !opts.resize,
    tta: opts.tta ? { scales: opts.ttaScales, minSize: opts.ttaMinSize } : (false as const),
  };
  let totalWindows = 0;
  for (const file of files) {
    const { width, height } = await io.readImageSize(file);
    const plan = planWindows(model, width, height, views, DEFAULT_TTA_SCALES);
    if (plan.windows > opts.maxWindows) {
      throw new Error(
        `${file}: ${describePlan(plan)} is over --max-windows ${opts.maxWindows} (raise --max-windows, ` +
          'or keep the test Resize, or use --mode whole)',
      );
    }
    if (plan.crop) totalWindows += plan.windows;
  }
  if (totalWindows > 0) process.stderr.write(`predict: ${totalWindows} slide window(s) in all\n`);
  let started = 0;
  let estimated = totalWindows === 0;
  const onWindow = (done: number): void => {
    if (estimated) return;
    estimated = true;
    const per = (performance.now() - started) / 1000 / done;
    process.stderr.write(
      `predict: about ${seconds(per * totalWindows)} in all (${(per * 1000).toFixed(0)} ms per window on ` +
        'the first batch)\n',
    );
  };
  const fs = await import('node:fs');
  fs.mkdirSync(out, { recursive: true });
  const bar = progressBar(files.length, 'predict');
  for (const [i, file] of files.entries()) {
    const img = await io.readImage(file);
    started ||= performance.now();
    const result = await inferenceModel(model, img, {
      ...views,
      windowBatch: opts.windowBatch,
      amp,
      onWindow,
    });
    const summary = await writePrediction(stems[i], img, result, model.meta, {
      opacity: opts.opacity,
      saveLogits: opts.saveLogits,
      color: opts.color,
    });
    if (opts.json) process.stdout.write(`${JSON.stringify({ input: file, ...summary })}\n`);
    result.logits.dispose();
    bar.update(i + 1);
  }
  bar.stop();
  process.stderr.write(`wrote ${files.length} prediction(s) to ${out}\n`);
}
