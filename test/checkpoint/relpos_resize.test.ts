import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  geometricRatio,
  geometricSamplePositions,
  targetPositions,
  resizeRelPosTable,
  resizeRelPosTables,
  relPosTableRows,
  windowOfTable,
} from '../../src/checkpoint/convert/relpos_resize.js';
import { notAKnotSpline, splineWeights } from '../../src/checkpoint/convert/cubic_spline.js';
import { fromFloat64, toFloat64 } from '../../src/checkpoint/formats/float_convert.js';
import { readSafetensors } from '../../src/checkpoint/formats/safetensors.js';
import type { HostTensor } from '../../src/common/host_tensor.js';
import { bytesEqual, tiny } from './helpers.js';

// ---------------------------------------------------------------------------------------------
// An independent reference: the not-a-knot spline as 4(n-1) polynomial coefficients solved
// densely by Gaussian elimination with partial pivoting (a different formulation from the
// production code's tridiagonal second-derivative system).

function solveDense(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(M[r]![col]!) > Math.abs(M[piv]![col]!)) piv = r;
    [M[col], M[piv]] = [M[piv]!, M[col]!];
    for (let r = col + 1; r < n; r++) {
      const f = M[r]![col]! / M[col]![col]!;
      if (f === 0) continue;
      for (let c = col; c <= n; c++) M[r]![c]! -= f * M[col]![c]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r]![n]!;
    for (let c = r + 1; c < n; c++) s -= M[r]![c]! * x[c]!;
    x[r] = s / M[r]![r]!;
  }
  return x;
}

/** Dense not-a-knot spline through (x, y): returns an evaluator clamped to [x0, x_{n-1}]. */
function denseNotAKnot(x: number[], y: number[]): (t: number) => number {
  const n = x.length;
  const m = n - 1; // intervals; unknowns a_j, b_j, c_j, d_j at 4j..4j+3
  const rows: number[][] = [];
  const rhs: number[] = [];
  const row = () => new Array<number>(4 * m).fill(0);
  for (let j = 0; j < m; j++) {
    const h = x[j + 1]! - x[j]!;
    let r = row();
    r[4 * j] = 1;
    rows.push(r);
    rhs.push(y[j]!); // p_j(x_j) = y_j
    r = row();
    r[4 * j] = 1;
    r[4 * j + 1] = h;
    r[4 * j + 2] = h * h;
    r[4 * j + 3] = h * h * h;
    rows.push(r);
    rhs.push(y[j + 1]!);
    if (j < m - 1) {
      r = row();
      r[4 * j + 1] = 1;
      r[4 * j + 2] = 2 * h;
      r[4 * j + 3] = 3 * h * h;
      r[4 * (j + 1) + 1] = -1;
      rows.push(r);
      rhs.push(0); // C1
      r = row();
      r[4 * j + 2] = 2;
      r[4 * j + 3] = 6 * h;
      r[4 * (j + 1) + 2] = -2;
      rows.push(r);
      rhs.push(0); // C2
    }
  }
  let r = row();
  r[3] = 1;
  r[7] = -1;
  rows.push(r);
  rhs.push(0); // d_0 = d_1
  r = row();
  r[4 * (m - 2) + 3] = 1;
  r[4 * (m - 1) + 3] = -1;
  rows.push(r);
  rhs.push(0); // d_{m-2} = d_{m-1}
  const coef = solveDense(rows, rhs);
  return (t: number) => {
    const tc = Math.min(Math.max(t, x[0]!), x[n - 1]!);
    let j = 0;
    while (j < m - 1 && tc > x[j + 1]!) j++;
    const u = tc - x[j]!;
    return coef[4 * j]! + u * (coef[4 * j + 1]! + u * (coef[4 * j + 2]! + u * coef[4 * j + 3]!));
  };
}

