/**
 * predict's files for one image from host arrays (see outputs.ts): the label PNG, the overlay,
 * the JSON class shares and optionally the logits. Tensor-free, so that the ONNX Runtime path
 * writes the same files without the libtorch addon.
 */
import type { HostTensor } from '../common/host_tensor.js';
import { writeFileAtomic, writeImage, writeLabelPng } from '../data/image_io.js';
import { makeLabel, type RgbImage } from '../data/types.js';
import { writeSafetensors } from '../checkpoint/safetensors.js';
import { classShares, overlay } from '../visualization/overlay.js';
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
  opts: { opacity?: number; saveLogits?: string; logits?: () => HostTensor } = {},
): Promise<void> {
  if (meta.classes.length > 255) throw new Error(`${meta.classes.length} classes do not fit an 8-bit label PNG`);
  const seg = makeLabel(r.height, r.width, Uint8Array.from(r.pred));
  await writeLabelPng(`${stem}_pred.png`, seg);
  await writeImage(`${stem}_overlay.png`, overlay(img, seg, meta.palette, { alpha: opts.opacity ?? 0.5 }));
  const shares = classShares(seg, meta.classes);
  const summary = {
    height: r.height,
    width: r.width,
    classes: Object.fromEntries(shares.classes.map((c) => [c.name, Number(c.share.toFixed(6))])),
  };
  await writeFileAtomic(`${stem}.json`, new TextEncoder().encode(`${JSON.stringify(summary, null, 2)}\n`));
  if (opts.saveLogits && opts.logits) {
    const key = r.kind === 'probs' ? 'probs' : 'logits';
    await writeSafetensors(opts.saveLogits, new Map([[key, opts.logits()]]), { format: 'pt', kind: key });
  }
}
