/**
 * Every Tensor op against values computed independently in the test (by hand or by the
 * defining formula in plain JS; see ref.ts), never by calling the op under test.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  F,
  arange,
  attentionImpl,
  bernoulli,
  cat,
  fromArray,
  full,
  getRngState,
  manualSeed,
  noGrad,
  ones,
  rand,
  randn,
  setRngState,
  stack,
  tensor,
  tidy,
  where,
  zeros,
  type Tensor,
} from '../../src/tensor/index.js';
import {
  adaptiveAvgRef,
  assertArrayClose,
  bilinearRef,
  conv2dRef,
  convTranspose2dRef,
  erf,
  maxPoolRef,
  nearestRef,
  prod,
  randArray,
  strides,
} from './ref.js';

const vals = (t: Tensor): number[] => Array.from(t.toFloat32Array());
const ints = (t: Tensor): number[] => Array.from(t.to('int64').toTypedArray() as BigInt64Array, Number);
const f32 = (data: number[], shape: number[]): Tensor => tensor(data, shape);
const close = (t: Tensor, expected: number[], tol: number, what: string, shape?: number[]): void => {
  if (shape) assert.deepEqual(t.shape, shape, `${what}: shape`);
  assertArrayClose(vals(t), expected.map(Math.fround), tol, what); // the tensors here are float32
};
/** Element of a row-major array at a multi-index. */
const at = (data: number[], shape: number[], idx: number[]): number => {
  const st = strides(shape);
  return data[idx.reduce((s, v, i) => s + v * st[i], 0)];
};
/** All multi-indices of a shape, in row-major order. */
function* indices(shape: number[]): Generator<number[]> {
  const n = prod(shape);
  const st = strides(shape);
  for (let k = 0; k < n; k++) yield shape.map((s, i) => Math.floor(k / st[i]) % s);
}

describe('elementwise arithmetic', () => {
  it('tensor ⊕ tensor with broadcasting [2,3] vs [3] and [2,1] vs [1,3]', () =>
    tidy(() => {
      const a = [1, -2, 3.5, 4, 0.5, -6],
        b = [10, 20, -4];
      const ta = f32(a, [2, 3]),
        tb = f32(b, [3]);
      const bc = (fn: (x: number, y: number) => number): number[] => a.map((x, k) => fn(x, b[k % 3]));
      const binary: [string, Tensor, (x: number, y: number) => number, number][] = [
        ['add', ta.add(tb), (x, y) => x + y, 0],
        ['sub', ta.sub(tb), (x, y) => x - y, 0],
        ['mul', ta.mul(tb), (x, y) => x * y, 0],
        ['div', ta.div(tb), (x, y) => x / y, 1e-7],
      ];
      for (const [name, out, fn, tol] of binary) close(out, bc(fn), tol, name, [2, 3]);
      const col = f32([2, 3], [2, 1]),
        row = f32([1, 10, 100], [1, 3]);
      close(col.mul(row), [2, 20, 200, 3, 30, 300], 0, 'outer product by broadcasting', [2, 3]);
      close(col.add(row), [3, 12, 102, 4, 13, 103], 0, 'outer sum', [2, 3]);
    }));

  it('tensor ⊕ scalar, pow, remainder (sign of the divisor, as Python)', () =>
    tidy(() => {
      const t = f32([-3, -1.5, 0, 2, 7], [5]);
      close(t.add(2), [-1, 0.5, 2, 4, 9], 0, 'add scalar');
      close(t.sub(0.5), [-3.5, -2, -0.5, 1.5, 6.5], 0, 'sub scalar');
      close(t.mul(-2), [6, 3, -0, -4, -14], 0, 'mul scalar');
      close(t.div(4), [-0.75, -0.375, 0, 0.5, 1.75], 0, 'div scalar');
      close(t.pow(2), [9, 2.25, 0, 4, 49], 0, 'pow 2');
      close(f32([4, 9, 16], [3]).pow(0.5), [2, 3, 4], 1e-7, 'pow 0.5');
      close(t.remainder(2), [1, 0.5, 0, 0, 1], 0, 'remainder');
      close(f32([2, 3], [2]).pow(f32([3, 2], [2])), [8, 9], 0, 'pow tensor');
    }));

  it('unary ops: neg abs sign floor sqrt rsqrt exp log sigmoid tanh isfinite', () =>
    tidy(() => {
      const xs = [-2.5, -1, -0.25, 0.3, 1, 2.7];
      const t = f32(xs, [6]);
      const fx = (fn: (x: number) => number): number[] => xs.map((x) => Math.fround(fn(x)));
      const pos = [0.01, 0.25, 1, 2, 100];
      const tp = f32(pos, [5]);
      // name, result, its definition, the arguments it was computed from, tolerance
      const unary: [string, Tensor, (x: number) => number, number[], number][] = [
        ['neg', t.neg(), (x) => -x, xs, 0],
        ['abs', t.abs(), Math.abs, xs, 0],
        ['sign', t.sign(), Math.sign, xs, 0],
        ['floor', t.floor(), Math.floor, xs, 0],
        ['exp', t.exp(), Math.exp, xs, 1e-6],
        ['sigmoid', t.sigmoid(), (x) => 1 / (1 + Math.exp(-x)), xs, 1e-6],
        ['tanh', t.tanh(), Math.tanh, xs, 1e-6],
        ['sqrt', tp.sqrt(), Math.sqrt, pos, 1e-6],
        ['rsqrt', tp.rsqrt(), (x) => 1 / Math.sqrt(x), pos, 1e-5],
        ['log', tp.log(), Math.log, pos, 1e-6],
      ];
      for (const [name, out, fn, args, tol] of unary) close(out, args === xs ? fx(fn) : args.map(fn), tol, name);
      const special = f32([-1, 0, Infinity, -Infinity, NaN], [5]);
      const s = vals(special.sqrt());
      assert.ok(Number.isNaN(s[0]) && s[1] === 0 && s[2] === Infinity, `sqrt specials ${s}`);
      const l = vals(special.log());
      assert.ok(Number.isNaN(l[0]) && l[1] === -Infinity && l[2] === Infinity, `log specials ${l}`);
      assert.deepEqual(vals(special.isfinite()), [1, 1, 0, 0, 0]);
      assert.equal(special.isfinite().dtype, 'bool');
    }));

  it('comparisons give bool tensors; maximum/minimum; logicalAnd/Not', () =>
    tidy(() => {
      const a = f32([1, 2, 3, 4], [4]),
        b = f32([4, 2, 1, 5], [4]);
      const cmp: [string, Tensor, number[]][] = [
        ['eq', a.eq(b), [0, 1, 0, 0]],
        ['ne', a.ne(b), [1, 0, 1, 1]],
        ['lt', a.lt(b), [1, 0, 0, 1]],
        ['le', a.le(b), [1, 1, 0, 1]],
        ['gt', a.gt(b), [0, 0, 1, 0]],
        ['ge', a.ge(b), [0, 1, 1, 0]],
        ['eq scalar', a.eq(3), [0, 0, 1, 0]],
        ['lt scalar', a.lt(2.5), [1, 1, 0, 0]],
        ['ge scalar', a.ge(2), [0, 1, 1, 1]],
      ];
      for (const [name, t, expected] of cmp) {
        assert.equal(t.dtype, 'bool', name);
        assert.deepEqual(vals(t), expected, name);
      }
      close(a.maximum(b), [4, 2, 3, 5], 0, 'maximum');
      close(a.minimum(b), [1, 2, 1, 4], 0, 'minimum');
      assert.deepEqual(vals(a.gt(1).logicalAnd(b.gt(1))), [0, 1, 0, 1]);
      assert.deepEqual(vals(a.gt(2).logicalNot()), [1, 1, 0, 0]);
    }));

  it('where with tensors, broadcasting and scalars; clamp; maskedFill', () =>
    tidy(() => {
      const cond = tensor([1, 0, 0, 1], [4], 'bool');
      const a = f32([1, 2, 3, 4], [4]),
        b = f32([-1, -2, -3, -4], [4]);
      close(where(cond, a, b), [1, -2, -3, 4], 0, 'where tensors');
      close(where(cond, a, 0), [1, 0, 0, 4], 0, 'where scalar b');
      close(where(cond, 9, b), [9, -2, -3, 9], 0, 'where scalar a');
      const both = where(cond, 1, 0.5);
      assert.equal(both.dtype, 'float32');
      close(both, [1, 0.5, 0.5, 1], 0, 'where two scalars');
      const cond2 = tensor([1, 0], [2, 1], 'bool');
      close(where(cond2, f32([1, 2, 3], [1, 3]), f32([7], [1])), [1, 2, 3, 7, 7, 7], 0, 'where broadcast', [2, 3]);
      const x = f32([-3, -0.5, 0, 0.5, 3], [5]);
      close(x.clamp(-1, 1), [-1, -0.5, 0, 0.5, 1], 0, 'clamp');
      close(x.clamp(0), [0, 0, 0, 0.5, 3], 0, 'clamp min only');
      close(x.clamp(null, 0), [-3, -0.5, 0, 0, 0], 0, 'clamp max only');
      close(x.maskedFill(x.lt(0), -100), [-100, -100, 0, 0.5, 3], 0, 'maskedFill');
    }));

  it('in-place add_ (alpha, scalar), mul_, addcmul_, addcdiv_, copy_, fill_', () =>
    tidy(() => {
      const t = f32([1, 2, 3], [3]);
      t.add_(f32([1, 1, 1], [3]), 2);
      close(t, [3, 4, 5], 0, 'add_ tensor alpha');
      t.add_(1);
      close(t, [4, 5, 6], 0, 'add_ scalar');
      t.add_(1, 3);
      close(t, [7, 8, 9], 0, 'add_ scalar with alpha multiplies like torch');
      t.mul_(0.5);
      close(t, [3.5, 4, 4.5], 0, 'mul_');
      t.addcmul_(f32([1, 2, 3], [3]), f32([2, 2, 2], [3]), 0.5);
      close(t, [4.5, 6, 7.5], 0, 'addcmul_');
      t.addcdiv_(f32([3, 3, 3], [3]), f32([1, 2, 3], [3]), 2);
      close(t, [10.5, 9, 9.5], 0, 'addcdiv_');
      t.copy_(f32([7], [1]));
      close(t, [7, 7, 7], 0, 'copy_ broadcast');
      t.fill_(-2);
      close(t, [-2, -2, -2], 0, 'fill_');
    }));
});