/** Deterministic pseudo-random numbers in [-1, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

test('geometric ratio q by bisection (last midpoint): 27->79 and 27->63', () => {
  assert.ok(Math.abs(geometricRatio(27, 79) - 1.1685036277771) < 1e-9);
  assert.ok(Math.abs(geometricRatio(27, 63) - 1.1349178123474) < 1e-9);
  const x = geometricSamplePositions(27, geometricRatio(27, 79));
  assert.equal(x.length, 27);
  assert.equal(x[13], 0);
  const d = [1, 2.169, 3.534, 5.129, 6.994, 9.172, 11.718, 14.692, 18.168, 22.229, 26.975, 32.52, 39.0];
  d.forEach((v, i) => assert.ok(Math.abs(x[14 + i]! - v) < 1e-3 && Math.abs(x[12 - i]! + v) < 1e-3, `d_${i + 1}`));
  assert.ok(Math.abs(x[26]! - 39.00008316) < 1e-8);
  const t = targetPositions(79);
  assert.equal(t.length, 79);
  assert.deepEqual([t[0], t[39], t[78]], [-39, 0, 39]);
});

test('not-a-knot spline reproduces cubic polynomials exactly and interpolates the samples', () => {
  const x = geometricSamplePositions(27, geometricRatio(27, 79));
  const rnd = lcg(1);
  for (let trial = 0; trial < 5; trial++) {
    const [c0, c1, c2, c3] = [rnd(), rnd(), rnd() / 10, rnd() / 100];
    const p = (u: number) => c0 + u * (c1 + u * (c2 + u * c3));
    const s = notAKnotSpline(x, x.map(p));
    for (const u of [...x, ...targetPositions(79), -38.5, 0.25, 17.3]) {
      assert.ok(Math.abs(s(u) - p(u)) <= 1e-9 * Math.max(1, Math.abs(p(u))), `cubic reproduced at ${u}`);
    }
  }
  const y = x.map(() => rnd());
  const s = notAKnotSpline(x, y);
  x.forEach((u, i) => assert.ok(Math.abs(s(u) - y[i]!) < 1e-12, `hits sample ${i}`));
  // Small point counts: 4 points = the cubic through them, 3 = the parabola, 2 = the line, 1 = constant.
  const q = (u: number) => 2 - u + 0.5 * u * u;
  const s3 = notAKnotSpline([0, 1, 3], [q(0), q(1), q(3)]);
  assert.ok(Math.abs(s3(2) - q(2)) < 1e-12);
  assert.ok(Math.abs(notAKnotSpline([0, 2], [1, 3])(1) - 2) < 1e-12);
  assert.equal(notAKnotSpline([0], [5])(3), 5);
});

test('production spline equals an independently solved dense not-a-knot system', () => {
  const rnd = lcg(7);
  for (const [src, dst] of [
    [27, 79],
    [27, 63],
    [7, 15],
    [9, 5],
    [5, 11],
  ] as const) {
    const x = geometricSamplePositions(src, geometricRatio(src, dst));
    const t = targetPositions(dst);
    const y = x.map(() => rnd());
    const ref = denseNotAKnot(x, y);
    const W = splineWeights(x, t);
    t.forEach((u, j) => {
      let s = 0;
      for (let i = 0; i < x.length; i++) s += W[j * x.length + i]! * y[i]!;
      assert.ok(Math.abs(s - ref(u)) < 1e-10, `${src}->${dst} at ${u}: ${s} vs ${ref(u)}`);
    });
  }
});

function tableFrom(
  fn: (r: number, c: number, head: number) => number,
  side: number,
  heads: number,
  cls: number[],
): HostTensor {
  const rows = side * side + 3;
  const v = new Float64Array(rows * heads);
  for (let r = 0; r < side; r++)
    for (let c = 0; c < side; c++) for (let h = 0; h < heads; h++) v[(r * side + c) * heads + h] = fn(r, c, h);
  for (let i = 0; i < 3 * heads; i++) v[side * side * heads + i] = cls[i % cls.length]!;
  return fromFloat64(v, [rows, heads], 'float32');
}

test('2-D resize 27->79 equals a separable reference built from the dense solver (rows = Δh, columns = Δw)', () => {
  const rnd = lcg(3);
  const heads = 3;
  const src = tableFrom(() => rnd(), 27, heads, [0.5, -0.25, 7]);
  const out = resizeRelPosTable(src, [40, 40]);
  assert.deepEqual(out.shape, [79 * 79 + 3, heads]);
  assert.equal(out.dtype, 'float32');
  const x = geometricSamplePositions(27, geometricRatio(27, 79));
  const t = targetPositions(79);
  const sv = toFloat64(src);
  const ov = toFloat64(out);
  for (let h = 0; h < heads; h++) {
    // along Δw (columns) for every source row, then along Δh (rows)
    const tmp = Array.from({ length: 27 }, (_, r) => {
      const s = denseNotAKnot(
        x,
        x.map((_, c) => sv[(r * 27 + c) * heads + h]!),
      );
      return t.map(s);
    });
    for (let c = 0; c < 79; c++) {
      const s = denseNotAKnot(
        x,
        tmp.map((row) => row[c]!),
      );
      for (let r = 0; r < 79; r++) {
        const ref = Math.fround(s(t[r]!));
        const got = ov[(r * 79 + c) * heads + h]!;
        assert.ok(Math.abs(got - ref) <= 1e-6 * Math.max(1, Math.abs(ref)), `head ${h} (${r}, ${c}): ${got} vs ${ref}`);
      }
    }
  }
  // cls rows are kept byte for byte
  assert.ok(bytesEqual(out.data.subarray(-3 * heads * 4), src.data.subarray(-3 * heads * 4)));
});

test(
  '2-D resize reproduces a bicubic polynomial sampled on the geometric grid, with the axes in the right ' + 'order',
  () => {
    const x = geometricSamplePositions(27, geometricRatio(27, 79));
    // Deliberately asymmetric in (Δh, Δw) so that swapped axes would fail.
    const P = (dh: number, dw: number) =>
      0.3 + 0.01 * dh - 0.02 * dw + 1e-4 * dh * dw + 2e-5 * dh ** 3 - 1e-5 * dw ** 3 + 1e-7 * dh ** 2 * dw ** 3;
    const heads = 2;
    const src = tableFrom((r, c, h) => (h === 0 ? P(x[r]!, x[c]!) : P(x[c]!, x[r]!)), 27, heads, [0]);
    const out = toFloat64(resizeRelPosTable(src, [40, 40]));
    const t = targetPositions(79);
    let worst = 0;
    for (let r = 0; r < 79; r++) {
      for (let c = 0; c < 79; c++) {
        worst = Math.max(
          worst,
          Math.abs(out[(r * 79 + c) * heads]! - P(t[r]!, t[c]!)),
          Math.abs(out[(r * 79 + c) * heads + 1]! - P(t[c]!, t[r]!)),
        );
      }
    }
    assert.ok(worst < 2e-6, `max error ${worst}`);
  },
);

test('round trip: resize 27->79, then evaluating the upsampled grid at the source positions comes back close', () => {
  const x = geometricSamplePositions(27, geometricRatio(27, 79));
  const f = (dh: number, dw: number) =>
    Math.sin(dh / 9) * Math.cos(dw / 13) + 0.1 * Math.exp(-(dh * dh + dw * dw) / 200);
  const src = tableFrom((r, c) => f(x[r]!, x[c]!), 27, 1, [0]);
  const out = toFloat64(resizeRelPosTable(src, [40, 40]));
  const t = targetPositions(79);
  const sv = toFloat64(src);
  let worst = 0;
  for (let r = 0; r < 27; r++) {
    // interpolate back along Δw on every fine row, then along Δh
    const perRow = t.map((_, fr) =>
      notAKnotSpline(
        t,
        t.map((_, fc) => out[fr * 79 + fc]!),
      ),
    );
    for (let c = 0; c < 27; c++) {
      const colValues = perRow.map((s) => s(x[c]!));
      const v = notAKnotSpline(t, colValues)(x[r]!);
      worst = Math.max(worst, Math.abs(v - sv[r * 27 + c]!));
    }
    if (r > 2) break; // a few rows are enough, the rest only costs time
  }
  assert.ok(worst < 1e-4, `round-trip error ${worst}`);
});

test('same size is the identity; other dtypes and non-square windows', () => {
  const rnd = lcg(5);
  const t14 = tableFrom(() => rnd(), 27, 2, [1]);
  assert.equal(resizeRelPosTable(t14, [14, 14]), t14);
  assert.equal(relPosTableRows([14, 14]), 732);
  assert.deepEqual(windowOfTable(732), [14, 14]);
  assert.throws(() => windowOfTable(733), /not \(2W-1\)\^2 \+ 3/);
  const half = fromFloat64(toFloat64(tableFrom(() => rnd(), 7, 2, [1])), [52, 2], 'float16');
  const h = resizeRelPosTable(half, [8, 8]);
  assert.equal(h.dtype, 'float16');
  assert.deepEqual(h.shape, [228, 2]);
  const ns = resizeRelPosTable(
    tableFrom(() => rnd(), 7, 2, [1]),
    [4, 8],
  );
  assert.deepEqual(ns.shape, [7 * 15 + 3, 2]);
  // A 4x8 source grid with a non-square source window given explicitly.
  assert.deepEqual(resizeRelPosTable(ns, [4, 8], { srcWindow: [4, 8] }).shape, [108, 2]);
});

test('dict-level resize: tables resized, relative_position_index dropped, everything else untouched', () => {
  const sd = readSafetensors(tiny('converted_beit2mmseg.safetensors')).tensors;
  const r = resizeRelPosTables(sd, [8, 8]);
  assert.equal(r.resized.length, 4);
  assert.equal(r.droppedIndex.length, 4);
  for (const [k, v] of r.stateDict) {
    assert.ok(!k.includes('relative_position_index'));
    if (k.includes('relative_position_bias_table')) assert.deepEqual(v.shape, [228, 4]);
    else assert.equal(v, sd.get(k));
  }
  // Resizing to the checkpoint's own window changes nothing but the dropped index keys.
  const same = resizeRelPosTables(sd, [4, 4]);
  assert.equal(same.resized.length, 0);
  assert.equal(same.stateDict.size, sd.size - 4);
  const bad = new Map<string, HostTensor>([
    ['layers.0.attn.relative_position_bias_table', fromFloat64(new Float64Array(50 * 2), [50, 2], 'float32')],
  ]);
  assert.throws(() => resizeRelPosTables(bad, [8, 8]), /layers\.0\.attn\.relative_position_bias_table: .*50 rows/);
});
