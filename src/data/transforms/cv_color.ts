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
    const mx = Math.max(r, g);
    const v = Math.max(mx, b);
    const mn = Math.min(r, g);
    const vmin = Math.min(mn, b);
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
 * OpenCV computes, in float32, with s = S/255, v = V/255, h = H * (6/180),
 * sector = floor(h), f = h - sector:
 *   tab0 = v, tab1 = v*(1 - s), tab2 = v*(1 - s*f), tab3 = v*(1 - s*(1 - f))
 * and picks (b, g, r) from tab by sector. The bracketed factors depend only on
 * (H, S), so they are tabulated once (180 x 256 each); per pixel only the
 * multiplications by v remain. How many roundings "1 - s*f" and
 * "1 - s*(1 - f)" get depends on where the compiler contracted a
 * multiply-subtract into an FMA: in OpenCV's AVX2 build both are fused in the
 * vector loop, and only the first one in the scalar tail loop. A fused
 * 1 - s*t is exact in double (24-bit operands), so one f32() gives it.
 * S = 0 needs no special case: every factor is then 1 and all tabs equal v.
 */
interface HsvTables {
  /** (b, g, r) tab indices packed per H: idx = H*3 + channel. */
  pick: Uint8Array;
  f1: Float32Array;
  f2: Float32Array;
  f3Vec: Float32Array;
  f3Tail: Float32Array;
}

let tables: HsvTables | undefined;

function hsvTables(): HsvTables {
  if (tables) return tables;
  const hscale = f32(6 / 180);
  const inv255 = f32(1 / 255);
  const pick = new Uint8Array(180 * 3);
  const f1 = new Float32Array(256);
  const f2 = new Float32Array(180 * 256);
  const f3Vec = new Float32Array(180 * 256);
  const f3Tail = new Float32Array(180 * 256);
  for (let S = 0; S < 256; S++) f1[S] = f32(1 - f32(S * inv255));
  for (let H = 0; H < 180; H++) {
    let h = f32(H * hscale);
    // h < 6 always for H < 180; OpenCV wraps into [0, 6) and guards the sector index.
    while (h >= 6) h = f32(h - 6);
    let sector = Math.floor(h);
    h = f32(h - sector);
    if (sector < 0 || sector >= 6) {
      sector = 0;
      h = 0;
    }
    pick[3 * H] = SECTOR_B[sector];
    pick[3 * H + 1] = SECTOR_G[sector];
    pick[3 * H + 2] = SECTOR_R[sector];
    const hc = f32(1 - h);
    for (let S = 0; S < 256; S++) {
      const sf = f32(S * inv255);
      const k = H * 256 + S;
      f2[k] = f32(1 - sf * h);
      f3Vec[k] = f32(1 - sf * hc);
      f3Tail[k] = f32(1 - f32(sf * hc));
    }
  }
  tables = { pick, f1, f2, f3Vec, f3Tail };
  return tables;
}

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
  const t = hsvTables();
  const vecEnd = Math.floor(width / vectorBlock) * vectorBlock;
  const rows = hsv.length / (3 * width);
  for (let y = 0; y < rows; y++) {
    const base = y * width * 3;
    hsvRowSpan(hsv, out, base, base + vecEnd * 3, t, t.f3Vec, true);
    hsvRowSpan(hsv, out, base + vecEnd * 3, base + width * 3, t, t.f3Tail, false);
  }
  return out;
}

/** Pixels [from, to) (byte offsets) of one row; `trunc` selects the vector path's truncation. */
function hsvRowSpan(
  hsv: Uint8Array,
  out: Uint8Array,
  from: number,
  to: number,
  t: HsvTables,
  f3: Float32Array,
  trunc: boolean,
): void {
  const inv255 = f32(1 / 255);
  const { pick, f1, f2 } = t;
  for (let i = from; i < to; i += 3) {
    const H = hsv[i];
    const S = hsv[i + 1];
    const v = f32(hsv[i + 2] * inv255);
    const k = H * 256 + S;
    // tab0..tab3 scaled to 0..255 (x * 255 in float32, as OpenCV).
    const t0 = f32(v * 255);
    const t1 = f32(f32(v * f1[S]) * 255);
    const t2 = f32(f32(v * f2[k]) * 255);
    const t3 = f32(f32(v * f3[k]) * 255);
    const p = 3 * H;
    const bi = pick[p];
    const gi = pick[p + 1];
    const ri = pick[p + 2];
    const b = bi === 0 ? t0 : bi === 1 ? t1 : bi === 2 ? t2 : t3;
    const g = gi === 0 ? t0 : gi === 1 ? t1 : gi === 2 ? t2 : t3;
    const r = ri === 0 ? t0 : ri === 1 ? t1 : ri === 2 ? t2 : t3;
    if (trunc) {
      // Values are in [0, 255] here, so truncation needs no clamping.
      out[i] = r;
      out[i + 1] = g;
      out[i + 2] = b;
    } else {
      out[i] = roundHalfEven(r);
      out[i + 1] = roundHalfEven(g);
      out[i + 2] = roundHalfEven(b);
    }
  }
}