describe('matmul and linear', () => {
  const mm = (a: number[], b: number[], m: number, k: number, n: number): number[] => {
    const out: number[] = [];
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
        out.push(s);
      }
    return out;
  };

  it('2-D, batched with broadcasting, vector cases', () =>
    tidy(() => {
      close(
        f32([1, 2, 3, 4, 5, 6], [2, 3]).matmul(f32([7, 8, 9, 10, 11, 12], [3, 2])),
        [58, 64, 139, 154],
        0,
        'by hand',
        [2, 2],
      );
      const a = randArray(2 * 4 * 5, 1),
        b = randArray(5 * 3, 2);
      const out = f32(a, [2, 4, 5]).matmul(f32(b, [5, 3]));
      close(
        out,
        [...mm(a.slice(0, 20), b, 4, 5, 3), ...mm(a.slice(20), b, 4, 5, 3)],
        1e-5,
        'batched × broadcast',
        [2, 4, 3],
      );
      const v = [1, -1, 2];
      close(f32(v, [3]).matmul(f32([1, 2, 3, 4, 5, 6], [3, 2])), [1 - 3 + 10, 2 - 4 + 12], 0, 'vector @ matrix', [2]);
      close(f32([1, 2, 3, 4, 5, 6], [2, 3]).matmul(f32(v, [3])), [1 - 2 + 6, 4 - 5 + 12], 0, 'matrix @ vector', [2]);
    }));

  it('linear: y = x Wᵀ + b, with and without bias', () =>
    tidy(() => {
      const x = randArray(3 * 4, 3),
        w = randArray(5 * 4, 4),
        b = randArray(5, 5);
      const wt: number[] = [];
      for (let k = 0; k < 4; k++) for (let o = 0; o < 5; o++) wt.push(w[o * 4 + k]);
      const xw = mm(x, wt, 3, 4, 5);
      close(F.linear(f32(x, [3, 4]), f32(w, [5, 4])), xw, 1e-6, 'no bias', [3, 5]);
      close(
        F.linear(f32(x, [3, 4]), f32(w, [5, 4]), f32(b, [5])),
        xw.map((v, i) => v + b[i % 5]),
        1e-6,
        'bias',
        [3, 5],
      );
      close(
        F.linear(f32(x, [1, 3, 4]), f32(w, [5, 4]), f32(b, [5])),
        xw.map((v, i) => v + b[i % 5]),
        1e-6,
        '3-D input',
        [1, 3, 5],
      );
    }));
});

