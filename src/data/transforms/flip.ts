/**
 * RandomFlip (mmcv 2.x): with a single direction and probability p, mmcv
 * draws np.random.choice([direction, None], p=[p, 1 - p]), i.e. flips when a
 * uniform draw is < p. One draw is consumed per sample even for p = 0 or 1.
 */

import type { Rng } from '../rng.js';
import { makeImage, makeLabel, type LabelMap, type RgbImage } from '../types.js';
import { checkKeys, numberIn, requireImage, type Sample, type Transform, type TransformConfig } from './sample.js';

export type FlipDirection = 'horizontal' | 'vertical';

function flipBuffer(src: Uint8Array, h: number, w: number, cn: number, dir: FlipDirection): Uint8Array {
  const out = new Uint8Array(src.length);
  const row = w * cn;
  if (dir === 'vertical') {
    for (let y = 0; y < h; y++) out.set(src.subarray(y * row, (y + 1) * row), (h - 1 - y) * row);
    return out;
  }
  for (let y = 0; y < h; y++) flipRow(src, out, y * row, w, cn);
  return out;
}

function flipRow(src: Uint8Array, out: Uint8Array, base: number, w: number, cn: number): void {
  if (cn === 1) {
    for (let x = 0, d = base + w - 1; x < w; x++, d--) out[d] = src[base + x];
  } else if (cn === 3) {
    for (let s = base, d = base + (w - 1) * 3; d >= base; s += 3, d -= 3) {
      out[d] = src[s];
      out[d + 1] = src[s + 1];
      out[d + 2] = src[s + 2];
    }
  } else {
    for (let x = 0; x < w; x++) {
      const s = base + x * cn;
      const d = base + (w - 1 - x) * cn;
      for (let c = 0; c < cn; c++) out[d + c] = src[s + c];
    }
  }
}

export function flipImage(img: RgbImage, dir: FlipDirection = 'horizontal'): RgbImage {
  return makeImage(img.height, img.width, flipBuffer(img.data, img.height, img.width, 3, dir));
}

export function flipLabel(label: LabelMap, dir: FlipDirection = 'horizontal'): LabelMap {
  return makeLabel(label.height, label.width, flipBuffer(label.data, label.height, label.width, 1, dir));
}

export class RandomFlip implements Transform {
  readonly type = 'RandomFlip';
  readonly prob: number;
  readonly direction: FlipDirection;

  constructor(cfg: TransformConfig) {
    checkKeys(cfg, ['prob', 'direction']);
    if (cfg.prob == null) throw new Error('RandomFlip: prob is required');
    this.prob = numberIn(cfg.prob, 'RandomFlip.prob', 0, 1);
    const dir = cfg.direction ?? 'horizontal';
    if (dir !== 'horizontal' && dir !== 'vertical') {
      throw new Error(`RandomFlip: direction must be 'horizontal' or 'vertical', got ${JSON.stringify(dir)}`);
    }
    this.direction = dir;
  }

  apply(s: Sample, rng: Rng): Sample {
    const img = requireImage(s, 'RandomFlip');
    const flip = rng.random() < this.prob;
    s.flip = flip;
    s.flipDirection = flip ? this.direction : null;
    if (flip) {
      s.img = flipImage(img, this.direction);
      if (s.gtSeg) s.gtSeg = flipLabel(s.gtSeg, this.direction);
    }
    return s;
  }
}
