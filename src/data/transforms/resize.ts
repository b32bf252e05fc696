/**
 * Resize and RandomResize with mmcv 2.x semantics (mmseg 1.x configs; the 0.x
 * `Resize(img_scale, ratio_range)` behaves the same for these configs).
 *
 * - `scale` is (w, h) as in mmcv. With keep_ratio the order does not matter:
 *   the factor is min(long/long_side, short/short_side).
 * - New size = int(w*s + 0.5) x int(h*s + 0.5) (mmcv _scale_size).
 * - Image: cv2 INTER_LINEAR (bit-exact, ./cv_resize.ts); label: INTER_NEAREST.
 */

import type { Rng } from '../rng.js';
import { makeImage, makeLabel, type LabelMap, type RgbImage } from '../types.js';
import { resizeLinearU8, resizeNearestU8 } from './cv_resize.js';
import {
  boolOf,
  checkKeys,
  pairOf,
  requireImage,
  type Sample,
  type Transform,
  type TransformConfig,
} from './sample.js';

export type Interpolation = 'bilinear' | 'nearest';

/** mmcv _scale_size: (int(w*sx + 0.5), int(h*sy + 0.5)). */
export function scaleSize(w: number, h: number, sx: number, sy: number = sx): [number, number] {
  return [Math.trunc(w * sx + 0.5), Math.trunc(h * sy + 0.5)];
}

/**
 * mmcv rescale_size: the keep-ratio output size for an image of w x h.
 * `scale` is a factor, or a (w, h)-like pair whose max bounds the long side and
 * min bounds the short side. Returns [newW, newH, factor].
 */
export function rescaleSize(w: number, h: number, scale: number | [number, number]): [number, number, number] {
  let factor: number;
  if (typeof scale === 'number') {
    if (!(scale > 0)) throw new Error(`Invalid scale ${scale}, must be positive.`);
    factor = scale;
  } else {
    const maxLong = Math.max(scale[0], scale[1]);
    const maxShort = Math.min(scale[0], scale[1]);
    factor = Math.min(maxLong / Math.max(h, w), maxShort / Math.min(h, w));
  }
  const [nw, nh] = scaleSize(w, h, factor);
  return [nw, nh, factor];
}

export function resizeImage(
  img: RgbImage,
  height: number,
  width: number,
  interpolation: Interpolation = 'bilinear',
): RgbImage {
  const f = interpolation === 'nearest' ? resizeNearestU8 : resizeLinearU8;
  return makeImage(height, width, f(img.data, img.height, img.width, 3, height, width));
}

/** Labels are always resized with nearest neighbour (mmcv Resize does so for seg maps). */
export function resizeLabel(label: LabelMap, height: number, width: number): LabelMap {
  return makeLabel(height, width, resizeNearestU8(label.data, label.height, label.width, 1, height, width));
}

/**
 * Apply a resize to the sample for the target `scale` (w, h). Mirrors
 * mmcv Resize._resize_img/_resize_seg: keep_ratio -> imrescale, else
 * imresize to exactly (w, h).
 */
export function applyResize(
  s: Sample,
  scale: [number, number],
  keepRatio: boolean,
  interpolation: Interpolation,
  who: string,
): Sample {
  const img = requireImage(s, who);
  let nw: number;
  let nh: number;
  if (keepRatio) {
    [nw, nh] = rescaleSize(img.width, img.height, scale);
  } else {
    [nw, nh] = scale;
  }
  if (nw < 1 || nh < 1)
    throw new Error(`${who}: resizing ${img.width}x${img.height} (w x h) gives an empty image ${nw}x${nh}`);
  s.img = resizeImage(img, nh, nw, interpolation);
  s.imgShape = [nh, nw];
  s.scale = scale;
  s.scaleFactor = [nw / img.width, nh / img.height];
  s.keepRatio = keepRatio;
  if (s.gtSeg) {
    const g = s.gtSeg;
    const [lw, lh] = keepRatio ? rescaleSize(g.width, g.height, scale) : scale;
    s.gtSeg = resizeLabel(g, lh, lw);
  }
  return s;
}

function parseInterpolation(v: unknown, who: string): Interpolation {
  const interp = v ?? 'bilinear';
  if (interp !== 'bilinear' && interp !== 'nearest') {
    throw new Error(`${who}: interpolation must be 'bilinear' or 'nearest', got ${JSON.stringify(interp)}`);
  }
  return interp;
}