describe('convolutions', () => {
  type Pair = [number, number];
  // name, input shape, weight shape, bias, stride, padding, dilation, groups
  const rows: [string, number[], number[], boolean, Pair, Pair, Pair, number][] = [
    ['plain 3x3', [2, 3, 6, 5], [4, 3, 3, 3], true, [1, 1], [0, 0], [1, 1], 1],
    ['stride 2 padding 1', [1, 3, 7, 6], [2, 3, 3, 3], true, [2, 2], [1, 1], [1, 1], 1],
    ['asymmetric stride/padding', [1, 2, 6, 7], [3, 2, 3, 2], false, [2, 1], [0, 2], [1, 1], 1],
    ['dilation 2 padding 2', [1, 2, 7, 7], [2, 2, 3, 3], true, [1, 1], [2, 2], [2, 2], 1],
    ['groups 2', [2, 4, 5, 5], [6, 2, 3, 3], true, [1, 1], [1, 1], [1, 1], 2],
    ['depthwise', [1, 3, 5, 4], [3, 1, 3, 3], true, [2, 2], [1, 1], [1, 1], 3],
    ['1x1', [1, 5, 3, 3], [2, 5, 1, 1], true, [1, 1], [0, 0], [1, 1], 1],
  ];
  const cases = rows.map(([name, xs, ws, bias, stride, padding, dilation, groups]) => ({
    name,
    xs,
    ws,
    bias,
    stride,
    padding,
    dilation,
    groups,
  }));
  for (const c of cases) {
    it(`conv2d ${c.name}`, () =>
      tidy(() => {
        const x = randArray(prod(c.xs), 10),
          w = randArray(prod(c.ws), 11),
          b = c.bias ? randArray(c.ws[0], 12) : null;
        const ref = conv2dRef(x, c.xs, w, c.ws, b, c);
        const out = F.conv2d(f32(x, c.xs), f32(w, c.ws), b ? f32(b, [c.ws[0]]) : null, {
          stride: c.stride,
          padding: c.padding,
          dilation: c.dilation,
          groups: c.groups,
        });
        close(out, ref.data, 1e-5, c.name, ref.shape);
      }));
  }

  it('conv_transpose2d k2 s2: out[o,2i+a,2j+b] = bias[o] + Σ_c in[c,i,j]·W[c,o,a,b]', () =>
    tidy(() => {
      const [C, O, H, W] = [3, 2, 3, 4];
      const x = randArray(C * H * W, 20),
        w = randArray(C * O * 4, 21),
        b = randArray(O, 22);
      const expected = new Array<number>(O * 2 * H * 2 * W);
      for (let o = 0; o < O; o++)
        for (let i = 0; i < H; i++)
          for (let j = 0; j < W; j++)
            for (let a = 0; a < 2; a++)
              for (let bb = 0; bb < 2; bb++) {
                let s = b[o];
                for (let c = 0; c < C; c++) s += x[(c * H + i) * W + j] * w[((c * O + o) * 2 + a) * 2 + bb];
                expected[(o * 2 * H + 2 * i + a) * 2 * W + 2 * j + bb] = s;
              }
      const out = F.convTranspose2d(f32(x, [1, C, H, W]), f32(w, [C, O, 2, 2]), f32(b, [O]), { stride: 2 });
      close(out, expected, 1e-5, 'k2s2', [1, O, 2 * H, 2 * W]);
    }));

  it('conv_transpose2d k3 s2 p1 output_padding 1, and dilation 2', () =>
    tidy(() => {
      const xs = [2, 2, 3, 3],
        ws = [2, 3, 3, 3];
      const x = randArray(prod(xs), 23),
        w = randArray(prod(ws), 24),
        b = randArray(3, 25);
      const r1 = convTranspose2dRef(x, xs, w, ws, b, 2, 1, 1, 1);
      close(
        F.convTranspose2d(f32(x, xs), f32(w, ws), f32(b, [3]), { stride: 2, padding: 1, outputPadding: 1 }),
        r1.data,
        1e-5,
        'k3s2p1op1',
        r1.shape,
      );
      const r2 = convTranspose2dRef(x, xs, w, ws, null, 1, 0, 0, 2);
      close(F.convTranspose2d(f32(x, xs), f32(w, ws), null, { dilation: 2 }), r2.data, 1e-5, 'dilation 2', r2.shape);
    }));
});

describe('normalisation', () => {
  it('layer_norm over the last dim and the last two dims, with and without affine', () =>
    tidy(() => {
      const shape = [2, 3, 4];
      const x = randArray(24, 30, -3, 3),
        w = randArray(4, 31),
        b = randArray(4, 32);
      const eps = 1e-5;
      const norm = (xs: number[]): number[] => {
        const m = xs.reduce((s, v) => s + v, 0) / xs.length;
        const v = xs.reduce((s, u) => s + (u - m) ** 2, 0) / xs.length; // biased
        return xs.map((u) => (u - m) / Math.sqrt(v + eps));
      };
      const last: number[] = [];
      for (let r = 0; r < 6; r++) last.push(...norm(x.slice(r * 4, r * 4 + 4)).map((v, j) => v * w[j] + b[j]));
      close(F.layerNorm(f32(x, shape), [4], f32(w, [4]), f32(b, [4]), eps), last, 1e-5, 'last dim', shape);
      const two: number[] = [];
      for (let r = 0; r < 2; r++) two.push(...norm(x.slice(r * 12, r * 12 + 12)));
      close(F.layerNorm(f32(x, shape), [3, 4], null, null, eps), two, 1e-5, 'last two dims', shape);
    }));

  it('batch_norm train: batch statistics, running stats updated with unbiased variance; eval uses running stats', () =>
    tidy(() => {
      const [N, C, H, W] = [3, 2, 2, 2];
      const x = randArray(N * C * H * W, 40, -2, 3);
      const w = [1.5, -0.5],
        b = [0.1, 0.2],
        rm0 = [0.5, -1],
        rv0 = [2, 0.5];
      const momentum = 0.1,
        eps = 1e-5,
        n = N * H * W;
      const chan = (c: number): number[] => {
        const out: number[] = [];
        for (let k = 0; k < N; k++) out.push(...x.slice((k * C + c) * H * W, (k * C + c + 1) * H * W));
        return out;
      };
      const mean = [0, 1].map((c) => chan(c).reduce((s, v) => s + v, 0) / n);
      const biased = [0, 1].map((c) => chan(c).reduce((s, v) => s + (v - mean[c]) ** 2, 0) / n);
      const expected = x.map((v, i) => {
        const c = Math.floor(i / (H * W)) % C;
        return ((v - mean[c]) / Math.sqrt(biased[c] + eps)) * w[c] + b[c];
      });
      const rm = f32(rm0, [C]),
        rv = f32(rv0, [C]);
      const out = F.batchNorm(f32(x, [N, C, H, W]), rm, rv, f32(w, [C]), f32(b, [C]), true, momentum, eps);
      close(out, expected, 1e-5, 'train output', [N, C, H, W]);
      const rmExp = [0, 1].map((c) => (1 - momentum) * rm0[c] + momentum * mean[c]);
      const rvExp = [0, 1].map((c) => (1 - momentum) * rv0[c] + momentum * biased[c] * (n / (n - 1)));
      close(rm, rmExp, 1e-6, 'running_mean');
      close(rv, rvExp, 1e-6, 'running_var (unbiased)');
      const rmAfter = vals(rm),
        rvAfter = vals(rv);

      const evalOut = F.batchNorm(f32(x, [N, C, H, W]), rm, rv, f32(w, [C]), f32(b, [C]), false, momentum, eps);
      const evalExp = x.map((v, i) => {
        const c = Math.floor(i / (H * W)) % C;
        return ((v - rmExp[c]) / Math.sqrt(rvExp[c] + eps)) * w[c] + b[c];
      });
      close(evalOut, evalExp, 1e-5, 'eval output');
      close(rm, rmAfter, 0, 'running_mean unchanged in eval');
      close(rv, rvAfter, 0, 'running_var unchanged in eval');
    }));
});

