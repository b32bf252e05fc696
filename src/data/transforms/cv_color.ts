/**
 * OpenCV's 8-bit RGB <-> HSV conversions (cv2.COLOR_BGR2HSV / COLOR_HSV2BGR on
 * uint8, H in [0, 180)), which mmcv's bgr2hsv/hsv2bgr call and mmseg's
 * PhotoMetricDistortion uses for its saturation and hue steps.
 *
 * Our images are RGB; OpenCV's formulas are written in terms of named R, G, B
 * values, so converting RGB here gives exactly what cv2 gives on the BGR copy.
 *
 * - RGB -> HSV: integer arithmetic with 12-bit reciprocal tables
 *   (sdiv[v] = round(255*4096 / v), hdiv[d] = round(180*4096 / (6 d))).
 * - HSV -> RGB: float32 arithmetic (S and V scaled by 1/255, sector table),
 *   then x * 255 converted to uint8. OpenCV converts that last float in two
 *   different ways: its vector loop (blocks of 4 SIMD registers of pixels per
 *   image row) truncates, the scalar loop for the leftover pixels at the end
 *   of each row rounds half to even. With the AVX2 build that x86 machines run
 *   (color_hsv is dispatched up to AVX2, 8 floats per register) the blocks are
 *   32 pixels wide, so pixels x < floor(W/32)*32 of each row truncate and the
 *   rest round. `HSV_VECTOR_BLOCK` holds that 32 (16 on SSE2/NEON-only builds).
 *
 * Checked exhaustively against OpenCV 4.6 (Debian python3-opencv, GCC, AVX2
 * dispatch) while writing this file: all 2^24 colours one way; all
 * 180*256*256 HSV triples the other way at row widths 4096 and 40. Another
 * OpenCV build can differ by 1 on a handful of those triples (FMA contraction
 * is the compiler's choice, see hsvToRgbU8) and, on SSE2/NEON-only builds, in
 * the truncate/round split.
 */

import { roundHalfEven } from './cv_resize.js';

const HSV_SHIFT = 12;
const f32 = Math.fround;

const SDIV = new Int32Array(256);
const HDIV180 = new Int32Array(256);
for (let i = 1; i < 256; i++) {
  SDIV[i] = roundHalfEven((255 << HSV_SHIFT) / i);
  HDIV180[i] = roundHalfEven((180 << HSV_SHIFT) / (6 * i));
}

/** Convert an interleaved RGB uint8 buffer to HSV (H in [0,180), S, V in [0,255]). */
export function rgbToHsvU8(rgb: Uint8Array, out: Uint8Array = new Uint8Array(rgb.length)): Uint8Array {
  const half = 1 << (HSV_SHIFT - 1);
  for (let i = 0; i < rgb.length; i += 3) {
    const r = rgb[i];
    const g = rgb[i + 1];
    const b = rgb[i + 2];
    const v = Math.max(r, g, b);
    const vmin = Math.min(r, g, b);
    const diff = v - vmin;
    const s = (diff * SDIV[v] + half) >> HSV_SHIFT;
    // Priority when several channels equal the max: R first, then G, then B.
    let h: number;
    if (v === r) h = g - b;
    else if (v === g) h = b - r + 2 * diff;
    else h = r - g + 4 * diff;
    h = (h * HDIV180[diff] + half) >> HSV_SHIFT;
    if (h < 0) h += 180;
    out[i] = h;
    out[i + 1] = s;
    out[i + 2] = v;
  }
  return out;
}

// Which of tab[0..3] goes to (b, g, r) per 60-degree sector (OpenCV's sector table).
const SECTOR_B = [1, 1, 3, 0, 0, 2];
const SECTOR_G = [3, 0, 0, 2, 1, 1];
const SECTOR_R = [0, 2, 1, 1, 3, 0];

/** Pixels per vector block in OpenCV's uint8 HSV->BGR loop (AVX2 build). */
export const HSV_VECTOR_BLOCK = 32;

/**
 * Convert an interleaved HSV uint8 buffer (H in [0,180)) back to RGB.
 * `width` is the image row length in pixels (the buffer holds whole rows); it
 * decides which pixels take OpenCV's truncating vector path (see above).
 */
export function hsvToRgbU8(
  hsv: Uint8Array,
  width: number,
  out: Uint8Array = new Uint8Array(hsv.length),
  vectorBlock: number = HSV_VECTOR_BLOCK,
): Uint8Array {
  if (!(width > 0) || hsv.length % (3 * width) !== 0) {
    throw new Error(`hsvToRgbU8: buffer of ${hsv.length} bytes is not whole rows of ${width} pixels`);
  }
  const vecEnd = Math.floor(width / vectorBlock) * vectorBlock;
  const hscale = f32(6 / 180);
  const inv255 = f32(1 / 255);
  const tab = [0, 0, 0, 0];
  for (let i = 0, x = 0; i < hsv.length; i += 3, x = x + 1 === width ? 0 : x + 1) {
    let h = hsv[i];
    const s = f32(hsv[i + 1] * inv255);
    const v = f32(hsv[i + 2] * inv255);
    let r: number;
    let g: number;
    let b: number;
    if (s === 0) {
      r = g = b = v;
    } else {
      h = f32(h * hscale);
      // h >= 0 always; OpenCV wraps into [0, 6) and guards the sector index.
      while (h >= 6) h = f32(h - 6);
      let sector = Math.floor(h);
      h = f32(h - sector);
      if (sector < 0 || sector >= 6) {
        sector = 0;
        h = 0;
      }
      // How many roundings "v * (1 - s*h)" and "v * (1 - s*(1 - h))" get depends
      // on where the compiler contracted a multiply-subtract into an FMA. In
      // OpenCV's AVX2 build both are fused in the vector loop, and only the
      // first one in the scalar tail loop. A fused 1 - s*t is exact in double
      // (24-bit operands), so one f32() gives the fused result.
      const hc = f32(1 - h);
      tab[0] = v;
      tab[1] = f32(v * f32(1 - s));
      tab[2] = f32(v * f32(1 - s * h));
      tab[3] = x < vecEnd ? f32(v * f32(1 - s * hc)) : f32(v * f32(1 - f32(s * hc)));
      b = tab[SECTOR_B[sector]];
      g = tab[SECTOR_G[sector]];
      r = tab[SECTOR_R[sector]];
    }
    if (x < vecEnd) {
      // Values are in [0, 255] here, so truncation needs no clamping.
      out[i] = Math.trunc(f32(r * 255));
      out[i + 1] = Math.trunc(f32(g * 255));
      out[i + 2] = Math.trunc(f32(b * 255));
    } else {
      out[i] = clampRound(f32(r * 255));
      out[i + 1] = clampRound(f32(g * 255));
      out[i + 2] = clampRound(f32(b * 255));
    }
  }
  return out;
}

function clampRound(x: number): number {
  const r = roundHalfEven(x);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}
