/**
 * The sizes an image is fed at (test Resize, TTA scales), as plain functions over RgbImage with
 * no tensors: the libtorch path, ONNX Runtime in Node and the browser page share them.
 */
import { rescaleSize, resizeImage } from '../data/transforms/resize.js';
import type { RgbImage } from '../data/types.js';

/** Multi-scale TTA ratios of the test scale when neither the call nor the config names any. */
export const DEFAULT_TTA_SCALES = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75];

export function testResize(img: RgbImage, scale: [number, number] | null): RgbImage {
  if (!scale) return img;
  const [w, h] = rescaleSize(img.width, img.height, scale);
  return w === img.width && h === img.height ? img : resizeImage(img, h, w);
}

/** Exact size of an image after a scaled test Resize (for multi-scale TTA). */
export function scaledTestSize(
  img: { width: number; height: number },
  scale: [number, number] | null,
  ratio: number,
  minShort = 0,
): [number, number] {
  if (!scale) {
    const [w, h] = rescaleSize(img.width, img.height, ratio);
    return [h, w];
  }
  let s: [number, number] = [scale[0] * ratio, scale[1] * ratio];
  // mmseg 0.x Resize(min_size): the short-side target never drops below min_size.
  if (minShort > 0 && Math.min(...s) < minShort) {
    const k = minShort / Math.min(...s);
    s = [s[0] * k, s[1] * k];
  }
  const [w, h] = rescaleSize(img.width, img.height, s);
  return [h, w];
}

/**
 * mmcv Resize(scale_factor=r, keep_ratio=True) on a w x h image: the target (w·r, h·r)
 * rounded, then imrescale into it. Returns [h, w].
 */
export function imageScaledSize(w: number, h: number, r: number): [number, number] {
  const target: [number, number] = [Math.trunc(w * r + 0.5), Math.trunc(h * r + 0.5)];
  const [nw, nh] = rescaleSize(w, h, target);
  return [nh, nw];
}