describe('activations, softmax, losses, dropout', () => {
  it('gelu is the exact erf form (not the tanh approximation); relu', () =>
    tidy(() => {
      const xs = [...randArray(40, 50, -4, 4), -8, -1, 0, 1, 8];
      const exact = xs.map((x) => 0.5 * x * (1 + erf(x / Math.SQRT2)));
      close(F.gelu(f32(xs, [xs.length])), exact, 1e-6, 'gelu');
      // 0.8413447 (erf) vs 0.8411920 (tanh approximation) at x = 1
      assert.ok(Math.abs(vals(F.gelu(f32([1], [1])))[0] - 0.8413447460685429) < 1e-6);
      close(
        F.relu(f32(xs, [xs.length])),
        xs.map((x) => Math.max(0, x)),
        0,
        'relu',
      );
    }));

  it('softmax and log_softmax along dim 1 and dim 0', () =>
    tidy(() => {
      const x = [1, 2, 3, -1, 0, 1000];
      const sm = (row: number[]): number[] => {
        const m = Math.max(...row);
        const e = row.map((v) => Math.exp(v - m));
        const s = e.reduce((a, v) => a + v, 0);
        return e.map((v) => v / s);
      };
      const lsm = (row: number[]): number[] => {
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
        return row.map((v) => v - lse);
      };
      const t = f32(x, [2, 3]);
      close(F.softmax(t, 1), [...sm(x.slice(0, 3)), ...sm(x.slice(3))], 1e-6, 'softmax dim 1');
      close(
        F.logSoftmax(t, -1),
        [...lsm(x.slice(0, 3)), ...lsm(x.slice(3))],
        1e-5,
        'log_softmax dim -1 (stable at 1000)',
      );
      const cols = [0, 1, 2].map((j) => sm([x[j], x[3 + j]]));
      close(
        F.softmax(t, 0),
        [cols[0][0], cols[1][0], cols[2][0], cols[0][1], cols[1][1], cols[2][1]],
        1e-6,
        'softmax dim 0',
      );
    }));

  it('cross_entropy with ignore_index, reductions none/mean/sum and class weights', () =>
    tidy(() => {
      const [N, C, H, W] = [2, 3, 2, 2];
      const logits = randArray(N * C * H * W, 60, -3, 3);
      const target = [0, 2, 255, 1, 1, 255, 0, 2];
      const cw = [0.2, 1, 3];
      const perPixel: number[] = [];
      for (let n = 0; n < N; n++)
        for (let p = 0; p < H * W; p++) {
          const t = target[n * H * W + p];
          if (t === 255) {
            perPixel.push(0);
            continue;
          }
          const z = [0, 1, 2].map((c) => logits[(n * C + c) * H * W + p]);
          const lse = Math.log(z.reduce((s, v) => s + Math.exp(v), 0));
          perPixel.push(lse - z[t]);
        }
      const lt = f32(logits, [N, C, H, W]),
        tt = tensor(target, [N, H, W], 'int64');
      close(F.crossEntropy(lt, tt, { reduction: 'none', ignoreIndex: 255 }), perPixel, 1e-5, 'none', [N, H, W]);
      const valid = target.filter((t) => t !== 255).length;
      const total = perPixel.reduce((s, v) => s + v, 0);
      close(
        F.crossEntropy(lt, tt, { reduction: 'mean', ignoreIndex: 255 }),
        [total / valid],
        1e-5,
        'mean over non-ignored',
        [],
      );
      close(F.crossEntropy(lt, tt, { reduction: 'sum', ignoreIndex: 255 }), [total], 1e-5, 'sum', []);
      let wsum = 0,
        wl = 0;
      target.forEach((t, i) => {
        if (t === 255) return;
        wsum += cw[t];
        wl += cw[t] * perPixel[i];
      });
      close(
        F.crossEntropy(lt, tt, { reduction: 'mean', ignoreIndex: 255, weight: f32(cw, [3]) }),
        [wl / wsum],
        1e-5,
        'weighted mean',
      );
      // 2-D logits [N, C] with the default ignore index -100
      const l2 = [1, 2, 0.5, -1, 0, 3];
      const ce2 = (row: number[], t: number): number => Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[t];
      close(
        F.crossEntropy(f32(l2, [2, 3]), tensor([2, -100], [2], 'int64')),
        [ce2(l2.slice(0, 3), 2)],
        1e-6,
        '2-D, default ignore',
      );
    }));

  it('dropout: train zeroes ≈ p and scales survivors by 1/(1−p); eval is the identity', () =>
    tidy(() => {
      manualSeed(7);
      const p = 0.3,
        n = 100_000;
      const out = vals(F.dropout(ones([n]), p, true));
      const zerosFrac = out.filter((v) => v === 0).length / n;
      assert.ok(Math.abs(zerosFrac - p) < 0.01, `zero fraction ${zerosFrac}`);
      const scale = Math.fround(1 / (1 - p));
      assert.ok(
        out.every((v) => v === 0 || Math.abs(v - scale) < 1e-6),
        'survivors scaled by 1/(1-p)',
      );
      const x = randArray(50, 70);
      close(F.dropout(f32(x, [50]), p, false), x.map(Math.fround), 0, 'eval identity');
      close(F.dropout(f32(x, [50]), 0, true), x.map(Math.fround), 0, 'p = 0 identity');
      assert.ok(
        vals(F.dropout(f32(x, [50]), 1, true)).every((v) => v === 0),
        'p = 1 zeroes everything',
      );
    }));

  it('channel dropout zeroes whole channels', () =>
    tidy(() => {
      manualSeed(8);
      const [N, C, H, W] = [4, 64, 5, 5];
      const out = vals(F.dropout2d(ones([N, C, H, W]), 0.5, true));
      let dropped = 0;
      for (let ch = 0; ch < N * C; ch++) {
        const plane = out.slice(ch * H * W, (ch + 1) * H * W);
        const allZero = plane.every((v) => v === 0),
          allTwo = plane.every((v) => v === 2);
        assert.ok(allZero || allTwo, `channel ${ch} mixes dropped and kept values`);
        if (allZero) dropped++;
      }
      assert.ok(Math.abs(dropped / (N * C) - 0.5) < 0.15, `dropped ${dropped}/${N * C}`);
      close(F.dropout2d(ones([1, 2, 2, 2]), 0.5, false), new Array(8).fill(1), 0, 'eval identity');
    }));
});

