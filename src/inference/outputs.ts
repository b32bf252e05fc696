/**
 * What `predict` writes per image, each file atomically: `<stem>_pred.png` (8-bit class ids),
 * `<stem>_overlay.png` (palette colours blended over the image) and `<stem>.json` (the share of
 * pixels per class), plus optionally the logits as safetensors.
 */
import { writeImage, writeLabelPng } from '../data/image_io.js';
import { makeImage, makeLabel, type RgbImage } from '../data/types.js';
import { writeSafetensors } from '../checkpoint/safetensors.js';
import { toHost } from '../tensor/host.js';
import { writeFileAtomic } from '../data/image_io.js';
import type { InferenceResult } from './api.js';
import type { DatasetMeta } from './metainfo.js';

/** uint8(image·(1−a) + colour·a) as mmseg's visualiser; ids outside the palette keep the image. */
export function blendOverlay(img: RgbImage, pred: Int32Array, palette: readonly (readonly number[])[], opacity: number): RgbImage {
  const out = makeImage(img.height, img.width);
  for (let p = 0; p < pred.length; p++) {
    const colour = palette[pred[p]];
    for (let c = 0; c < 3; c++) {
      const v = img.data[3 * p + c];
      out.data[3 * p + c] = colour ? Math.trunc(v * (1 - opacity) + colour[c] * opacity) : v;
    }
  }
  return out;
}

export function classShares(pred: Int32Array, classes: readonly string[]): Record<string, number> {
  const counts = new Float64Array(classes.length);
  for (const id of pred) counts[id]++;
  const order = [...counts.keys()].filter((i) => counts[i] > 0).sort((a, b) => counts[b] - counts[a]);
  return Object.fromEntries(order.map((i) => [classes[i], Number((counts[i] / pred.length).toFixed(6))]));
}

export async function writePrediction(stem: string, img: RgbImage, r: InferenceResult, meta: DatasetMeta,
  opts: { opacity: number; saveLogits?: string }): Promise<void> {
  if (meta.classes.length > 255) throw new Error(`${meta.classes.length} classes do not fit an 8-bit label PNG`);
  await writeLabelPng(`${stem}_pred.png`, makeLabel(r.height, r.width, Uint8Array.from(r.pred)));
  await writeImage(`${stem}_overlay.png`, blendOverlay(img, r.pred, meta.palette, opts.opacity));
  const summary = { height: r.height, width: r.width, classes: classShares(r.pred, meta.classes) };
  await writeFileAtomic(`${stem}.json`, new TextEncoder().encode(JSON.stringify(summary, null, 2) + '\n'));
  if (opts.saveLogits) {
    const key = r.kind === 'probs' ? 'probs' : 'logits';
    await writeSafetensors(opts.saveLogits, new Map([[key, toHost(r.logits.float())]]), { format: 'pt', kind: key });
  }
}
