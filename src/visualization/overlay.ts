/**
 * Segmentation overlays, as mmseg's SegLocalVisualizer draws them
 * (`_draw_sem_seg`, 1.x):
 *   mask = palette colour of each pixel's class id, BLACK for ids >= the
 *          number of classes (e.g. 255 = ignore) — they are not drawn;
 *   out  = uint8(image * (1 - alpha) + mask * alpha)   (float64, truncation)
 * So ignored pixels come out darkened (image * (1 - alpha)), not untouched;
 * that is mmseg's behaviour and the default here. `unlabeled: 'image'` keeps
 * them as the original image instead.
 * mmseg's default alpha is 0.8 (show_result_pyplot uses opacity 0.5).
 */

import { makeImage, type LabelMap, type RgbImage } from '../data/types.js';
import type { Rgb } from '../data/metainfo.js';

export interface OverlayOptions {
  /** Weight of the class colour (default 0.8, mmseg's SegLocalVisualizer). */
  alpha?: number;
  /** Pixels with ids >= palette length: 'black' mask as mmseg (default) or keep the 'image'. */
  unlabeled?: 'black' | 'image';
}

/** Colour image of a label map: palette[id], black for ids outside the palette. */
export function colorize(seg: LabelMap, palette: readonly Rgb[]): RgbImage {
  const out = makeImage(seg.height, seg.width);
  const n = palette.length;
  for (let i = 0; i < seg.data.length; i++) {
    const id = seg.data[i];
    if (id >= n) continue;
    const c = palette[id];
    out.data[3 * i] = c[0];
    out.data[3 * i + 1] = c[1];
    out.data[3 * i + 2] = c[2];
  }
  return out;
}

/** Blend class colours over an image (see the file comment for the exact formula). */
export function overlay(image: RgbImage, seg: LabelMap, palette: readonly Rgb[], opts: OverlayOptions = {}): RgbImage {
  if (image.height !== seg.height || image.width !== seg.width) {
    throw new Error(
      `overlay: image is ${image.height}x${image.width} but the segmentation is ${seg.height}x${seg.width}`,
    );
  }
  const alpha = opts.alpha ?? 0.8;
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`overlay: alpha must be in [0, 1], got ${alpha}`);
  const keepImage = (opts.unlabeled ?? 'black') === 'image';
  const beta = 1 - alpha; // same double as numpy's (1 - self.alpha)
  const out = makeImage(image.height, image.width);
  const n = palette.length;
  for (let i = 0; i < seg.data.length; i++) {
    const id = seg.data[i];
    const o = 3 * i;
    if (id >= n) {
      if (keepImage) {
        out.data[o] = image.data[o];
        out.data[o + 1] = image.data[o + 1];
        out.data[o + 2] = image.data[o + 2];
      } else {
        for (let c = 0; c < 3; c++) out.data[o + c] = Math.trunc(image.data[o + c] * beta + 0 * alpha);
      }
      continue;
    }
    const col = palette[id];
    for (let c = 0; c < 3; c++) out.data[o + c] = Math.trunc(image.data[o + c] * beta + col[c] * alpha);
  }
  return out;
}

export interface ClassShare {
  id: number;
  name: string;
  pixels: number;
  /** Fraction of all pixels (0..1). */
  share: number;
}

export interface ShareSummary {
  classes: ClassShare[];
  /** Pixels with ids >= the number of classes (e.g. 255). */
  unlabeledPixels: number;
  totalPixels: number;
}

/** Pixel count and share per class present in `seg`, largest first (ties by id). */
export function classShares(seg: LabelMap | Uint8Array, classNames: readonly string[]): ShareSummary {
  const data = seg instanceof Uint8Array ? seg : seg.data;
  const counts = new Float64Array(256);
  for (let i = 0; i < data.length; i++) counts[data[i]]++;
  const classes: ClassShare[] = [];
  let unlabeled = 0;
  for (let id = 0; id < 256; id++) {
    if (counts[id] === 0) continue;
    if (id >= classNames.length) {
      unlabeled += counts[id];
      continue;
    }
    classes.push({ id, name: classNames[id], pixels: counts[id], share: counts[id] / data.length });
  }
  classes.sort((a, b) => b.pixels - a.pixels || a.id - b.id);
  return { classes, unlabeledPixels: unlabeled, totalPixels: data.length };
}

/** Text summary, one class per line: "  42.10%  wall (12345 px)". */
export function formatShares(s: ShareSummary, maxLines = 20): string {
  const lines = s.classes
    .slice(0, maxLines)
    .map((c) => `${(c.share * 100).toFixed(2).padStart(7)}%  ${c.name} (${c.pixels} px)`);
  if (s.classes.length > maxLines) lines.push(`  ... ${s.classes.length - maxLines} more classes`);
  if (s.unlabeledPixels > 0) {
    lines.push(
      `${((s.unlabeledPixels / s.totalPixels) * 100).toFixed(2).padStart(7)}%  (unlabeled / ignore) ` +
        `(${s.unlabeledPixels} px)`,
    );
  }
  return lines.join('\n');
}
