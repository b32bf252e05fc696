/**
 * Plain-JS references for the tensor tests: a seeded PRNG, erf, and direct loops for the
 * convolution / pooling / resampling formulas. Nothing here calls libtorch.
 */
import assert from 'node:assert/strict';

/** mulberry32: deterministic uniform numbers in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n uniform values in [lo, hi) from a fixed seed. */
export function randArray(n: number, seed: number, lo = -1, hi = 1): number[] {
  const r = prng(seed);
  return Array.from({ length: n }, () => lo + (hi - lo) * r());
}

export const prod = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** Row-major strides of a shape. */
export function strides(shape: number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i];
  }
  return out;
}

/**
 * erf(x) to ~1e-15: the Maclaurin series for |x| <= 2.5, the continued fraction of erfc
 * (modified Lentz) above.
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax <= 2.5) {
    let term = x,
      sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + 2/(x + ...)))))
  const tiny = 1e-300;
  let f = ax,
    c = ax,
    d = 0;
  for (let n = 1; n < 500; n++) {
    const an = n / 2;
    d = ax + an * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = ax + an / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return x > 0 ? 1 - erfc : erfc - 1;
}

export function assertArrayClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i],
      e = expected[i];
    const ok = (Number.isNaN(a) && Number.isNaN(e)) || a === e || Math.abs(a - e) <= tol * Math.max(1, Math.abs(e));
    assert.ok(ok, `${what}[${i}]: got ${a}, expected ${e} (tol ${tol})`);
  }
}

export interface Conv2dArgs {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

/** out[n,o,y,x] = b[o] + Σ_{c in group, i, j} in[n,c,y·s−p+i·d, x·s−p+j·d] · W[o,c,i,j] */
export function conv2dRef(
  x: number[],
  xs: number[],
  w: number[],
  ws: number[],
  b: number[] | null,
  a: Conv2dArgs,
): { data: number[]; shape: number[] } {
  const [N, C, H, W] = xs;
  const [O, Cg, KH, KW] = ws;
  const [sh, sw] = a.stride,
    [ph, pw] = a.padding,
    [dh, dw] = a.dilation;
  const OH = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  const og = O / a.groups;
  assert.equal(Cg * a.groups, C);
  const out = new Array<number>(N * O * OH * OW).fill(0);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / og);
      for (let y = 0; y < OH; y++)
        for (let xx = 0; xx < OW; xx++) {
          let acc = b ? b[o] : 0;
          for (let cg = 0; cg < Cg; cg++) {
            const c = g * Cg + cg;
            for (let i = 0; i < KH; i++)
              for (let j = 0; j < KW; j++) {
                const iy = y * sh - ph + i * dh,
                  ix = xx * sw - pw + j * dw;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += x[((n * C + c) * H + iy) * W + ix] * w[((o * Cg + cg) * KH + i) * KW + j];
              }
          }
          out[((n * O + o) * OH + y) * OW + xx] = acc;
        }
    }
  return { data: out, shape: [N, O, OH, OW] };
}

/**
 * Transposed convolution by scattering: in[n,c,i,j]·W[c,o,a,b] lands on
 * out[n,o, i·s−p+a·d, j·s−p+b·d] (groups = 1).
 */
export function convTranspose2dRef(
  x: number[],
  xs: number[],
  w: number[],
  ws: number[],
  b: number[] | null,
  stride: number,
  padding: number,
  outputPadding: number,
  dilation: number,
): { data: number[]; shape: number[] } {
  const [N, C, H, W] = xs;
  const [C2, O, K, K2] = ws;
  assert.equal(C2, C);
  assert.equal(K, K2);
  const OH = (H - 1) * stride - 2 * padding + dilation * (K - 1) + outputPadding + 1;
  const OW = (W - 1) * stride - 2 * padding + dilation * (K - 1) + outputPadding + 1;
  const out = new Array<number>(N * O * OH * OW).fill(0);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++) for (let p = 0; p < OH * OW; p++) out[(n * O + o) * OH * OW + p] = b ? b[o] : 0;
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++) {
          const v = x[((n * C + c) * H + i) * W + j];
          for (let o = 0; o < O; o++)
            for (let a = 0; a < K; a++)
              for (let bb = 0; bb < K; bb++) {
                const y = i * stride - padding + a * dilation,
                  xx = j * stride - padding + bb * dilation;
                if (y < 0 || y >= OH || xx < 0 || xx >= OW) continue;
                out[((n * O + o) * OH + y) * OW + xx] += v * w[((c * O + o) * K + a) * K + bb];
              }
        }
  return { data: out, shape: [N, O, OH, OW] };
}

