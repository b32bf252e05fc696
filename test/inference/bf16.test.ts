/**
 * bf16 inference (`amp: 'bfloat16'`): backbone under autocast, decode head as a bf16 copy.
 * Close to fp32 on the tiny fixture model, and the fp32 path is untouched afterwards.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { initModel, inferenceModel } from '../../src/inference/api.js';
import { autocast, F, manualSeed, noGrad, randn, type Tensor, tidy } from '../../src/tensor/index.js';
import { fixtureFile, loadFixtureTensors, maxAbsDiff, tinyConfigPath } from '../helpers.js';

/** bf16's unit roundoff: 8 significant bits, round to nearest. */
const BF16_U = 2 ** -8;

/**
 * ρ: the largest error of one bf16 matmul (under autocast, as the backbone runs) and one bf16
 * convolution (bf16 tensors, as the head runs) relative to Σ|a·b| of its bf16-rounded operands,
 * measured on the kernels this CPU runs. Kernels that accumulate in fp32 and round the output
 * once (oneDNN with AVX-512) stay under u; ATen's own bf16 kernels, which an AVX2-only CPU runs,
 * keep partial sums in bf16 and reach about 3.5u (issue 26).
 */
function bf16KernelError(): number {
  manualSeed(0);
  return noGrad(() =>
    tidy(() => {
      const a = randn([64, 256]).to('bfloat16').float(),
        b = randn([256, 64]).to('bfloat16').float();
      const mm = autocast('cpu', 'bfloat16', () => a.matmul(b)).float();
      const mmErr = mm.sub(a.matmul(b)).abs().div(a.abs().matmul(b.abs())).max().item();
      const x = randn([1, 32, 12, 12]).to('bfloat16'),
        w = randn([16, 32, 3, 3]).to('bfloat16');
      const conv = (p: Tensor, q: Tensor) => F.conv2d(p, q, null, { padding: 1 });
      const exact = conv(x.float(), w.float());
      const convErr = conv(x, w).float().sub(exact).abs().div(conv(x.float().abs(), w.float().abs())).max().item();
      return Math.max(mmErr, convErr);
    }),
  );
}

/** Share of pixels whose fp32 top-2 logit margin exceeds `margin` (logits [1, C, H, W]). */
function shareWithMargin(logits: Tensor, margin: number): number {
  const [, c, h, w] = logits.shape as [number, number, number, number];
  const v = logits.toFloat32Array();
  let n = 0;
  for (let p = 0; p < h * w; p++) {
    let first = -Infinity,
      second = -Infinity;
    for (let k = 0; k < c; k++) {
      const x = v[k * h * w + p]!;
      if (x > first) [first, second] = [x, first];
      else if (x > second) second = x;
    }
    if (first - second > margin) n++;
  }
  return n / (h * w);
}

describe('bf16 inference', () => {
  it('stays close to fp32 and leaves the fp32 path as it was', async () => {
    const model = await initModel(tinyConfigPath, fixtureFile('segmentor_state_dict.safetensors'), { device: 'cpu' });
    const golden = loadFixtureTensors('tensors.safetensors');
    const rgb = golden.get('slide.image_rgb_u8')!;
    const [height, width] = rgb.shape;
    const img = { data: rgb.toTypedArray() as Uint8Array, height, width, channels: 3 as const };
    const fieldsBefore = Object.keys(model.model).sort();
    const fp32 = await inferenceModel(model, img);
    const bf16 = await inferenceModel(model, img, { amp: 'bfloat16' });
    assert.deepEqual(Object.keys(model.model).sort(), fieldsBefore, 'nothing is set on the model by a bf16 call');
    assert.equal(model.model.decodeHead.parameters()[0]!.dtype, 'float32', "the model's own head stays fp32");
    // Error model: each of the model's L bf16 GEMM-like layers (linear, conv, transposed conv, and
    // attention's two matmuls per block) adds a relative error of at most max(u, ρ) (bf16KernelError);
    // LayerNorm/BatchNorm keep activations at unit scale, so the errors carry to the logits at
    // their scale, and independent roundings add in quadrature: |Δ| ≤ max(u, ρ)·√L·max|logits|.
    const counts = new Map<string, number>();
    for (const [, m] of model.model.namedModules()) {
      const kind = (m as object).constructor.name;
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    }
    const layers =
      (counts.get('Linear') ?? 0) +
      (counts.get('Conv2d') ?? 0) +
      (counts.get('ConvTranspose2d') ?? 0) +
      2 * (counts.get('BEiTAttention') ?? 0);
    const rho = Math.max(BF16_U, bf16KernelError());
    const bound = rho * Math.sqrt(layers) * fp32.logits.abs().max().item();
    const diff = maxAbsDiff(bf16.logits, fp32.logits);
    assert.ok(diff > 0 && diff <= bound, `bf16 logits differ by ${diff} (bound ${bound}: ρ ${rho}, ${layers} layers)`);
    // A label can change only where fp32's top-2 margin is under 2·bound
    let same = 0;
    for (let i = 0; i < fp32.pred.length; i++) if (fp32.pred[i] === bf16.pred[i]) same++;
    const safe = shareWithMargin(fp32.logits, 2 * bound);
    assert.ok(same / fp32.pred.length >= safe, `argmax agreement ${same / fp32.pred.length} < ${safe}`);
    const again = await inferenceModel(model, img);
    assert.equal(maxAbsDiff(again.logits, fp32.logits), 0);
    assert.ok(maxAbsDiff(fp32.logits, golden.get('slide.logits')!) < 1e-4);
  });

  it('takes a default policy from initModel, which a call can override', async () => {
    const weights = fixtureFile('segmentor_state_dict.safetensors');
    const plain = await initModel(tinyConfigPath, weights, { device: 'cpu' });
    const lowByDefault = await initModel(tinyConfigPath, weights, { device: 'cpu', precision: { amp: 'bfloat16' } });
    const rgb = loadFixtureTensors('tensors.safetensors').get('slide.image_rgb_u8')!;
    const [height, width] = rgb.shape;
    const img = { data: rgb.toTypedArray() as Uint8Array, height, width, channels: 3 as const };
    const perCall = await inferenceModel(plain, img, { amp: 'bfloat16' });
    const byDefault = await inferenceModel(lowByDefault, img);
    assert.equal(maxAbsDiff(byDefault.logits, perCall.logits), 0, 'the default policy is the per-call one');
    const fp32 = await inferenceModel(plain, img);
    const overridden = await inferenceModel(lowByDefault, img, { amp: null });
    assert.equal(maxAbsDiff(overridden.logits, fp32.logits), 0, 'amp: null in a call means fp32');
    await assert.rejects(
      initModel(tinyConfigPath, weights, { device: 'cpu', precision: { amp: 'float16' } }),
      /fp16 autocast needs a CUDA/,
    );
  });
});