/** mmcv Resize(scale=(w, h) | scale_factor, keep_ratio=False, interpolation='bilinear'). */
export class Resize implements Transform {
  readonly type = 'Resize';
  readonly scale: [number, number] | undefined;
  readonly scaleFactor: [number, number] | undefined;
  readonly keepRatio: boolean;
  readonly interpolation: Interpolation;

  constructor(cfg: TransformConfig) {
    checkKeys(cfg, ['scale', 'scale_factor', 'keep_ratio', 'interpolation']);
    if ((cfg.scale == null) === (cfg.scale_factor == null)) {
      throw new Error('Resize: give exactly one of scale (w, h) or scale_factor');
    }
    this.scale = cfg.scale == null ? undefined : pairOf(cfg.scale, 'Resize.scale');
    this.scaleFactor = cfg.scale_factor == null ? undefined : pairOf(cfg.scale_factor, 'Resize.scale_factor', false);
    this.keepRatio = cfg.keep_ratio == null ? false : boolOf(cfg.keep_ratio, 'Resize.keep_ratio');
    this.interpolation = parseInterpolation(cfg.interpolation, 'Resize');
  }

  apply(s: Sample): Sample {
    let scale = this.scale;
    if (!scale) {
      // mmcv: scale = _scale_size(img_shape[::-1], scale_factor)
      const img = requireImage(s, 'Resize');
      scale = scaleSize(img.width, img.height, this.scaleFactor![0], this.scaleFactor![1]);
    }
    return applyResize(s, scale, this.keepRatio, this.interpolation, 'Resize');
  }
}

/**
 * mmcv RandomResize(scale, ratio_range, keep_ratio, ...):
 * - scale (w, h) + ratio_range (lo, hi): r = lo + (hi - lo) * random(),
 *   target = (int(w*r), int(h*r));
 * - scale as two pairs [[w0, h0], [w1, h1]] without ratio_range: each edge
 *   drawn with randint(min, max + 1).
 * Then Resize with that target (keep_ratio defaults to false as in mmcv; the
 * ADE configs set it true).
 */
export class RandomResize implements Transform {
  readonly type = 'RandomResize';
  private readonly scale: [number, number] | undefined;
  private readonly scales: [[number, number], [number, number]] | undefined;
  private readonly ratioRange: [number, number] | undefined;
  private readonly keepRatio: boolean;
  private readonly interpolation: Interpolation;

  constructor(cfg: TransformConfig) {
    checkKeys(cfg, ['scale', 'ratio_range', 'keep_ratio', 'interpolation', 'resize_type']);
    if (cfg.resize_type != null && cfg.resize_type !== 'Resize') {
      throw new Error(`RandomResize: only resize_type 'Resize' is supported, got ${JSON.stringify(cfg.resize_type)}`);
    }
    const sc = cfg.scale;
    if (Array.isArray(sc) && sc.length === 2 && Array.isArray(sc[0])) {
      if (cfg.ratio_range != null)
        throw new Error('RandomResize: ratio_range needs a single scale (w, h), not a list of scales');
      this.scales = [pairOf(sc[0], 'RandomResize.scale[0]'), pairOf(sc[1], 'RandomResize.scale[1]')];
    } else {
      this.scale = pairOf(sc, 'RandomResize.scale');
      if (cfg.ratio_range == null) throw new Error('RandomResize: ratio_range is required with a single scale');
      const rr = pairOf(cfg.ratio_range, 'RandomResize.ratio_range', false);
      if (rr[0] > rr[1])
        throw new Error(`RandomResize: ratio_range must be (low, high), got ${JSON.stringify(cfg.ratio_range)}`);
      this.ratioRange = rr;
    }
    this.keepRatio = cfg.keep_ratio == null ? false : boolOf(cfg.keep_ratio, 'RandomResize.keep_ratio');
    this.interpolation = parseInterpolation(cfg.interpolation, 'RandomResize');
  }

  /** Draw the target scale (w, h). */
  sampleScale(rng: Rng): [number, number] {
    if (this.scales) {
      const [a, b] = this.scales;
      const e0 = rng.randint(Math.min(a[0], b[0]), Math.max(a[0], b[0]) + 1);
      const e1 = rng.randint(Math.min(a[1], b[1]), Math.max(a[1], b[1]) + 1);
      return [e0, e1];
    }
    const [lo, hi] = this.ratioRange!;
    const r = rng.random() * (hi - lo) + lo;
    return [Math.trunc(this.scale![0] * r), Math.trunc(this.scale![1] * r)];
  }

  apply(s: Sample, rng: Rng): Sample {
    return applyResize(s, this.sampleScale(rng), this.keepRatio, this.interpolation, 'RandomResize');
  }
}
