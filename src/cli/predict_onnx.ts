/**
 * `predict --weights model.onnx`: the same images, options and output files as the libtorch
 * path, computed by ONNX Runtime from the model's own metadata (no --config needed). Loads
 * nothing of libtorch.
 */
import fs from 'node:fs';
import { readImage } from '../data/image_io.js';
import { initModel, inferenceModel, writeHostPrediction } from '../inference/onnx_api.js';
import { progressBar } from './progress.js';

/** The predict options this path reads (predict.ts's options, structurally). */
export interface OnnxPredictOptions {
  config?: string;
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
  amp?: string;
  cfgOptions?: string[];
  quantize?: string;
  cudaGraphs?: boolean;
  color?: boolean;
  json?: boolean;
}

/** Options of the libtorch path that an exported graph has no use for: one clear line each. */
function refuseLibtorchOptions(opts: OnnxPredictOptions): void {
  const unusable: [unknown, string][] = [
    [opts.device && opts.device !== 'cpu' ? opts.device : undefined, '--device (ONNX Runtime runs on the CPU here)'],
    [opts.amp, '--amp (export with --fp16 instead)'],
    [opts.quantize, '--quantize (export with --quantize int8 instead)'],
    [opts.cudaGraphs, '--cuda-graphs'],
    [opts.cfgOptions?.length ? opts.cfgOptions : undefined, '--cfg-options (the .onnx carries its settings)'],
  ];
  for (const [value, name] of unusable) if (value) throw new Error(`${name} does not apply to an .onnx model`);
}

export async function predictOnnx(files: string[], stems: string[], weights: string, opts: OnnxPredictOptions) {
  refuseLibtorchOptions(opts);
  if (opts.config) process.stderr.write(`note: --config ${opts.config} is not used: ${weights} carries its settings\n`);
  const model = await initModel(weights);
  const meta = model.meta;
  process.stderr.write(
    `loaded ${weights}: ONNX Runtime, ${meta.precision}, ${meta.numClasses} classes, test mode ${meta.testCfg.mode}\n`,
  );
  fs.mkdirSync(opts.out, { recursive: true });
  const bar = progressBar(files.length, 'predict');
  for (const [i, file] of files.entries()) {
    const img = await readImage(file);
    const r = await inferenceModel(model, img, {
      mode: opts.mode,
      noResize: !opts.resize,
      windowBatch: opts.windowBatch,
      tta: opts.tta ? { scales: opts.ttaScales, minSize: opts.ttaMinSize } : false,
    });
    const logits = () => ({
      dtype: 'float32' as const,
      shape: [1, meta.numClasses, r.height, r.width],
      data: new Uint8Array(r.logits.buffer),
    });
    const summary = await writeHostPrediction(stems[i], img, r, meta, {
      opacity: opts.opacity,
      saveLogits: opts.saveLogits,
      color: opts.color,
      logits,
    });
    if (opts.json) process.stdout.write(`${JSON.stringify({ input: files[i], ...summary })}\n`);
    bar.update(i + 1);
  }
  bar.stop();
  process.stderr.write(`wrote ${files.length} prediction(s) to ${opts.out}\n`);
}
