/**
 * int8 inference (`quantize: 'int8'`): the backbone's linear layers through libtorch's dynamic
 * int8 linear. Each layer's error stays within the bound that per-channel weight and per-tensor
 * activation rounding allows; the tiny fixture model's labels agree with fp32; the policy is
 * checked (CPU only, one mode) and leaves the fp32 path as it was.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { initModel, inferenceModel } from '../../src/inference/api.js';
import { checkPolicy, parseQuantize } from '../../src/inference/precision.js';
import { F, int8ReducedRange, noGrad, quantizedEngines, randn, tidy } from '../../src/tensor/index.js';
import { fixtureFile, loadFixtureTensors, maxAbsDiff, tinyConfigPath } from '../helpers.js';

describe('int8 inference', () => {
  it('one int8 linear layer stays within the rounding bound of its quantised operands', () =>
    noGrad(() =>
      tidy(() => {
        assert.notEqual(quantizedEngines().engine, 'none', 'this libtorch has a quantized engine');
        const [rows, inF, outF] = [64, 96, 48];
        const x = randn([2, rows, inF]).mul(1.5),
          w = randn([outF, inF]).mul(0.05),
          b = randn([outF]);
        const packed = F.int8LinearPrepack(w, b);
        // 7-bit activations where the kernels lack VNNI, as the model's int8 layers run them
        const reduceRange = int8ReducedRange();
        const y = F.int8Linear(x, packed, reduceRange),
          ref = F.linear(x, w, b);
        assert.deepEqual(y.shape, [2, rows, outF]);
        // |y − ŷ| ≤ ‖x‖₁·s_w/2 + (‖w‖₁ + K·s_w/2)·s_x/2 per output (s_w per row of W: max|W_j|/127;
        // s_x per tensor: (max(x,0) − min(x,0))/255); 7-bit activations (no VNNI) double s_x
        const sx = (Math.max(x.max().item(), 0) - Math.min(x.min().item(), 0)) / (reduceRange ? 127 : 255);
        const sw = w.abs().maxDim(1).values.div(127); // [out]
        const xl1 = x.abs().sum([2], true); // [2, rows, 1]
        const wl1 = w.abs().sum([1]); // [out]
        const bound = xl1
          .mul(sw.div(2))
          .add(wl1.add(sw.mul(inF / 2)).mul(sx / 2))
          .mul(1.01)
          .add(1e-5);
        const err = y.sub(ref).abs();
        const worst = err.sub(bound).max().item();
        assert.ok(worst <= 0, `an output exceeds its bound by ${worst}`);
        assert.ok(err.max().item() > 1e-5, 'the int8 kernel ran (an fp32 matmul would be exact to 1e-6)');
        assert.ok(
          err.max().item() < 0.05 * ref.abs().max().item(),
          `max error ${err.max().item()} vs output scale ${ref.abs().max().item()}`,
        );
      }),
    ));

  it('refuses bad shapes, gradients and policies with clear errors', () =>
    tidy(() => {
      const packed = F.int8LinearPrepack(randn([4, 8]), null);
      assert.throws(() => F.int8Linear(randn([3, 7]), packed), /last dimension must be 8/);
      assert.throws(
        () => F.int8Linear(randn([3, 8]).requiresGrad_(true), packed),
        /inference: run it without gradients/,
      );
      assert.throws(() => F.int8LinearPrepack(randn([8]), null), /weight must be a 2-D CPU tensor/);
      assert.throws(() => F.int8LinearPrepack(randn([4, 8]), randn([5])), /bias must be \[4\]/);
      assert.throws(() => checkPolicy({ amp: null, quantize: 'int8' }, 'cuda'), /CPU only.*cuda/);
      assert.throws(() => parseQuantize('int4'), /--quantize must be int8, got 'int4'/);
    }));

  it('the tiny model: labels agree with fp32, logits close; the default policy from initModel', async () => {
    const weights = fixtureFile('segmentor_state_dict.safetensors');
    const model = await initModel(tinyConfigPath, weights, { device: 'cpu' });
    const rgb = loadFixtureTensors('tensors.safetensors').get('slide.image_rgb_u8')!;
    const [height, width] = rgb.shape;
    const img = { data: rgb.toTypedArray() as Uint8Array, height, width, channels: 3 as const };
    const fp32 = await inferenceModel(model, img);
    const int8 = await inferenceModel(model, img, { quantize: 'int8' });
    let same = 0;
    for (let i = 0; i < fp32.pred.length; i++) if (fp32.pred[i] === int8.pred[i]) same++;
    // 98%: the fixture's weights are near-random, so its logits have near-ties that any
    // rounding flips (bf16 is held to 97% on the same image); a trained model agrees on more
    // (README "Performance": the demo model)
    assert.ok(same / fp32.pred.length >= 0.98, `argmax agreement ${same / fp32.pred.length}`);
    const diff = maxAbsDiff(int8.logits, fp32.logits);
    assert.ok(diff > 0 && diff < 0.1, `int8 logits differ by ${diff}`);
    assert.equal(maxAbsDiff((await inferenceModel(model, img)).logits, fp32.logits), 0, 'the fp32 path is unchanged');
    const byDefault = await initModel(tinyConfigPath, weights, { device: 'cpu', precision: { quantize: 'int8' } });
    assert.equal(
      maxAbsDiff((await inferenceModel(byDefault, img)).logits, int8.logits),
      0,
      "initModel's policy is the per-call one",
    );
    assert.equal(
      maxAbsDiff((await inferenceModel(byDefault, img, { quantize: null })).logits, fp32.logits),
      0,
      'quantize: null overrides it',
    );
  });
});
