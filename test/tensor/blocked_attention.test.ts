/**
 * Attention with a gathered bias (tableT[:, index]) computed in query blocks ('blocked')
 * against the math path (whole bias, matmul-softmax-matmul): outputs and the gradients of
 * q, k, v and the table at random sizes, blocks that do not divide N, bf16 inputs, a float64
 * finite-difference check, and clear errors for bad shapes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attentionImpl, F, fromArray, tensor, tidy, type Tensor } from '../../src/tensor/index.js';
import { prng, randArray } from './ref.js';

interface Case {
  b: number;
  h: number;
  n: number;
  d: number;
  t: number;
  rows: number;
}

function inputs(
  c: Case,
  seed: number,
  dtype: 'float32' | 'float64' = 'float32',
): { q: Tensor; k: Tensor; v: Tensor; table: Tensor; index: Tensor } {
  const make = (shape: number[], s: number, lo = -1, hi = 1) => {
    const data = randArray(
      shape.reduce((a, x) => a * x, 1),
      s,
      lo,
      hi,
    );
    return fromArray(dtype === 'float64' ? Float64Array.from(data) : Float32Array.from(data), shape, { copy: true });
  };
  const shape = [c.b, c.h, c.n, c.d];
  const rand = prng(seed + 7);
  const index = tensor(
    Array.from({ length: c.n * c.n }, () => Math.floor(rand() * c.t)),
    [c.n, c.n],
    'int64',
  );
  return {
    q: make(shape, seed),
    k: make(shape, seed + 1),
    v: make(shape, seed + 2),
    table: make([c.t, c.h], seed + 3, -2, 2),
    index,
  };
}

function withImpl<T>(impl: 'math' | 'blocked', fn: () => T): T {
  const before = attentionImpl();
  attentionImpl(impl);
  try {
    return fn();
  } finally {
    attentionImpl(before);
  }
}

/** Output and gradients of Σ attention(...)·R for one implementation. */
function run(impl: 'math' | 'blocked', c: Case, seed: number, dtype: 'float32' | 'bfloat16' = 'float32') {
  return tidy(() => {
    const x = inputs(c, seed);
    for (const p of [x.q, x.k, x.v, x.table]) p.requiresGrad_(true);
    const weights = fromArray(Float32Array.from(randArray(c.b * c.h * c.n * c.d, seed + 50)), [c.b, c.h, c.n, c.d], {
      copy: true,
    });
    const cast = (t: Tensor) => (dtype === 'float32' ? t : t.to(dtype));
    const out = withImpl(impl, () =>
      F.gatheredBiasAttention(
        cast(x.q),
        cast(x.k),
        cast(x.v),
        x.table.transpose(0, 1).contiguous(),
        x.index,
        0.35,
        impl === 'blocked' ? c.rows : undefined,
      ),
    );
    out.float().mul(weights).sum().backward();
    const arr = (t: Tensor) => t.float().toFloat32Array();
    return { out: arr(out), dq: arr(x.q.grad!), dk: arr(x.k.grad!), dv: arr(x.v.grad!), dtable: arr(x.table.grad!) };
  });
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('blocked attention with a gathered bias', () => {
  it('equals the math path, outputs and gradients, at random sizes and block heights', () => {
    const rand = prng(2026);
    const cases: Case[] = [
      { b: 1, h: 4, n: 17, d: 8, t: 52, rows: 5 }, // the tiny BEiT's shapes, 4 blocks (last one short)
      { b: 2, h: 3, n: 33, d: 16, t: 40, rows: 1 },
      { b: 1, h: 2, n: 9, d: 4, t: 7, rows: 9 }, // one block
    ];
    for (let i = 0; i < 3; i++) {
      const n = 2 + Math.floor(rand() * 60);
      cases.push({
        b: 1 + Math.floor(rand() * 2),
        h: 1 + Math.floor(rand() * 4),
        n,
        d: 1 + Math.floor(rand() * 24),
        t: 1 + Math.floor(rand() * 100),
        rows: 1 + Math.floor(rand() * n),
      });
    }
    for (const [i, c] of cases.entries()) {
      const math = run('math', c, 10 * i),
        blocked = run('blocked', c, 10 * i);
      for (const key of ['out', 'dq', 'dk', 'dv', 'dtable'] as const) {
        const d = maxDiff(blocked[key], math[key]);
        assert.ok(d < 2e-5, `${key} differs by ${d} for ${JSON.stringify(c)}`);
      }
    }
  });

  it('bf16 inputs: blocked stays within bf16 rounding of the math path', () => {
    const c: Case = { b: 1, h: 4, n: 41, d: 16, t: 60, rows: 6 };
    const math = run('math', c, 3, 'bfloat16'),
      blocked = run('blocked', c, 3, 'bfloat16'),
      exact = run('math', c, 3);
    for (const key of ['out', 'dq', 'dk', 'dv', 'dtable'] as const) {
      // blocked keeps the softmax and the gradient sums in fp32, so it is no further from fp32 than the math path
      const dBlocked = maxDiff(blocked[key], exact[key]),
        dMath = maxDiff(math[key], exact[key]);
      assert.ok(dBlocked < 0.05, `${key}: bf16 blocked vs fp32 ${dBlocked}`);
      assert.ok(dBlocked <= dMath * 1.5 + 1e-3, `${key}: bf16 blocked ${dBlocked} vs bf16 math ${dMath} from fp32`);
    }
  });

  it('float64 gradients match central differences', () => {
    const c: Case = { b: 1, h: 2, n: 5, d: 3, t: 6, rows: 2 };
    tidy(() => {
      const x = inputs(c, 77, 'float64');
      const tableT = x.table.transpose(0, 1).contiguous().detach();
      const loss = (q: Tensor, k: Tensor, v: Tensor, t: Tensor) =>
        withImpl('blocked', () => F.gatheredBiasAttention(q, k, v, t, x.index, 0.6, c.rows))
          .sum()
          .item();
      const args = [x.q, x.k, x.v, tableT].map((t) => t.detach().requiresGrad_(true));
      withImpl('blocked', () => F.gatheredBiasAttention(args[0]!, args[1]!, args[2]!, args[3]!, x.index, 0.6, c.rows))
        .sum()
        .backward();
      const h = 1e-6;
      args.forEach((arg, which) => {
        const grad = arg.grad!.toTypedArray() as Float64Array;
        const base = arg.detach().toTypedArray() as Float64Array;
        for (let i = 0; i < base.length; i++) {
          const at = (delta: number) => {
            const data = Float64Array.from(base);
            data[i] += delta;
            const moved = fromArray(data, arg.shape, { copy: true });
            const all = args.map((a, j) => (j === which ? moved : a.detach()));
            return loss(all[0]!, all[1]!, all[2]!, all[3]!);
          };
          const numeric = (at(h) - at(-h)) / (2 * h);
          assert.ok(
            Math.abs(numeric - grad[i]) < 1e-6 + 1e-5 * Math.abs(numeric),
            `input ${which}[${i}]: ${grad[i]} vs ${numeric}`,
          );
        }
      });
    });
  });

  it('refuses mismatched shapes with a clear error', () =>
    tidy(() => {
      const c: Case = { b: 1, h: 2, n: 5, d: 3, t: 6, rows: 2 };
      const x = inputs(c, 5);
      const tableT = x.table.transpose(0, 1).contiguous();
      assert.throws(
        () => F.gatheredBiasAttention(x.q, x.k, x.v, tableT, x.index.slice(0, 0, 4), 1),
        /index must be int64 \[N, N\] with N = 5/,
      );
      assert.throws(
        () => F.gatheredBiasAttention(x.q, x.k, x.v, x.table, x.index, 1),
        /table must be \[heads, T\] with heads = 2/,
      );
    }));
});