/** Bilinear resize of [P, H, W] planes; align_corners false: src = max((dst+0.5)·in/out − 0.5, 0). */
export function bilinearRef(
  x: number[],
  planes: number,
  H: number,
  W: number,
  OH: number,
  OW: number,
  alignCorners: boolean,
): number[] {
  const coord = (dst: number, inn: number, out: number): [number, number, number] => {
    let src: number;
    if (alignCorners) src = out > 1 ? (dst * (inn - 1)) / (out - 1) : 0;
    else src = Math.max(((dst + 0.5) * inn) / out - 0.5, 0);
    const i0 = Math.min(Math.floor(src), inn - 1);
    const i1 = Math.min(i0 + 1, inn - 1);
    return [i0, i1, src - i0];
  };
  const out: number[] = [];
  for (let p = 0; p < planes; p++)
    for (let y = 0; y < OH; y++) {
      const [y0, y1, ly] = coord(y, H, OH);
      for (let xx = 0; xx < OW; xx++) {
        const [x0, x1, lx] = coord(xx, W, OW);
        const at = (yy: number, xv: number): number => x[(p * H + yy) * W + xv];
        out.push((1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1)));
      }
    }
  return out;
}

/** Legacy 'nearest': src = min(floor(dst · in/out), in − 1). */
export function nearestRef(x: number[], planes: number, H: number, W: number, OH: number, OW: number): number[] {
  const out: number[] = [];
  for (let p = 0; p < planes; p++)
    for (let y = 0; y < OH; y++)
      for (let xx = 0; xx < OW; xx++) {
        const sy = Math.min(Math.floor((y * H) / OH), H - 1),
          sx = Math.min(Math.floor((xx * W) / OW), W - 1);
        out.push(x[(p * H + sy) * W + sx]);
      }
  return out;
}

/** Adaptive average pooling: bin i covers [floor(i·In/Out), ceil((i+1)·In/Out)). */
export function adaptiveAvgRef(x: number[], planes: number, H: number, W: number, OH: number, OW: number): number[] {
  const out: number[] = [];
  for (let p = 0; p < planes; p++)
    for (let i = 0; i < OH; i++)
      for (let j = 0; j < OW; j++) {
        const y0 = Math.floor((i * H) / OH),
          y1 = Math.ceil(((i + 1) * H) / OH);
        const x0 = Math.floor((j * W) / OW),
          x1 = Math.ceil(((j + 1) * W) / OW);
        let s = 0;
        for (let y = y0; y < y1; y++) for (let xx = x0; xx < x1; xx++) s += x[(p * H + y) * W + xx];
        out.push(s / ((y1 - y0) * (x1 - x0)));
      }
  return out;
}

/** Max pooling over [P, H, W] planes with implicit −∞ padding, torch's output-size rule. */
export function maxPoolRef(
  x: number[],
  planes: number,
  H: number,
  W: number,
  k: number,
  s: number,
  pad: number,
  ceil: boolean,
): { data: number[]; OH: number; OW: number } {
  const size = (n: number): number => {
    const span = n + 2 * pad - (k - 1) - 1;
    let o = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
    if (ceil && (o - 1) * s >= n + pad) o--; // the last window must start inside the input or left padding
    return o;
  };
  const OH = size(H),
    OW = size(W);
  const out: number[] = [];
  for (let p = 0; p < planes; p++)
    for (let i = 0; i < OH; i++)
      for (let j = 0; j < OW; j++) {
        let m = -Infinity;
        for (let a = 0; a < k; a++)
          for (let b = 0; b < k; b++) {
            const y = i * s - pad + a,
              xx = j * s - pad + b;
            if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
            m = Math.max(m, x[(p * H + y) * W + xx]);
          }
        out.push(m);
      }
  return { data: out, OH, OW };
}
