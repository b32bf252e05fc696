/**
 * Bit-exact re-implementation of OpenCV's `cv2.resize` for uint8 images, as
 * mmcv's `imresize`/`imrescale` call it (backend 'cv2'):
 *
 * - INTER_LINEAR: half-pixel centres (src = (dst + 0.5) * scale - 0.5), no
 *   antialiasing, border clamp, 11-bit fixed-point weights
 *   (INTER_RESIZE_COEF_BITS = 11). The horizontal pass is exact integer
 *   arithmetic; the vertical pass drops 4 bits before a 16x16->high-16 multiply
 *   and rounds with (v + 2) >> 2, which is not the same as rounding the exact
 *   22-bit product: that detail is reproduced.
 * - Exact 2x downscale in both axes: OpenCV silently switches INTER_LINEAR to
 *   its fast INTER_AREA path ((a + b + c + d + 2) >> 2).
 * - INTER_NEAREST: src = min(floor(dst * (1 / (dw / sw))), size - 1).
 * - Same size: plain copy (cv::resize short-circuits).
 *
 * All float steps are done in float32 (Math.fround) where OpenCV uses float,
 * and in double where it uses double, so the coefficients match bit for bit.
 * Verified against OpenCV 4.6 (Debian python3-opencv) on random images; the
 * golden values in test/data/cv_resize.test.ts came from that run.
 */

const COEF_BITS = 11;
const COEF_SCALE = 1 << COEF_BITS; // 2048
const DBL_EPSILON = 2.220446049250313e-16;
const f32 = Math.fround;

/** cvRound: round half to even (what lrint does in the default FP mode). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds .5 up; step back to even on exact ties.
  if (r - x === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

function checkArgs(src: Uint8Array, sh: number, sw: number, cn: number, dh: number, dw: number): void {
  if (!(sh > 0 && sw > 0 && dh > 0 && dw > 0 && cn > 0)) {
    throw new Error(`resize: sizes must be positive (src ${sh}x${sw}, dst ${dh}x${dw}, channels ${cn})`);
  }
  if (src.length !== sh * sw * cn) {
    throw new Error(`resize: buffer has ${src.length} bytes, expected ${sh}x${sw}x${cn}`);
  }
}

/**
 * cv2.resize(src, (dw, dh), interpolation=cv2.INTER_LINEAR) for a uint8 HWC
 * buffer with `cn` channels.
 */
export function resizeLinearU8(
  src: Uint8Array,
  sh: number,
  sw: number,
  cn: number,
  dh: number,
  dw: number,
): Uint8Array {
  checkArgs(src, sh, sw, cn, dh, dw);
  if (sh === dh && sw === dw) return src.slice();

  // cv::resize passes inv_scale = dst/src to hal::resize, which inverts it
  // again in double; keep that double rounding.
  const invX = dw / sw;
  const invY = dh / sh;
  const scaleX = 1 / invX;
  const scaleY = 1 / invY;
  const iscaleX = roundHalfEven(scaleX);
  const iscaleY = roundHalfEven(scaleY);
  const areaFast = Math.abs(scaleX - iscaleX) < DBL_EPSILON && Math.abs(scaleY - iscaleY) < DBL_EPSILON;
  if (areaFast && iscaleX === 2 && iscaleY === 2 && cn !== 2) {
    return resizeAreaFast2x(src, sw, cn, dh, dw);
  }

  // Horizontal tables: source offset and the two 11-bit weights per output column.
  const xofs = new Int32Array(dw);
  const ax0 = new Int32Array(dw);
  const ax1 = new Int32Array(dw);
  let xmax = dw;
  for (let dx = 0; dx < dw; dx++) {
    let fx = f32((dx + 0.5) * scaleX - 0.5);
    let sx = Math.floor(fx);
    fx = f32(fx - sx);
    if (sx < 0) {
      fx = 0;
      sx = 0;
    }
    if (sx + 1 >= sw) {
      xmax = Math.min(xmax, dx);
      if (sx >= sw - 1) {
        fx = 0;
        sx = sw - 1;
      }
    }
    xofs[dx] = sx;
    ax0[dx] = roundHalfEven(f32(1 - fx) * COEF_SCALE);
    ax1[dx] = roundHalfEven(fx * COEF_SCALE);
  }

  // Per output element (column x channel): the two source byte offsets
  // within a row and the two weights. Columns at/after xmax use one tap with
  // weight 2048 (OpenCV's border branch); give them a zero second weight.
  const rowLen = dw * cn;
  const off0 = new Int32Array(rowLen);
  const off1 = new Int32Array(rowLen);
  const w0 = new Int32Array(rowLen);
  const w1 = new Int32Array(rowLen);
  for (let dx = 0; dx < dw; dx++) {
    for (let c = 0; c < cn; c++) {
      const e = dx * cn + c;
      off0[e] = xofs[dx] * cn + c;
      if (dx < xmax) {
        off1[e] = off0[e] + cn;
        w0[e] = ax0[dx];
        w1[e] = ax1[dx];
      } else {
        off1[e] = off0[e];
        w0[e] = COEF_SCALE;
        w1[e] = 0;
      }
    }
  }

  const srcRow = sw * cn;
  const hpass = (sy: number, out: Int32Array): void => horizontalPass(src, sy * srcRow, off0, off1, w0, w1, out);

  // Two row buffers, reused while consecutive output rows read the same source rows.
  let rowA = new Int32Array(rowLen);
  let rowB = new Int32Array(rowLen);
  let syA = -1;
  let syB = -1;
  const dst = new Uint8Array(dh * rowLen);
  for (let dy = 0; dy < dh; dy++) {
    let fy = f32((dy + 0.5) * scaleY - 0.5);
    const sy = Math.floor(fy);
    fy = f32(fy - sy);
    // `| 0` keeps the weights small integers for the JIT (int32 multiply in the loop below).
    const b0 = roundHalfEven(f32(1 - fy) * COEF_SCALE) | 0;
    const b1 = roundHalfEven(fy * COEF_SCALE) | 0;
    // Rows are clamped to the image; the weights are not touched.
    const y0 = Math.min(Math.max(sy, 0), sh - 1);
    const y1 = Math.min(Math.max(sy + 1, 0), sh - 1);
    if (y0 !== syA) {
      if (y0 === syB) {
        const t = rowA;
        rowA = rowB;
        rowB = t;
        syB = syA;
      } else {
        hpass(y0, rowA);
      }
      syA = y0;
    }
    if (y1 !== syB) {
      if (y1 === syA) {
        rowB.set(rowA);
      } else {
        hpass(y1, rowB);
      }
      syB = y1;
    }
    verticalPass(rowA, rowB, b0, b1, dst, dy * rowLen);
  }
  return dst;
}