describe('resampling and pooling', () => {
  it('bilinear align_corners=false upsample and downsample', () =>
    tidy(() => {
      for (const [H, W, OH, OW] of [
        [3, 4, 7, 5],
        [6, 6, 4, 3],
        [2, 2, 8, 8],
        [5, 3, 5, 3],
      ]) {
        const x = randArray(2 * H * W, 80 + H);
        const out = F.interpolate(f32(x, [1, 2, H, W]), [OH, OW], 'bilinear', false);
        close(out, bilinearRef(x, 2, H, W, OH, OW, false), 1e-5, `bilinear ${H}x${W}->${OH}x${OW}`, [1, 2, OH, OW]);
      }
      // By hand: [0, 1] -> 4 samples at src = max(-0.25,0), 0.25, 0.75, 1.25->clamped index
      close(F.interpolate(f32([0, 1], [1, 1, 1, 2]), [1, 4]), [0, 0.25, 0.75, 1], 1e-7, 'by hand');
    }));

  it('bilinear align_corners=true', () =>
    tidy(() => {
      const x = randArray(12, 90);
      close(
        F.interpolate(f32(x, [1, 1, 3, 4]), [5, 7], 'bilinear', true),
        bilinearRef(x, 1, 3, 4, 5, 7, true),
        1e-5,
        'align_corners',
      );
      close(F.interpolate(f32([0, 3], [1, 1, 1, 2]), [1, 4], 'bilinear', true), [0, 1, 2, 3], 1e-6, 'by hand');
    }));

  it('nearest', () =>
    tidy(() => {
      for (const [H, W, OH, OW] of [
        [3, 4, 7, 5],
        [5, 5, 2, 3],
      ]) {
        const x = randArray(H * W, 100 + H);
        close(
          F.interpolate(f32(x, [1, 1, H, W]), [OH, OW], 'nearest'),
          nearestRef(x, 1, H, W, OH, OW),
          0,
          `nearest ${H}x${W}->${OH}x${OW}`,
        );
      }
    }));

  it('adaptive_avg_pool2d with overlapping bins, to 1x1 and identity', () =>
    tidy(() => {
      for (const [H, W, OH, OW] of [
        [7, 5, 3, 2],
        [6, 6, 4, 4],
        [5, 7, 1, 1],
        [3, 3, 3, 3],
        [10, 10, 6, 3],
      ]) {
        const x = randArray(2 * H * W, 110 + H);
        close(
          F.adaptiveAvgPool2d(f32(x, [2, 1, H, W]), [OH, OW]),
          adaptiveAvgRef(x, 2, H, W, OH, OW),
          1e-6,
          `adaptive ${H}x${W}->${OH}x${OW}`,
          [2, 1, OH, OW],
        );
      }
    }));

  it('max_pool2d with padding, stride, ceil mode', () =>
    tidy(() => {
      const cases: [number, number, number, number, boolean][] = [
        [5, 3, 2, 1, false],
        [5, 2, 2, 0, true],
        [6, 2, 2, 0, false],
        [7, 3, 2, 1, true],
      ];
      for (const [H, k, s, p, ceil] of cases) {
        const x = randArray(2 * H * H, 120 + H);
        const ref = maxPoolRef(x, 2, H, H, k, s, p, ceil);
        close(
          F.maxPool2d(f32(x, [1, 2, H, H]), k, { stride: s, padding: p, ceilMode: ceil }),
          ref.data,
          0,
          `maxpool H${H} k${k} s${s} p${p} ceil=${ceil}`,
          [1, 2, ref.OH, ref.OW],
        );
      }
    }));
});

