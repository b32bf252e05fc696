/** `beitseg predict`: segment images; writes label PNGs, colour overlays and JSON summaries. */
import fs from 'node:fs';
import type { Command } from 'commander';
import type { Quantize } from '../inference/precision.js';
import { DEFAULT_TTA_SCALES } from '../inference/resize_plan.js';
import { isOnnxFile } from '../inference/model_meta.js';
import { readImage } from '../data/image_io.js';
import { DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, setMaxPixels } from '../data/limits.js';
import { expandImageArgs } from './inputs.js';
import { outputStems, uniqueInputs } from './output_names.js';
import { progressBar } from './progress.js';
import { parseNumberList, parsePositiveInt, parseUnit, addInferenceKernelOptions, ampDType } from './options.js';
import { addCfgOptions, CONFIG_HELP, loadCliConfig } from './config_arg.js';

interface PredictOptions {
  config?: string;
  weights?: string;
  device?: string;
  mode?: 'whole' | 'slide';
  tta?: boolean;
  ttaScales?: number[];
  ttaMinSize?: number;
  resize: boolean;
  out: string;
  saveLogits?: string;
  opacity: number;
  windowBatch: number;
  amp?: 'bf16' | 'fp16';
  cfgOptions?: string[];
  maxPixels?: number;
  quantize?: Quantize;
  cudaGraphs?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('predict')
    .description('segment images (files, directories or globs) with a BEiT-UperNet model')
    .argument('<images...>', 'image files, directories or glob patterns')
    .option('--config <file>', `${CONFIG_HELP} (not needed with an .onnx model)`)
    .option(
      '--weights <file>',
      'weights: .safetensors or .pth (mmseg, or official unilm BEiT converted on the fly), ' +
        'a Hugging Face BEiT folder with config.json (its architecture is used), ' +
        'or an .onnx from beitseg export (runs on ONNX Runtime, no libtorch)',
    )
    .option('--device <device>', 'cpu, cuda or cuda:N (default: cuda when available)')
    .option('--mode <mode>', "whole or slide (default: the config's model.test_cfg.mode)")
    .option(
      '--tta',
      'multi-scale + flip test-time augmentation, probabilities averaged ' +
        "(scales and flips: the config's tta_pipeline, else the default below)",
    )
    .option('--tta-scales <list>', `scale ratios for --tta (default ${DEFAULT_TTA_SCALES.join(',')})`, parseNumberList)
    .option(
      '--tta-min-size <n>',
      "mmseg 0.x min_size for --tta scales (640 reproduces BEiT's ms+flip configs)",
      parsePositiveInt,
    )
    .option('--no-resize', 'skip the test Resize: feed each image at its own size')
    .option('--out <dir>', 'output directory', 'out')
    .option('--save-logits <file>', 'write logits (or --tta probabilities) [1,C,H,W] float32 as safetensors')
    .option('--opacity <a>', 'overlay opacity in [0,1]', parseUnit, 0.5)
    .option('--window-batch <n>', 'slide windows per forward pass', parsePositiveInt, 1)
    .option('--amp <dtype>', 'compute in bf16 (CPU/GPU) or fp16 (GPU) under autocast')
    .option(
      '--max-pixels <n>',
      `refuse images with more pixels (default ${DEFAULT_MAX_PIXELS}, or ${MAX_PIXELS_ENV})`,
      parsePositiveInt,
    );
  addCfgOptions(addInferenceKernelOptions(cmd)).action(async (images: string[], opts: PredictOptions) => {
    if (opts.maxPixels) setMaxPixels(opts.maxPixels);
    const files = uniqueInputs(await expandImageArgs(images));
    const stems = outputStems(files, opts.out);
    if (opts.saveLogits && files.length > 1) {
      throw new Error('--save-logits takes one image (logits are large); run predict per image to save several');
    }
    if (isOnnxFile(opts.weights)) {
      const { predictOnnx } = await import('./predict_onnx.js');
      await predictOnnx(files, stems, opts.weights!, opts);
      return;
    }
    if (!opts.config) throw new Error("required option '--config <file>' not specified");
    const { initModel, inferenceModel } = await import('../inference/api.js');
    const { writePrediction } = await import('../inference/outputs.js');
    const amp = ampDType(opts.amp);
    const cfg = loadCliConfig(opts.config, opts.cfgOptions);
    const model = await initModel(cfg, opts.weights, {
      device: opts.device,
      verbose: true,
      precision: opts.quantize ? { quantize: opts.quantize } : undefined,
      cudaGraphs: opts.cudaGraphs,
    });
    if (!opts.weights) process.stderr.write('warning: no --weights given: the model has random weights\n');
    fs.mkdirSync(opts.out, { recursive: true });
    const bar = progressBar(files.length, 'predict');
    for (const [i, file] of files.entries()) {
      const img = await readImage(file);
      const result = await inferenceModel(model, img, {
        mode: opts.mode,
        noResize: !opts.resize,
        windowBatch: opts.windowBatch,
        amp,
        tta: opts.tta ? { scales: opts.ttaScales, minSize: opts.ttaMinSize } : false,
      });
      await writePrediction(stems[i], img, result, model.meta, { opacity: opts.opacity, saveLogits: opts.saveLogits });
      result.logits.dispose();
      bar.update(i + 1);
    }
    bar.stop();
    process.stderr.write(`wrote ${files.length} prediction(s) to ${opts.out}\n`);
  });
}
