/**
 * PhotoMetricDistortion (mmseg 1.x `transforms.py`, same as 0.x), defaults
 * brightness_delta 32, contrast_range (0.5, 1.5), saturation_range
 * (0.5, 1.5), hue_delta 18. Order of random draws (each step applied when
 * randint(2) is 1):
 *   brightness: beta ~ U(-32, 32)
 *   mode = randint(2); mode 1 -> contrast here
 *   saturation: alpha ~ U(0.5, 1.5) on S of cv2 HSV
 *   hue: H = (H + randint(-18, 18)) mod 180   (upper bound exclusive: [-18, 17])
 *   mode 0 -> contrast here
 * (mmseg's docstring says contrast is "second or last" the other way round;
 * the code above is what runs.)
 *
 * `convert` is numpy float32 arithmetic: float32(x) * float32(alpha) +
 * float32(beta), clip to [0, 255], cast to uint8 (truncation). HSV steps use
 * OpenCV's uint8 conversions (./cv_color.ts).
 */

import type { Rng } from '../rng.js';
import { makeImage, type RgbImage } from '../types.js';
import { hsvToRgbU8, rgbToHsvU8 } from './cv_color.js';
import {
  checkKeys,
  numberIn,
  pairOf,
  requireImage,
  type Sample,
  type Transform,
  type TransformConfig,
} from './sample.js';

const f32 = Math.fround;

/**
 * numpy: clip(float32(x) * float32(alpha) + float32(beta), 0, 255).astype(uint8), on every `stride`-th value from
 * `offset`.
 */
export function convertU8(data: Uint8Array, alpha: number, beta: number, offset = 0, stride = 1): void {
  const a = f32(alpha);
  const b = f32(beta);
  for (let i = offset; i < data.length; i += stride) {
    // x*1 is exact, so the brightness case is one float32 addition, the
    // contrast case one float32 multiplication (+0).
    const v = f32(f32(data[i] * a) + b);
    data[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
  }
}

/** Scale saturation by alpha through cv2 HSV (in place on a copy; returns the new image). */
export function adjustSaturation(img: RgbImage, alpha: number): RgbImage {
  const hsv = rgbToHsvU8(img.data);
  convertU8(hsv, alpha, 0, 1, 3);
  return makeImage(img.height, img.width, hsvToRgbU8(hsv, img.width));
}

/** Shift hue by delta (OpenCV H units, 2 degrees each) through cv2 HSV. */
export function shiftHue(img: RgbImage, delta: number): RgbImage {
  const hsv = rgbToHsvU8(img.data);
  for (let i = 0; i < hsv.length; i += 3) hsv[i] = (((hsv[i] + delta) % 180) + 180) % 180;
  return makeImage(img.height, img.width, hsvToRgbU8(hsv, img.width));
}

export class PhotoMetricDistortion implements Transform {
  readonly type = 'PhotoMetricDistortion';
  readonly brightnessDelta: number;
  readonly contrastRange: [number, number];
  readonly saturationRange: [number, number];
  readonly hueDelta: number;

  constructor(cfg: TransformConfig = { type: 'PhotoMetricDistortion' }) {
    checkKeys(cfg, ['brightness_delta', 'contrast_range', 'saturation_range', 'hue_delta']);
    this.brightnessDelta =
      cfg.brightness_delta == null
        ? 32
        : numberIn(cfg.brightness_delta, 'PhotoMetricDistortion.brightness_delta', 0, 255);
    this.contrastRange =
      cfg.contrast_range == null
        ? [0.5, 1.5]
        : pairOf(cfg.contrast_range, 'PhotoMetricDistortion.contrast_range', false);
    this.saturationRange =
      cfg.saturation_range == null
        ? [0.5, 1.5]
        : pairOf(cfg.saturation_range, 'PhotoMetricDistortion.saturation_range', false);
    const hue = cfg.hue_delta == null ? 18 : numberIn(cfg.hue_delta, 'PhotoMetricDistortion.hue_delta', 0, 179);
    if (!Number.isInteger(hue)) throw new Error(`PhotoMetricDistortion.hue_delta must be an integer, got ${hue}`);
    this.hueDelta = hue;
  }

  private contrast(img: RgbImage, rng: Rng): RgbImage {
    if (rng.randint(2)) {
      const d = img.data.slice();
      convertU8(d, rng.uniform(this.contrastRange[0], this.contrastRange[1]), 0);
      return makeImage(img.height, img.width, d);
    }
    return img;
  }

  apply(s: Sample, rng: Rng): Sample {
    let img = requireImage(s, 'PhotoMetricDistortion');
    // brightness
    if (rng.randint(2)) {
      const d = img.data.slice();
      convertU8(d, 1, rng.uniform(-this.brightnessDelta, this.brightnessDelta));
      img = makeImage(img.height, img.width, d);
    }
    const mode = rng.randint(2);
    if (mode === 1) img = this.contrast(img, rng);
    // saturation
    if (rng.randint(2)) img = adjustSaturation(img, rng.uniform(this.saturationRange[0], this.saturationRange[1]));
    // hue
    if (rng.randint(2)) img = shiftHue(img, rng.randint(-this.hueDelta, this.hueDelta));
    if (mode === 0) img = this.contrast(img, rng);
    s.img = img;
    return s;
  }
}
