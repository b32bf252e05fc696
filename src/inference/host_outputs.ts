/**
 * predict's files for one image from host arrays (see outputs.ts): the label PNG, the overlay,
 * the JSON description (docs/json-schema.md), optionally the colour label map with a legend and the
 * logits. Tensor-free, so that the ONNX Runtime path
 * writes the same files without the libtorch addon.
 */
import type { HostTensor } from '../common/host_tensor.js';
import { writeFileAtomic, writeImage, writeLabelPng } from '../data/image_io.js';
import { makeLabel, type RgbImage } from '../data/types.js';
import { writeSafetensors } from '../checkpoint/formats/safetensors.js';
import { withLegend } from '../visualization/legend.js';
import { colorize, overlay } from '../visualization/overlay.js';
import { segmentationJson, type SegmentationJson } from '../visualization/segmentation_json.js';
import type { DatasetMeta } from './metainfo.js';

export interface HostPrediction {
  pred: Int32Array;
  height: number;
  width: number;
  kind: 'logits' | 'probs';
}

export async function writeHostPrediction(
  stem: string,
  img: RgbImage,
  r: HostPrediction,
  meta: DatasetMeta,
  opts: { opacity?: number; saveLogits?: string; color?: boolean; logits?: () => HostTensor } = {},
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
  if (opts.saveLogits && opts.logits) {
    const key = r.kind === 'probs' ? 'probs' : 'logits';
    await writeSafetensors(opts.saveLogits, new Map([[key, opts.logits()]]), { format: 'pt', kind: key });
  }
  return summary;
}
