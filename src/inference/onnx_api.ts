/**
 * The library API on an exported .onnx, with the names of api.ts (package entry "beitseg/onnx"):
 *   const model = await initModel('model.onnx');
 *   const { pred, logits } = await inferenceModel(model, 'image.jpg');
 * Runs on onnxruntime-node; nothing here loads the libtorch addon. `logits` is a host array
 * [C, H, W] (api.ts returns a libtorch tensor).
 */
import { toRgbImage } from '../data/image_io.js';
import type { RgbImage } from '../data/types.js';
import { loadOnnxModel, type OrtLoadOptions } from './backends/onnxruntime.js';
import { segmentHost, type HostInferenceOptions, type HostModel, type HostResult } from './host_segment.js';

export type { HostInferenceOptions as InferenceOptions, HostModel as OnnxModel, HostResult as InferenceResult };
export type { ModelMeta } from './model_meta.js';

export async function initModel(file: string, opts: OrtLoadOptions = {}): Promise<HostModel> {
  if (!/\.onnx$/i.test(file)) throw new Error(`${file}: beitseg/onnx loads .onnx files (export with beitseg export)`);
  return loadOnnxModel(file, opts);
}

export async function inferenceModel(
  m: HostModel,
  image: string | Uint8Array | RgbImage,
  opts: HostInferenceOptions = {},
): Promise<HostResult> {
  const img = await toRgbImage(image);
  return segmentHost(m, img, opts);
}

export { writeHostPrediction } from './host_outputs.js';
export { decodeImage, readImage, readLabel, writeImage } from '../data/image_io.js';
export { overlay, classShares } from '../visualization/overlay.js';
