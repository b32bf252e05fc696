/**
 * Normalisation to float32 CHW, as mmseg 1.x's SegDataPreProcessor (or 0.x
 * Normalize + Pad + DefaultFormatBundle): (x - mean) / std per RGB channel,
 * computed in float32 like torch does (subtract, round, divide, round), with
 * optional bottom/right padding to a fixed size filled with `padVal` (0 =
 * the mean colour, mmseg's pad_val) in normalised space.
 */

import type { RgbImage } from '../types.js';

/** ImageNet mean/std in RGB order (mmseg's data_preprocessor for BEiT/ADE). */
export const IMAGENET_MEAN: readonly [number, number, number] = [123.675, 116.28, 103.53];
export const IMAGENET_STD: readonly [number, number, number] = [58.395, 57.12, 57.375];

export interface NormalizeOptions {
  mean?: readonly number[];
  std?: readonly number[];
  /** Output size (h, w) >= the image; extra area gets padVal. Default: the image size. */
  padTo?: [number, number];
  /**
   * Pixels of the image outside [0, validHeight) x [0, validWidth) are
   * treated as padding too (set by the Pad transform). Default: whole image.
   */
  validHeight?: number;
  validWidth?: number;
  /** Normalised-space value for padding (default 0). */
  padVal?: number;
  /** Write into this buffer (length 3*H*W) instead of allocating. */
  out?: Float32Array;
}

export function normalizeImage(img: RgbImage, opts: NormalizeOptions = {}): Float32Array {
  const mean = opts.mean ?? IMAGENET_MEAN;
  const std = opts.std ?? IMAGENET_STD;
  if (mean.length !== 3 || std.length !== 3) throw new Error('normalizeImage: mean and std need 3 values (RGB)');
  const [H, W] = opts.padTo ?? [img.height, img.width];
  if (H < img.height || W < img.width) {
    throw new Error(`normalizeImage: padTo ${H}x${W} is smaller than the image ${img.height}x${img.width}`);
  }
  const vh = Math.min(opts.validHeight ?? img.height, img.height);
  const vw = Math.min(opts.validWidth ?? img.width, img.width);
  const padVal = opts.padVal ?? 0;
  const plane = H * W;
  const out = opts.out ?? new Float32Array(3 * plane);
  if (out.length !== 3 * plane) throw new Error(`normalizeImage: out has ${out.length} values, need ${3 * plane}`);
  if (vh < H || vw < W) out.fill(padVal);
  const f32 = Math.fround;
  for (let c = 0; c < 3; c++) {
    const m = f32(mean[c]);
    const sd = f32(std[c]);
    // 256-entry table: identical float32 results to the per-pixel formula.
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = f32(f32(v - m) / sd);
    const base = c * plane;
    for (let y = 0; y < vh; y++) normalizeRow(img.data, y * img.width * 3 + c, out, base + y * W, vw, lut);
  }
  return out;
}

/** One channel of one row through the lookup table (kept small so V8 optimises it well). */
function normalizeRow(
  src: Uint8Array,
  from: number,
  out: Float32Array,
  to: number,
  n: number,
  lut: Float32Array,
): void {
  for (let x = 0; x < n; x++) out[to + x] = lut[src[from + 3 * x]];
}
