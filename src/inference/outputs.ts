/**
 * What `predict` writes per image, each file atomically: `<stem>_pred.png` (8-bit class ids),
 * `<stem>_overlay.png` (palette colours blended over the image) and `<stem>.json` (the share of
 * pixels per class), plus optionally the logits as safetensors.
 */
import type { RgbImage } from '../data/types.js';
import { toHost } from '../tensor/host.js';
import type { InferenceResult } from './api.js';
import { writeHostPrediction } from './host_outputs.js';
import type { DatasetMeta } from './metainfo.js';

export async function writePrediction(
  stem: string,
  img: RgbImage,
  r: InferenceResult,
  meta: DatasetMeta,
  opts: { opacity?: number; saveLogits?: string } = {},
): Promise<void> {
  await writeHostPrediction(stem, img, r, meta, { ...opts, logits: () => toHost(r.logits.float()) });
}