// The two inner loops live in small top-level functions: V8 optimises them
// far better than the same loops inside the big function above.

/** One source row through the horizontal taps (values scaled by 2048; exact). */
function horizontalPass(
  src: Uint8Array,
  base: number,
  off0: Int32Array,
  off1: Int32Array,
  w0: Int32Array,
  w1: Int32Array,
  out: Int32Array,
): void {
  const n = out.length;
  for (let e = 0; e < n; e++) out[e] = src[base + off0[e]] * w0[e] + src[base + off1[e]] * w1[e];
}

/**
 * ((S0 >> 4) * b0 >> 16) + ((S1 >> 4) * b1 >> 16), then (v + 2) >> 2. OpenCV's
 * SIMD code and its uchar scalar specialisation both round this way (not
 * (S0*b0 + S1*b1 + 2^21) >> 22), and the result never leaves [0, 255].
 */
function verticalPass(r0: Int32Array, r1: Int32Array, b0: number, b1: number, dst: Uint8Array, out: number): void {
  const n = r0.length;
  for (let x = 0; x < n; x++) dst[out + x] = ((((r0[x] >> 4) * b0) >> 16) + (((r1[x] >> 4) * b1) >> 16) + 2) >> 2;
}

/** OpenCV's fast INTER_AREA path for an exact 2x downscale (what INTER_LINEAR becomes then). */
function resizeAreaFast2x(src: Uint8Array, sw: number, cn: number, dh: number, dw: number): Uint8Array {
  const dst = new Uint8Array(dh * dw * cn);
  const srow = sw * cn;
  for (let dy = 0; dy < dh; dy++) {
    const s0 = 2 * dy * srow;
    const s1 = s0 + srow;
    const o = dy * dw * cn;
    for (let dx = 0; dx < dw; dx++) {
      for (let c = 0; c < cn; c++) {
        const i = 2 * dx * cn + c;
        dst[o + dx * cn + c] = (src[s0 + i] + src[s0 + i + cn] + src[s1 + i] + src[s1 + i + cn] + 2) >> 2;
      }
    }
  }
  return dst;
}

/** cv2.resize(src, (dw, dh), interpolation=cv2.INTER_NEAREST) for a uint8 HWC buffer. */
export function resizeNearestU8(
  src: Uint8Array,
  sh: number,
  sw: number,
  cn: number,
  dh: number,
  dw: number,
): Uint8Array {
  checkArgs(src, sh, sw, cn, dh, dw);
  if (sh === dh && sw === dw) return src.slice();
  const ifx = 1 / (dw / sw);
  const ify = 1 / (dh / sh);
  const xofs = new Int32Array(dw);
  for (let x = 0; x < dw; x++) xofs[x] = Math.min(Math.floor(x * ifx), sw - 1) * cn;
  const dst = new Uint8Array(dh * dw * cn);
  for (let y = 0; y < dh; y++) {
    const sy = Math.min(Math.floor(y * ify), sh - 1);
    const srow = sy * sw * cn;
    const out = y * dw * cn;
    if (cn === 1) {
      for (let x = 0; x < dw; x++) dst[out + x] = src[srow + xofs[x]];
    } else {
      for (let x = 0; x < dw; x++) {
        for (let c = 0; c < cn; c++) dst[out + x * cn + c] = src[srow + xofs[x] + c];
      }
    }
  }
  return dst;
}
