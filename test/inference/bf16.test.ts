/**
 * bf16 inference (`amp: 'bfloat16'`): backbone under autocast, decode head as a bf16 copy.
 * Close to fp32 on the tiny fixture model, and the fp32 path is untouched afterwards.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { initModel, inferenceModel } from '../../src/inference/api.js';
import { fixtureFile, loadFixtureTensors, maxAbsDiff, tinyConfigPath } from '../helpers.js';

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
    assert.ok(
      maxAbsDiff(bf16.logits, fp32.logits) < 0.1,
      `bf16 logits differ by ${maxAbsDiff(bf16.logits, fp32.logits)}`,
    );
    let same = 0;
    for (let i = 0; i < fp32.pred.length; i++) if (fp32.pred[i] === bf16.pred[i]) same++;
    assert.ok(same / fp32.pred.length > 0.97, `argmax agreement ${same / fp32.pred.length}`);
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
