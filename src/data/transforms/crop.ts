/**
 * RandomCrop (mmseg 1.x `mmseg/datasets/transforms/transforms.py`):
 * crop_size (h, w); offset_h = randint(0, margin_h + 1), then offset_w
 * likewise, margin = max(dim - crop, 0); the crop is smaller than crop_size
 * when the image is. With cat_max_ratio < 1 a box is re-drawn up to 10 times
 * until its label histogram (ignoring ignore_index) has more than one class
 * and max_count / total < cat_max_ratio; after 10 failed checks the 11th box
 * is used unchecked.
 */

import type { Rng } from '../rng.js';
import { IGNORE_INDEX, makeImage, makeLabel, type LabelMap, type RgbImage } from '../types.js';
import {
  checkKeys,
  numberIn,
  pairOf,
  requireImage,
  type Sample,
  type Transform,
  type TransformConfig,
} from './sample.js';

/** Crop box [y1, y2, x1, x2) — clipped to the image like numpy slicing. */
export type CropBox = [y1: number, y2: number, x1: number, x2: number];

export function cropImage(img: RgbImage, box: CropBox): RgbImage {
  const [y1, y2c, x1, x2c] = box;
  const y2 = Math.min(y2c, img.height);
  const x2 = Math.min(x2c, img.width);
  const h = Math.max(y2 - y1, 0);
  const w = Math.max(x2 - x1, 0);
  const out = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    const s = ((y1 + y) * img.width + x1) * 3;
    out.set(img.data.subarray(s, s + w * 3), y * w * 3);
  }
  return makeImage(h, w, out);
}

export function cropLabel(label: LabelMap, box: CropBox): LabelMap {
  const [y1, y2c, x1, x2c] = box;
  const y2 = Math.min(y2c, label.height);
  const x2 = Math.min(x2c, label.width);
  const h = Math.max(y2 - y1, 0);
  const w = Math.max(x2 - x1, 0);
  const out = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) {
    const s = (y1 + y) * label.width + x1;
    out.set(label.data.subarray(s, s + w), y * w);
  }
  return makeLabel(h, w, out);
}

/** True when the crop passes mmseg's cat_max_ratio test. */
export function cropPassesCatMaxRatio(
  label: LabelMap,
  box: CropBox,
  catMaxRatio: number,
  ignoreIndex: number,
): boolean {
  const counts = new Int32Array(256);
  const [y1, y2c, x1, x2c] = box;
  const y2 = Math.min(y2c, label.height);
  const x2 = Math.min(x2c, label.width);
  countValues(label.data, label.width, y1, y2, x1, x2, counts);
  let classes = 0;
  let max = 0;
  let sum = 0;
  for (let v = 0; v < 256; v++) {
    if (v === ignoreIndex || counts[v] === 0) continue;
    classes++;
    sum += counts[v];
    if (counts[v] > max) max = counts[v];
  }
  return classes > 1 && max / sum < catMaxRatio;
}

/** Histogram of data[y1..y2) x [x1..x2) (row length w) into counts (a small hot loop of its own). */
function countValues(
  data: Uint8Array,
  w: number,
  y1: number,
  y2: number,
  x1: number,
  x2: number,
  counts: Int32Array,
): void {
  for (let y = y1; y < y2; y++) {
    const end = y * w + x2;
    for (let i = y * w + x1; i < end; i++) counts[data[i]]++;
  }
}

export class RandomCrop implements Transform {
  readonly type = 'RandomCrop';
  readonly cropSize: [number, number];
  readonly catMaxRatio: number;
  readonly ignoreIndex: number;

  constructor(cfg: TransformConfig) {
    checkKeys(cfg, ['crop_size', 'cat_max_ratio', 'ignore_index']);
    this.cropSize = pairOf(cfg.crop_size, 'RandomCrop.crop_size (h, w)');
    this.catMaxRatio = cfg.cat_max_ratio == null ? 1 : numberIn(cfg.cat_max_ratio, 'RandomCrop.cat_max_ratio', 0, 1);
    this.ignoreIndex =
      cfg.ignore_index == null ? IGNORE_INDEX : numberIn(cfg.ignore_index, 'RandomCrop.ignore_index', 0, 255);
  }

  private randomBox(h: number, w: number, rng: Rng): CropBox {
    const marginH = Math.max(h - this.cropSize[0], 0);
    const marginW = Math.max(w - this.cropSize[1], 0);
    const oy = rng.randint(0, marginH + 1);
    const ox = rng.randint(0, marginW + 1);
    return [oy, oy + this.cropSize[0], ox, ox + this.cropSize[1]];
  }

  /** Choose the crop box (mmseg crop_bbox), drawing from `rng`. */
  chooseBox(s: Sample, rng: Rng): CropBox {
    const img = requireImage(s, 'RandomCrop');
    let box = this.randomBox(img.height, img.width, rng);
    if (this.catMaxRatio < 1 && s.gtSeg) {
      for (let i = 0; i < 10; i++) {
        if (cropPassesCatMaxRatio(s.gtSeg, box, this.catMaxRatio, this.ignoreIndex)) break;
        box = this.randomBox(img.height, img.width, rng);
      }
    }
    return box;
  }

  apply(s: Sample, rng: Rng): Sample {
    const box = this.chooseBox(s, rng);
    s.img = cropImage(s.img!, box);
    if (s.gtSeg) s.gtSeg = cropLabel(s.gtSeg, box);
    s.imgShape = [s.img.height, s.img.width];
    return s;
  }
}
