/**
 * Finite-difference gradient checks in float64: autograd's gradient of L = Σ f(x)·R (R a
 * fixed random tensor) against central differences (L(x+h) − L(x−h)) / 2h for every
 * element of every differentiable input.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { F, fromArray, noGrad, setNumThreads, tensor, tidy, type Tensor } from '../../src/tensor/index.js';
import { prod, randArray } from './ref.js';

interface Input {
  shape: number[];
  data?: number[]; // default: seeded uniform in [-1, 1)
  grad?: boolean; // default true
  dtype?: 'float64' | 'int64';
}

// Thousands of tiny ops: one thread avoids OpenMP hand-offs that dominate on a busy machine.
setNumThreads(1);

const H = 1e-6;
const RTOL = 1e-6;
const ATOL = 1e-8;

function gradcheck(name: string, f: (xs: Tensor[]) => Tensor, inputs: Input[], seed = 1): void {
  const data = inputs.map((inp, i) => Float64Array.from(inp.data ?? randArray(prod(inp.shape), seed * 100 + i)));
  const make = (i: number): Tensor => {
    const inp = inputs[i];
    if (inp.dtype === 'int64') return tensor(Array.from(data[i]), inp.shape, 'int64');
    return fromArray(data[i], inp.shape, { copy: true });
  };
  const wants = inputs.map((inp) => inp.dtype !== 'int64' && inp.grad !== false);
  const outShape = tidy(() => noGrad(() => f(inputs.map((_, i) => make(i))).shape));
  const weights = fromArray(Float64Array.from(randArray(prod(outShape), seed * 100 + 99)), outShape, { copy: true });
  const loss = (xs: Tensor[]): Tensor => f(xs).mul(weights).sum();

  // autograd
  const analytic = tidy(() => {
    const xs = inputs.map((_, i) => make(i));
    xs.forEach((x, i) => {
      if (wants[i]) x.requiresGrad_(true);
    });
    const l = loss(xs);
    assert.equal(l.dtype, 'float64', `${name}: computed in float64`);
    l.backward();
    return xs.map((x, i) => {
      if (!wants[i]) return null;
      const g = x.grad;
      assert.ok(g, `${name}: input ${i} has no gradient`);
      return Array.from(g.toTypedArray() as Float64Array);
    });
  });

  // central differences
  const evalLoss = (): number => tidy(() => noGrad(() => loss(inputs.map((_, i) => make(i))).item()));
  inputs.forEach((_, i) => {
    if (!wants[i]) return;
    const d = data[i];
    const a = analytic[i]!;
    assert.equal(a.length, d.length);
    for (let k = 0; k < d.length; k++) {
      const orig = d[k];
      d[k] = orig + H;
      const lp = evalLoss();
      d[k] = orig - H;
      const lm = evalLoss();
      d[k] = orig;
      const numeric = (lp - lm) / (2 * H);
      const err = Math.abs(a[k] - numeric);
      assert.ok(
        err <= ATOL + RTOL * Math.max(1, Math.abs(numeric)),
        `${name}: d/d input${i}[${k}] autograd ${a[k]} vs finite difference ${numeric} (|diff| ${err})`,
      );
    }
  });
  weights.dispose();
}

describe('gradient checks (float64, central differences)', () => {
  it('matmul (batched, broadcast)', () => {
    gradcheck('matmul', ([a, b]) => a.matmul(b), [{ shape: [2, 3, 4] }, { shape: [4, 2] }]);
  });

  it('linear', () => {
    gradcheck('linear', ([x, w, b]) => F.linear(x, w, b), [{ shape: [3, 4] }, { shape: [2, 4] }, { shape: [2] }]);
  });

  it('conv2d (stride 2, padding 1, dilation) and grouped conv2d', () => {
    gradcheck('conv2d', ([x, w, b]) => F.conv2d(x, w, b, { stride: 2, padding: 1 }), [
      { shape: [1, 2, 5, 5] },
      { shape: [3, 2, 3, 3] },
      { shape: [3] },
    ]);
    gradcheck(
      'conv2d dilated grouped',
      ([x, w]) => F.conv2d(x, w, null, { padding: 2, dilation: 2, groups: 2 }),
      [{ shape: [1, 4, 4, 4] }, { shape: [2, 2, 3, 3] }],
      2,
    );
  });

  it('conv_transpose2d (k2 s2, and k3 s2 p1 output_padding 1)', () => {
    gradcheck('conv_transpose2d k2s2', ([x, w, b]) => F.convTranspose2d(x, w, b, { stride: 2 }), [
      { shape: [1, 3, 2, 3] },
      { shape: [3, 2, 2, 2] },
      { shape: [2] },
    ]);
    gradcheck(
      'conv_transpose2d k3s2p1',
      ([x, w]) => F.convTranspose2d(x, w, null, { stride: 2, padding: 1, outputPadding: 1 }),
      [{ shape: [1, 2, 2, 2] }, { shape: [2, 2, 3, 3] }],
      3,
    );
  });

  it('layer_norm with affine parameters', () => {
    gradcheck('layer_norm', ([x, w, b]) => F.layerNorm(x, [4], w, b, 1e-6), [
      { shape: [3, 4] },
      { shape: [4] },
      { shape: [4] },
    ]);
  });

  it('batch_norm in training mode (batch statistics)', () => {
    gradcheck('batch_norm', ([x, w, b]) => F.batchNorm(x, null, null, w, b, true, 0.1, 1e-5), [
      { shape: [3, 2, 2, 2] },
      { shape: [2] },
      { shape: [2] },
    ]);
  });

  it('bilinear interpolate (align_corners false: up and down; true)', () => {
    gradcheck('bilinear up', ([x]) => F.interpolate(x, [5, 7], 'bilinear', false), [{ shape: [1, 2, 3, 4] }]);
    gradcheck('bilinear down', ([x]) => F.interpolate(x, [3, 2], 'bilinear', false), [{ shape: [1, 1, 5, 5] }], 2);
    gradcheck(
      'bilinear align_corners',
      ([x]) => F.interpolate(x, [4, 5], 'bilinear', true),
      [{ shape: [1, 1, 3, 3] }],
      3,
    );
  });

  it('softmax, log_softmax', () => {
    gradcheck('softmax', ([x]) => F.softmax(x, 1), [{ shape: [2, 4, 2] }]);
    gradcheck('log_softmax', ([x]) => F.logSoftmax(x, -1), [{ shape: [3, 4] }], 2);
  });

  it('cross_entropy on segmentation logits with ignored pixels (mean, none, class weights)', () => {
    const target = { shape: [2, 2, 3], dtype: 'int64' as const, data: [0, 2, 255, 1, 1, 0, 255, 255, 2, 0, 1, 2] };
    gradcheck('cross_entropy mean', ([x, t]) => F.crossEntropy(x, t, { ignoreIndex: 255 }), [
      { shape: [2, 3, 2, 3] },
      target,
    ]);
    gradcheck(
      'cross_entropy none',
      ([x, t]) => F.crossEntropy(x, t, { ignoreIndex: 255, reduction: 'none' }),
      [{ shape: [2, 3, 2, 3] }, target],
      2,
    );
    gradcheck(
      'cross_entropy weighted',
      ([x, t, w]) => F.crossEntropy(x, t, { ignoreIndex: 255, weight: w }),
      [{ shape: [2, 3, 2, 3] }, target, { shape: [3], data: [0.5, 1, 2], grad: false }],
      3,
    );
    gradcheck(
      'softmax then cross_entropy on its log',
      ([x, t]) => F.crossEntropy(F.softmax(x, 1).log(), t, { ignoreIndex: 255 }),
      [{ shape: [2, 3, 2, 3] }, target],
      4,
    );
  });

  it('attention with an additive bias', () => {
    gradcheck('attention', ([q, k, v, b]) => F.attention(q, k, v, b, 0.5), [
      { shape: [1, 2, 3, 4] },
      { shape: [1, 2, 3, 4] },
      { shape: [1, 2, 3, 4] },
      { shape: [1, 2, 3, 3] },
    ]);
    gradcheck(
      'attention broadcast bias',
      ([q, k, v, b]) => F.attention(q, k, v, b, 0.3),
      [{ shape: [2, 1, 3, 2] }, { shape: [2, 1, 4, 2] }, { shape: [2, 1, 4, 2] }, { shape: [1, 1, 3, 4] }],
      2,
    );
  });

  it('gelu, relu away from the kink, elementwise chain', () => {
    gradcheck('gelu', ([x]) => F.gelu(x), [{ shape: [10], data: randArray(10, 7, -3, 3) }]);
    gradcheck('relu', ([x]) => F.relu(x), [{ shape: [6], data: [-2, -0.5, -0.1, 0.1, 0.7, 3] }]);
    gradcheck(
      'chain',
      ([a, b]) =>
        a
          .mul(b)
          .add(a.div(b.abs().add(1)))
          .exp()
          .sqrt()
          .sub(b.pow(2))
          .sum(1),
      [{ shape: [2, 3] }, { shape: [3] }],
    );
  });
});
