/**
 * What `predict` writes per image, each file atomically: `<stem>_pred.png` (8-bit class ids),
 * `<stem>_overlay.png` (palette colours blended over the image) and `<stem>.json` (the classes
 * present, docs/json-schema.md: the API's schema), plus optionally the logits as safetensors, and with
 * `color` the label map in the palette's colours (`<stem>_color.png`) and the overlay with a legend of
 * the classes present (`<stem>_legend.png`).
 */
import type { RgbImage } from '../data/types.js';
import { toHost } from '../tensor/host.js';
import type { SegmentationJson } from '../visualization/segmentation_json.js';
import type { InferenceResult } from './api.js';
import { writeHostPrediction } from './host_outputs.js';
import type { DatasetMeta } from './metainfo.js';

export async function writePrediction(
  stem: string,
  img: RgbImage,
  r: InferenceResult,
  meta: DatasetMeta,
  opts: { opacity?: number; saveLogits?: string; color?: boolean } = {},
): Promise<SegmentationJson> {
  return writeHostPrediction(stem, img, r, meta, { ...opts, logits: () => toHost(r.logits.float()) });
}