describe('shapes, views and indexing', () => {
  const base = Array.from({ length: 24 }, (_, i) => i);

  it('cat and stack along several dims', () =>
    tidy(() => {
      const a = f32([1, 2, 3, 4], [2, 2]),
        b = f32([5, 6], [1, 2]),
        c = f32([7, 8], [2, 1]);
      close(cat([a, b], 0), [1, 2, 3, 4, 5, 6], 0, 'cat 0', [3, 2]);
      close(cat([a, c], 1), [1, 2, 7, 3, 4, 8], 0, 'cat 1', [2, 3]);
      close(stack([a, a.mul(10)], 0), [1, 2, 3, 4, 10, 20, 30, 40], 0, 'stack 0', [2, 2, 2]);
      close(stack([a, a.mul(10)], 2), [1, 10, 2, 20, 3, 30, 4, 40], 0, 'stack 2', [2, 2, 2]);
      const parts = f32([1, 2, 3, 4, 5], [5]).split(2);
      assert.deepEqual(parts.map(vals), [[1, 2], [3, 4], [5]]);
    }));

  it('reshape, view, permute, transpose, flatten, squeeze, unsqueeze, expand, repeat, contiguous', () =>
    tidy(() => {
      const t = f32(base, [2, 3, 4]);
      close(t.reshape(4, 6), base, 0, 'reshape', [4, 6]);
      close(t.view(6, -1), base, 0, 'view -1', [6, 4]);
      const perm = [2, 0, 1];
      const pshape = perm.map((d) => [2, 3, 4][d]);
      const permExpected = [...indices(pshape)].map((ix) => {
        const src = [0, 0, 0];
        perm.forEach((d, k) => {
          src[d] = ix[k];
        });
        return at(base, [2, 3, 4], src);
      });
      const p = t.permute(...perm);
      close(p, permExpected, 0, 'permute', pshape);
      assert.equal(p.isContiguous(), false);
      assert.equal(p.contiguous().isContiguous(), true);
      close(
        t.transpose(0, 2),
        [...indices([4, 3, 2])].map(([i, j, k]) => at(base, [2, 3, 4], [k, j, i])),
        0,
        'transpose',
        [4, 3, 2],
      );
      close(t.flatten(), base, 0, 'flatten', [24]);
      close(t.flatten(1), base, 0, 'flatten(1)', [2, 12]);
      close(t.flatten(0, 1), base, 0, 'flatten(0,1)', [6, 4]);
      assert.deepEqual(t.unsqueeze(1).shape, [2, 1, 3, 4]);
      assert.deepEqual(t.unsqueeze(-1).shape, [2, 3, 4, 1]);
      assert.deepEqual(zeros([1, 3, 1]).squeeze().shape, [3]);
      assert.deepEqual(zeros([1, 3, 1]).squeeze(0).shape, [3, 1]);
      close(f32([1, 2], [2, 1]).expand(2, 3), [1, 1, 1, 2, 2, 2], 0, 'expand', [2, 3]);
      close(f32([1, 2], [1, 2]).repeat(2, 2), [1, 2, 1, 2, 1, 2, 1, 2], 0, 'repeat', [2, 4]);
      const cl = zeros([1, 3, 2, 2]).contiguous('channels_last');
      assert.equal(cl.isContiguous('channels_last'), true);
      assert.equal(cl.isContiguous(), false);
      close(f32(base, [1, 2, 3, 4]).contiguous('channels_last'), base, 0, 'channels_last keeps logical order');
    }));

  it('views share storage with their base', () =>
    tidy(() => {
      const t = f32(base, [2, 3, 4]);
      t.view(24).slice(0, 0, 1).fill_(100);
      t.transpose(0, 1).select(0, 2).fill_(-1); // t[:, 2, :]
      const expected = base.map((v, i) => (i === 0 ? 100 : Math.floor(i / 4) % 3 === 2 ? -1 : v));
      close(t, expected, 0, 'writes through views');
    }));

  it('slice with step, negative start, clamped end; select', () =>
    tidy(() => {
      const t = f32(base, [4, 6]);
      close(
        t.slice(1, 1, 100, 2),
        [...indices([4, 3])].map(([i, j]) => base[i * 6 + 1 + 2 * j]),
        0,
        'x[:, 1::2]',
        [4, 3],
      );
      close(t.slice(0, -2, 4), base.slice(12), 0, 'x[-2:]', [2, 6]);
      close(t.slice(0, 1, 3).slice(1, 2, 4), [8, 9, 14, 15], 0, 'x[1:3, 2:4]', [2, 2]);
      close(t.select(1, 5), [5, 11, 17, 23], 0, 'x[:, 5]', [4]);
      close(t.select(0, -1), base.slice(18), 0, 'x[-1]', [6]);
    }));

  it('index_select, gather, flip, pad', () =>
    tidy(() => {
      const t = f32(base.slice(0, 12), [3, 4]);
      close(
        t.indexSelect(0, tensor([2, 0, 2], [3], 'int64')),
        [8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11],
        0,
        'index_select 0',
        [3, 4],
      );
      close(t.indexSelect(1, tensor([3, 1], [2], 'int64')), [3, 1, 7, 5, 11, 9], 0, 'index_select 1', [3, 2]);
      close(t.gather(1, tensor([0, 3, 1, 1, 2, 0], [3, 2], 'int64')), [0, 3, 5, 5, 10, 8], 0, 'gather 1', [3, 2]);
      close(t.gather(0, tensor([2, 1, 0, 2], [1, 4], 'int64')), [8, 5, 2, 11], 0, 'gather 0', [1, 4]);
      close(t.flip(1), [3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8], 0, 'flip 1');
      close(t.flip(0, 1), base.slice(0, 12).reverse(), 0, 'flip 0,1');
      const small = f32([1, 2, 3, 4], [1, 2, 2]);
      close(F.pad(small, [1, 0, 0, 1], -1), [-1, 1, 2, -1, 3, 4, -1, -1, -1], 0, 'pad left 1 bottom 1', [1, 3, 3]);
      close(F.pad(f32(base.slice(0, 12), [3, 4]), [-1, -1]), [1, 2, 5, 6, 9, 10], 0, 'negative pad crops', [3, 2]);
    }));

  it('sum, mean, max, min, argmax (first index on ties)', () =>
    tidy(() => {
      const x = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 9];
      const t = f32(x, [3, 4]);
      close(t.sum(), [x.reduce((a, b) => a + b, 0)], 0, 'sum all', []);
      close(t.sum(0), [13, 13, 11, 16], 0, 'sum dim 0', [4]);
      close(t.sum(1, true), [9, 22, 22], 0, 'sum dim 1 keepdim', [3, 1]);
      close(t.sum([0, 1]), [53], 0, 'sum dims [0,1]', []);
      close(t.mean(), [53 / 12], 1e-6, 'mean all');
      close(t.mean(1), [9 / 4, 22 / 4, 22 / 4], 1e-6, 'mean dim 1');
      close(t.max(), [9], 0, 'max');
      close(t.min(), [1], 0, 'min');
      const { values, indices: idx } = t.maxDim(1);
      close(values, [4, 9, 9], 0, 'max values');
      assert.deepEqual(ints(idx), [2, 1, 3]);
      assert.deepEqual(ints(f32([1, 3, 3, 2], [4]).argmax()), [1], 'argmax first of ties');
      assert.deepEqual(ints(t.argmax()), [5], 'argmax flattened, first of ties');
      assert.deepEqual(ints(t.argmax(1)), [2, 1, 3]);
      assert.deepEqual(ints(f32([7, 7, 7, 7, 7, 7], [2, 3]).argmax(1)), [0, 0]);
      const am = t.argmax(0, true);
      assert.deepEqual(am.shape, [1, 4]);
      assert.deepEqual(ints(am), [1, 1, 2, 2]); // column 0 is 3,5,5: the first 5 wins
    }));

  it('factories: zeros, ones, full, arange, empty shapes', () =>
    tidy(() => {
      const z = zeros([2, 3]);
      assert.equal(z.dtype, 'float32');
      close(z, new Array(6).fill(0), 0, 'zeros', [2, 3]);
      close(ones([3], 'float64'), [1, 1, 1], 0, 'ones');
      assert.equal(ones([3], 'float64').dtype, 'float64');
      close(full([2, 2], 2.5), [2.5, 2.5, 2.5, 2.5], 0, 'full');
      const ar = arange(0, 5);
      assert.equal(ar.dtype, 'int64');
      assert.deepEqual(ints(ar), [0, 1, 2, 3, 4]);
      assert.deepEqual(ints(arange(3, -3, -2)), [3, 1, -1]);
      close(arange(0, 1, 0.25, 'float32'), [0, 0.25, 0.5, 0.75], 0, 'float arange');
      assert.equal(zeros([0, 3]).numel, 0);
      assert.deepEqual(Array.from(zeros([0]).toFloat32Array()), []);
    }));
});

