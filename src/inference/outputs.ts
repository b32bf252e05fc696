/**
 * What `predict` writes per image, each file atomically: `<stem>_pred.png` (8-bit class ids),
 * `<stem>_overlay.png` (palette colours blended over the image) and `<stem>.json` (the classes
 * present, docs/json-schema.md: the API's schema), plus optionally the logits as safetensors, and with
 * `color` the label map in the palette's colours (`<stem>_color.png`) and the overlay with a legend of
 * the classes present (`<stem>_legend.png`).
 */
import { writeFileAtomic, writeImage, writeLabelPng } from '../data/image_io.js';
import { makeLabel, type RgbImage } from '../data/types.js';
import { writeSafetensors } from '../checkpoint/safetensors.js';
import { toHost } from '../tensor/host.js';
import { withLegend } from '../visualization/legend.js';
import { colorize, overlay } from '../visualization/overlay.js';
import { segmentationJson, type SegmentationJson } from '../visualization/segmentation_json.js';
import type { InferenceResult } from './api.js';
import type { DatasetMeta } from './metainfo.js';

export async function writePrediction(
  stem: string,
  img: RgbImage,
  r: InferenceResult,
  meta: DatasetMeta,
  opts: { opacity?: number; saveLogits?: string; color?: boolean } = {},
): Promise<SegmentationJson> {
  if (meta.classes.length > 255) throw new Error(`${meta.classes.length} classes do not fit an 8-bit label PNG`);
  const seg = makeLabel(r.height, r.width, Uint8Array.from(r.pred));
  await writeLabelPng(`${stem}_pred.png`, seg);
  const blended = overlay(img, seg, meta.palette, { alpha: opts.opacity ?? 0.5 });
  await writeImage(`${stem}_overlay.png`, blended);
  const summary = segmentationJson(seg, meta);
  if (opts.color) {
    await writeImage(`${stem}_color.png`, colorize(seg, meta.palette));
    const legend = summary.classes.map((c) => ({ name: c.name, colour: meta.palette[c.id], share: c.share }));
    await writeImage(`${stem}_legend.png`, await withLegend(blended, legend));
  }
  await writeFileAtomic(`${stem}.json`, new TextEncoder().encode(`${JSON.stringify(summary, null, 2)}\n`));
  if (opts.saveLogits) {
    const key = r.kind === 'probs' ? 'probs' : 'logits';
    await writeSafetensors(opts.saveLogits, new Map([[key, toHost(r.logits.float())]]), { format: 'pt', kind: key });
  }
  return summary;
}
