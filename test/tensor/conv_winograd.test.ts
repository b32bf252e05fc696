/**
 * 3x3 convolutions by oneDNN's Winograd algorithm (native/src/conv_winograd.cc): the same
 * results as ATen's direct convolution within float tolerance at random shapes, mmseg's golden
 * outputs on the tiny fixture model, and ATen's own convolution wherever Winograd must not run
 * (gradients recorded, autocast, other kernel sizes, strides).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, describe, it } from 'node:test';
import { conv2d } from '../../src/tensor/functional.js';
import { autocast, convAlgorithm, manualSeed, noGrad, winogradAvailable } from '../../src/tensor/runtime.js';
import { tidy } from '../../src/tensor/scope.js';
import { randn, type Tensor } from '../../src/tensor/tensor.js';
import { goldenGetter, loadFixtureTensors, loadTinyModel, maxAbsDiff } from '../helpers.js';

const cpuHasAvx512 = / avx512f /.test(` ${/^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]} `);

function convWith(algorithm: 'direct' | 'winograd', x: Tensor, w: Tensor, b: Tensor | null, padding: number): Tensor {
  const saved = convAlgorithm();
  convAlgorithm(algorithm);
  try {
    return conv2d(x, w, b, { padding });
  } finally {
    convAlgorithm(saved);
  }
}

function maxAbs(t: Tensor): number {
  return tidy(() => t.abs().max().item());
}

describe('Winograd 3x3 convolution', () => {
  const saved = convAlgorithm();
  after(() => convAlgorithm(saved));

  it('is built where oneDNN headers are (Debian libtorch + libdnnl-dev)', () => {
    const expected = !process.env.LIBTORCH && fs.existsSync('/usr/include/dnnl.hpp');
    assert.equal(winogradAvailable(), expected);
  });

  it('equals the direct convolution within float tolerance at random shapes', () => {
    manualSeed(7);
    // oneDNN's Winograd kernels take padding up to 1; padding 2 goes to ATen. `auto` would leave
    // the 32-channel output to ATen; 'winograd' takes every layer it can
    const cases = [
      { n: 1, c: 64, o: 64, h: 16, w: 16, pad: 1, bias: true, winograd: true },
      { n: 2, c: 96, o: 80, h: 13, w: 22, pad: 1, bias: false, winograd: true },
      { n: 1, c: 128, o: 64, h: 9, w: 7, pad: 0, bias: true, winograd: true },
      { n: 1, c: 64, o: 128, h: 20, w: 20, pad: 2, bias: true, winograd: false },
      // more than 768 input channels: two passes summed into the output, with and without batch
      { n: 1, c: 800, o: 64, h: 10, w: 12, pad: 1, bias: true, winograd: true },
      { n: 2, c: 1600, o: 32, h: 8, w: 8, pad: 1, bias: false, winograd: true },
    ];
    const ran: boolean[] = [];
    noGrad(() => {
      for (const k of cases) {
        tidy(() => {
          const x = randn([k.n, k.c, k.h, k.w]);
          const w = randn([k.o, k.c, 3, 3]).mul(1 / Math.sqrt(9 * k.c));
          const b = k.bias ? randn([k.o]) : null;
          const direct = convWith('direct', x, w, b, k.pad);
          const wino = convWith('winograd', x, w, b, k.pad);
          const d = maxAbsDiff(wino, direct);
          assert.ok(d <= 2e-5 * Math.max(1, maxAbs(direct)), `${JSON.stringify(k)}: max |diff| ${d}`);
          ran.push(d > 0);
        });
      }
    });
    // on an AVX-512 CPU oneDNN has the Winograd kernels: where they ran, the results are close, not
    // identical; elsewhere ATen computed both
    const expected = cases.map((k) => k.winograd && winogradAvailable() && cpuHasAvx512);
    assert.deepEqual(ran, expected, 'which cases Winograd computed');
  });

  it('keeps mmseg golden slide logits and labels on the tiny model', () => {
    const g = goldenGetter(loadFixtureTensors('tensors.safetensors'));
    const model = loadTinyModel();
    convAlgorithm('winograd');
    try {
      noGrad(() => {
        const logits = model.inference(g('slide.image'), { mode: 'slide', windowBatch: 2 });
        assert.ok(maxAbsDiff(logits, g('slide.logits')) < 1e-4);
        assert.deepEqual(
          [...logits.argmax(1).squeeze(0).to('uint8').toTypedArray()],
          [...g('slide.pred').toTypedArray()],
        );
      });
    } finally {
      convAlgorithm(saved);
    }
  });

  it("leaves recorded gradients, autocast, strides and other kernels to ATen's convolution", () => {
    manualSeed(3);
    const x = randn([1, 64, 12, 12]);
    const w = randn([64, 64, 3, 3]).mul(0.05);
    const direct = noGrad(() => convWith('direct', x, w, null, 1));
    // gradients recorded: ATen's convolution (bit for bit), with its autograd graph
    w.requiresGrad = true;
    const withGrad = convWith('winograd', x, w, null, 1);
    assert.equal(maxAbsDiff(withGrad, direct), 0);
    assert.ok(withGrad.requiresGrad);
    w.requiresGrad = false;
    // CPU autocast: ATen's bf16 convolution
    noGrad(() => {
      const bf16 = autocast('cpu', 'bfloat16', () => convWith('winograd', x, w, null, 1));
      assert.equal(bf16.dtype, 'bfloat16');
      // a 1x1 kernel and a strided 3x3: ATen's
      const w1 = randn([64, 64, 1, 1]);
      assert.equal(maxAbsDiff(convWith('winograd', x, w1, null, 0), convWith('direct', x, w1, null, 0)), 0);
      const strided = (algo: 'direct' | 'winograd') => {
        convAlgorithm(algo);
        try {
          return conv2d(x, w, null, { padding: 1, stride: 2 });
        } finally {
          convAlgorithm(saved);
        }
      };
      assert.equal(maxAbsDiff(strided('winograd'), strided('direct')), 0);
    });
  });

  it('leaves a layer to ATen when even a small pass would pass the scratchpad budget', () => {
    manualSeed(5);
    const x = randn([1, 128, 24, 24]);
    const w = randn([64, 128, 3, 3]).mul(0.03);
    noGrad(() => {
      const direct = convWith('direct', x, w, null, 1);
      const previous = process.env.BEITSEG_WINOGRAD_SCRATCH_MB;
      process.env.BEITSEG_WINOGRAD_SCRATCH_MB = '0';
      try {
        assert.equal(maxAbsDiff(convWith('winograd', x, w, null, 1), direct), 0, 'budget 0: ATen computed it');
      } finally {
        if (previous === undefined) delete process.env.BEITSEG_WINOGRAD_SCRATCH_MB;
        else process.env.BEITSEG_WINOGRAD_SCRATCH_MB = previous;
      }
      const wino = convWith('winograd', x, w, null, 1);
      assert.ok(maxAbsDiff(wino, direct) <= 2e-5 * Math.max(1, maxAbs(direct)));
    });
  });

  it('refuses an unknown algorithm name', () => {
    assert.throws(() => convAlgorithm('fft' as 'direct'), /expected auto, direct or winograd, got 'fft'/);
  });
});