describe('random numbers', () => {
  it('same seed gives the same values; another seed different ones', () =>
    tidy(() => {
      manualSeed(1234);
      const a = vals(randn([64]));
      const u = vals(rand([64], -2, 3));
      manualSeed(1234);
      assert.deepEqual(vals(randn([64])), a);
      assert.deepEqual(vals(rand([64], -2, 3)), u);
      manualSeed(4321);
      assert.notDeepEqual(vals(randn([64])), a);
    }));

  it('rng state save/restore reproduces the stream', () =>
    tidy(() => {
      manualSeed(5);
      randn([10]);
      const state = getRngState();
      const a = vals(randn([32])),
        b = vals(rand([8])),
        c = vals(F.dropout(ones([32]), 0.5, true));
      randn([100]);
      setRngState(state);
      assert.deepEqual(vals(randn([32])), a);
      assert.deepEqual(vals(rand([8])), b);
      assert.deepEqual(vals(F.dropout(ones([32]), 0.5, true)), c);
    }));

  it('distributions: randn mean/std, rand range, bernoulli mean', () =>
    tidy(() => {
      manualSeed(99);
      const n = 100_000;
      const g = vals(randn([n]));
      const m = g.reduce((s, v) => s + v, 0) / n;
      const sd = Math.sqrt(g.reduce((s, v) => s + (v - m) ** 2, 0) / n);
      assert.ok(Math.abs(m) < 0.02 && Math.abs(sd - 1) < 0.02, `randn mean ${m} std ${sd}`);
      const u = vals(rand([n], 2, 5));
      assert.ok(
        u.every((v) => v >= 2 && v < 5),
        'rand in [2, 5)',
      );
      assert.ok(Math.abs(u.reduce((s, v) => s + v, 0) / n - 3.5) < 0.02);
      const bern = vals(bernoulli([n], 0.2));
      assert.ok(bern.every((v) => v === 0 || v === 1));
      assert.ok(Math.abs(bern.reduce((s: number, v) => s + v, 0) / n - 0.2) < 0.01);
    }));
});

