/**
 * What `predict` writes per image, each file atomically: `<stem>_pred.png` (8-bit class ids),
 * `<stem>_overlay.png` (palette colours blended over the image) and `<stem>.json` (the classes
 * present, docs/json-schema.md: the API's schema), plus optionally the logits as safetensors.
 */
import { writeFileAtomic, writeImage, writeLabelPng } from '../data/image_io.js';
import { makeLabel, type RgbImage } from '../data/types.js';
import { writeSafetensors } from '../checkpoint/safetensors.js';
import { toHost } from '../tensor/host.js';
import { overlay } from '../visualization/overlay.js';
import { segmentationJson, type SegmentationJson } from '../visualization/segmentation_json.js';
import type { InferenceResult } from './api.js';
import type { DatasetMeta } from './metainfo.js';

export async function writePrediction(
  stem: string,
  img: RgbImage,
  r: InferenceResult,
  meta: DatasetMeta,
  opts: { opacity?: number; saveLogits?: string } = {},
): Promise<SegmentationJson> {
  if (meta.classes.length > 255) throw new Error(`${meta.classes.length} classes do not fit an 8-bit label PNG`);
  const seg = makeLabel(r.height, r.width, Uint8Array.from(r.pred));
  await writeLabelPng(`${stem}_pred.png`, seg);
  await writeImage(`${stem}_overlay.png`, overlay(img, seg, meta.palette, { alpha: opts.opacity ?? 0.5 }));
  const summary = segmentationJson(seg, meta);
  await writeFileAtomic(`${stem}.json`, new TextEncoder().encode(`${JSON.stringify(summary, null, 2)}\n`));
  if (opts.saveLogits) {
    const key = r.kind === 'probs' ? 'probs' : 'logits';
    await writeSafetensors(opts.saveLogits, new Map([[key, toHost(r.logits.float())]]), { format: 'pt', kind: key });
  }
  return summary;
}
