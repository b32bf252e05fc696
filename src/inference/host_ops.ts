/**
 * The few array operations around the network, on plain Float32Arrays in NCHW order (one
 * image: C×H×W), for the backends that hand back host arrays (ONNX Runtime in Node and in the
 * browser): torch's bilinear interpolate, softmax and argmax over classes, horizontal flip.
 */

/**
 * torch.nn.functional.interpolate(mode='bilinear', size=(oh, ow)) of a [C, h, w] array, with
 * ATen's source-index rule: align_corners maps corner to corner, otherwise
 * src = max(0, (dst + 0.5)·in/out − 0.5), neighbours clamped at the last row/column.
 */
export function resizeBilinear(
  src: Float32Array,
  c: number,
  h: number,
  w: number,
  oh: number,
  ow: number,
  alignCorners: boolean,
): Float32Array {
  if (oh === h && ow === w) return src.slice();
  const taps = (inp: number, out: number) => {
    const i0 = new Int32Array(out);
    const i1 = new Int32Array(out);
    const l1 = new Float32Array(out);
    const scale = alignCorners ? (out > 1 ? (inp - 1) / (out - 1) : 0) : inp / out;
    for (let d = 0; d < out; d++) {
      const s = alignCorners ? d * scale : Math.max(0, (d + 0.5) * scale - 0.5);
      const f = Math.min(Math.floor(s), inp - 1);
      i0[d] = f;
      i1[d] = f < inp - 1 ? f + 1 : f;
      l1[d] = s - f;
    }
    return { i0, i1, l1 };
  };
  const ty = taps(h, oh);
  const tx = taps(w, ow);
  const out = new Float32Array(c * oh * ow);
  for (let ch = 0; ch < c; ch++) {
    const base = ch * h * w;
    const obase = ch * oh * ow;
    for (let y = 0; y < oh; y++) {
      const r0 = base + ty.i0[y] * w;
      const r1 = base + ty.i1[y] * w;
      const ly = ty.l1[y];
      const hy = 1 - ly;
      const orow = obase + y * ow;
      for (let x = 0; x < ow; x++) {
        const a = tx.i0[x];
        const b = tx.i1[x];
        const lx = tx.l1[x];
        const hx = 1 - lx;
        out[orow + x] = hy * (hx * src[r0 + a] + lx * src[r0 + b]) + ly * (hx * src[r1 + a] + lx * src[r1 + b]);
      }
    }
  }
  return out;
}

/** Softmax over the class axis of a [C, H, W] array. */
export function softmaxClasses(x: Float32Array, c: number, plane: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let p = 0; p < plane; p++) {
    let max = -Infinity;
    for (let k = 0; k < c; k++) max = Math.max(max, x[k * plane + p]);
    let sum = 0;
    for (let k = 0; k < c; k++) {
      const e = Math.exp(x[k * plane + p] - max);
      out[k * plane + p] = e;
      sum += e;
    }
    for (let k = 0; k < c; k++) out[k * plane + p] /= sum;
  }
  return out;
}

/** Index of the largest class per pixel (the first on ties, as torch.argmax). */
export function argmaxClasses(x: Float32Array, c: number, plane: number): Int32Array {
  const out = new Int32Array(plane);
  for (let p = 0; p < plane; p++) {
    let best = 0;
    let v = x[p];
    for (let k = 1; k < c; k++) {
      const y = x[k * plane + p];
      if (y > v || (Number.isNaN(y) && !Number.isNaN(v))) {
        v = y;
        best = k;
      }
    }
    out[p] = best;
  }
  return out;
}

/** Mirrors each row of a [C, H, W] array in place. */
export function flipWidth(x: Float32Array, c: number, h: number, w: number): Float32Array {
  for (let r = 0; r < c * h; r++) x.subarray(r * w, (r + 1) * w).reverse();
  return x;
}