describe('dtypes and memory sharing', () => {
  it('float32 / float64 / int32 / int64 / uint8 / bool round trips through typed arrays', () =>
    tidy(() => {
      const f = new Float32Array([1.5, -2.25, 3e-8, 1e30]);
      assert.deepEqual(fromArray(f, [2, 2], { copy: true }).toTypedArray(), f);
      const d = new Float64Array([Math.PI, -1e-300, 1e300]);
      assert.deepEqual(fromArray(d, [3], { copy: true }).toTypedArray(), d);
      const i32 = new Int32Array([-2147483648, -1, 0, 2147483647]);
      const ti32 = fromArray(i32, [4], { copy: true });
      assert.equal(ti32.dtype, 'int32');
      assert.deepEqual(ti32.toTypedArray(), i32);
      const i64 = new BigInt64Array([-(2n ** 63n), -1n, 2n ** 53n + 1n, 2n ** 63n - 1n]);
      const ti64 = fromArray(i64, [4], { copy: true });
      assert.equal(ti64.dtype, 'int64');
      assert.deepEqual(ti64.toTypedArray(), i64, 'int64 beyond 2^53 survives');
      const u8 = new Uint8Array([0, 1, 128, 255]);
      assert.deepEqual(fromArray(u8, [4], { copy: true }).toTypedArray(), u8);
      const b = fromArray(new Uint8Array([1, 0, 1]), [3], { dtype: 'bool', copy: true });
      assert.equal(b.dtype, 'bool');
      assert.deepEqual(vals(b.logicalNot()), [0, 1, 0]);
      assert.deepEqual(Array.from(b.toTypedArray() as Uint8Array), [1, 0, 1]);
      // a Node Buffer is a Uint8Array
      const buf = fromArray(Buffer.from([7, 8, 9]), [3], { copy: true });
      assert.equal(buf.dtype, 'uint8');
      assert.deepEqual(vals(buf), [7, 8, 9]);
      // tensor() in every dtype
      for (const dt of ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'uint8'] as const) {
        const t = tensor([1, 2, 3], [3], dt);
        assert.equal(t.dtype, dt);
        assert.deepEqual(vals(t), [1, 2, 3], dt);
      }
      // casts between integer and float dtypes
      assert.deepEqual(ints(f32([2.7, -2.7], [2]).to('int64')), [2, -2], 'float -> int truncates toward zero');
      close(tensor([3, -4], [2], 'int32').to('float32'), [3, -4], 0, 'int32 -> float32');
    }));

  it('float16 and bfloat16 bits round trip and convert as IEEE / truncated float32', () =>
    tidy(() => {
      // float16: 1.0 = 0x3c00, -2.0 = 0xc000, 0.5 = 0x3800, 65504 = 0x7bff, 2^-24 = 0x0001
      const h = new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001]);
      const th = fromArray(h, [5], { dtype: 'float16', copy: true });
      assert.equal(th.dtype, 'float16');
      assert.deepEqual(th.toTypedArray(), h);
      assert.deepEqual(vals(th), [1, -2, 0.5, 65504, 2 ** -24]);
      assert.deepEqual(
        f32([1, -2, 0.5, 65504, 2 ** -24], [5])
          .to('float16')
          .toTypedArray(),
        h,
      );
      // bfloat16: the top 16 bits of the float32 pattern
      const src = new Float32Array([1, -2, 3.140625, 1e20, -1e-20]);
      const bits = new Uint16Array(new Uint32Array(src.buffer).map((u) => u >>> 16));
      const tb = fromArray(bits, [5], { dtype: 'bfloat16', copy: true });
      assert.equal(tb.dtype, 'bfloat16');
      assert.deepEqual(tb.toTypedArray(), bits);
      const back = new Float32Array(new Uint32Array(Array.from(bits, (b) => b << 16)).buffer);
      assert.deepEqual(vals(tb), Array.from(back));
      assert.deepEqual(
        vals(f32([1, -2, 3.140625], [3]).to('bfloat16')),
        [1, -2, 3.140625],
        'exactly representable values survive',
      );
      // round-to-nearest-even on the cast: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 -> 1
      assert.deepEqual(vals(f32([1 + 2 ** -8, 1 + 3 * 2 ** -8], [2]).to('bfloat16')), [1, 1 + 2 ** -6]);
    }));

  it('fromArray without copy shares memory both ways; with copy it does not', () =>
    tidy(() => {
      const arr = new Float32Array([1, 2, 3, 4]);
      const t = fromArray(arr, [2, 2]);
      arr[1] = 42;
      assert.deepEqual(vals(t), [1, 42, 3, 4], 'array writes visible in the tensor');
      t.mul_(2);
      assert.deepEqual(Array.from(arr), [2, 84, 6, 8], 'tensor writes visible in the array');
      const c = fromArray(arr, [4], { copy: true });
      arr[0] = -1;
      assert.deepEqual(vals(c), [2, 84, 6, 8], 'copy is independent');
      // a view into the middle of a larger buffer (aligned offset)
      const big = new Float32Array([0, 0, 5, 6, 7, 0]);
      const sub = fromArray(big.subarray(2, 5), [3]);
      big[3] = 60;
      assert.deepEqual(vals(sub), [5, 60, 7]);
      // misaligned bytes are copied, never read misaligned
      const bytes = new Uint8Array(13);
      new DataView(bytes.buffer).setFloat32(1, 2.5, true);
      assert.deepEqual(vals(fromArray(bytes.subarray(1, 5), [1], { dtype: 'float32' })), [2.5]);
    }));

  it('dataView shares the tensor memory', () =>
    tidy(() => {
      const t = f32([1, 2, 3], [3]);
      const view = t.dataView();
      assert.equal(view.byteLength, 12);
      const asF32 = new Float32Array(view.buffer, view.byteOffset, 3);
      assert.deepEqual(Array.from(asF32), [1, 2, 3]);
      asF32[2] = 30;
      assert.deepEqual(vals(t), [1, 2, 30], 'write through the view');
      t.add_(1);
      assert.deepEqual(Array.from(asF32), [2, 3, 31], 'tensor writes seen by the view');
      // toBytes is a copy
      const bytes = t.toBytes();
      t.fill_(0);
      assert.deepEqual(Array.from(new Float32Array(bytes.buffer)), [2, 3, 31]);
      // copyToBuffer fills a preallocated array
      const out = new Float32Array(3);
      f32([9, 8, 7], [3]).copyToBuffer(out);
      assert.deepEqual(Array.from(out), [9, 8, 7]);
    }));

  it('item and noGrad results', () =>
    tidy(() => {
      assert.equal(f32([2.5], [1]).item(), 2.5);
      assert.equal(tensor([7], [], 'int64').item(), 7);
      const w = f32([1, 2], [2]).requiresGrad_();
      const y = noGrad(() => w.mul(2));
      assert.equal(y.requiresGrad, false);
      assert.equal(w.mul(2).requiresGrad, true);
    }));
});

describe('attention and multi-tensor optimizer kernels', () => {
  it('attention = softmax(q kᵀ · scale + bias) v under each attentionImpl setting; bad names refused', () =>
    tidy(() => {
      const [b, h, n, d] = [2, 3, 5, 4];
      const qd = randArray(b * h * n * d, 11),
        kd = randArray(b * h * n * d, 12);
      const vd = randArray(b * h * n * d, 13),
        bd = randArray(h * n * n, 14, -2, 2);
      const scale = 0.5;
      const expected: number[] = [];
      for (let bi = 0; bi < b; bi++)
        for (let hi = 0; hi < h; hi++)
          for (let i = 0; i < n; i++) {
            const base = (bi * h + hi) * n * d;
            const logits = Array.from({ length: n }, (_, j) => {
              let s = 0;
              for (let c = 0; c < d; c++) s += qd[base + i * d + c] * kd[base + j * d + c];
              return s * scale + bd[(hi * n + i) * n + j];
            });
            const m = Math.max(...logits);
            const e = logits.map((x) => Math.exp(x - m));
            const z = e.reduce((a, x) => a + x, 0);
            for (let c = 0; c < d; c++) expected.push(e.reduce((a, w, j) => a + (w / z) * vd[base + j * d + c], 0));
          }
      const shape = [b, h, n, d];
      const before = attentionImpl();
      try {
        for (const impl of ['math', 'sdpa', 'auto', 'blocked'] as const) {
          assert.equal(attentionImpl(impl), impl);
          close(
            F.attention(f32(qd, shape), f32(kd, shape), f32(vd, shape), f32(bd, [1, h, n, n]), scale),
            expected,
            2e-6,
            `attention (${impl})`,
            shape,
          );
        }
        assert.throws(() => attentionImpl('flash' as never), /expected auto, sdpa, math or blocked, got 'flash'/);
      } finally {
        attentionImpl(before);
      }
    }));

  it('ampUnscale multiplies every gradient by 1/scale and reports non-finite values', () =>
    tidy(() => {
      const g1 = f32([2, 4], [2]),
        g2 = f32([8], [1]);
      assert.equal(F.ampUnscale([g1, g2], 0.5), true);
      close(g1, [1, 2], 0, 'g1');
      close(g2, [4], 0, 'g2');
      const bad = f32([1, Infinity], [2]);
      assert.equal(F.ampUnscale([g1, bad], 0.5), false);
      assert.equal(F.ampUnscale([f32([NaN], [1])], 1), false);
      assert.equal(F.ampUnscale([], 1), true);
    }));

  it('adamwStep refuses lists of different lengths', () =>
    tidy(() => {
      const p = zeros([2]);
      assert.throws(
        () => F.adamwStep([p], [], [p], [p], [0.1], [1], { decay: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8 }),
        /differ in length/,
      );
    }));
});
