/**
 * The tiny BEiT-UperNet against golden tensors computed by mmsegmentation's code
 * (test/fixtures/tiny_public): every intermediate within 1e-4, identical predictions.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { EncoderDecoder } from '../../src/models/segmentors/encoder_decoder.js';
import { noGrad } from '../../src/tensor/runtime.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, goldenGetter, loadFixtureTensors, loadTinyModel } from '../helpers.js';

describe('tiny_public parity', () => {
  let model: EncoderDecoder;
  let golden: Map<string, Tensor>;
  let g: (key: string) => Tensor;

  before(() => {
    model = loadTinyModel();
    golden = loadFixtureTensors('tensors.safetensors');
    g = goldenGetter(golden);
  });

  it('backbone, neck and head outputs', () => {
    noGrad(() => {
      const img = g('input.image');
      const feats = model.backbone.forward(img);
      feats.forEach((f, i) => assertClose(f, g(`backbone.out.${i}`), 1e-4, `backbone.out.${i}`));
      const pyramid = model.neck!.forward(feats);
      pyramid.forEach((f, i) => assertClose(f, g(`neck.out.${i}`), 1e-4, `neck.out.${i}`));
      assertClose(model.decodeHead.forward(pyramid), g('decode_head.logits'), 1e-4, 'decode_head.logits');
      assertClose(model.auxiliaryHead!.forward(pyramid), g('aux_head.logits'), 1e-4, 'aux_head.logits');
    });
  });

  it('whole inference logits and prediction', () => {
    noGrad(() => {
      const logits = model.inference(g('input.image'), { mode: 'whole' });
      assertClose(logits, g('seg.logits_whole'), 1e-4, 'seg.logits_whole');
      assert.deepEqual(
        [...logits.argmax(1).squeeze(0).to('uint8').toTypedArray()],
        [...g('seg.pred_whole').toTypedArray()],
      );
    });
  });

  it('whole inference on a non-square image whose patch grid floors to the window', () => {
    noGrad(() => {
      const logits = model.inference(g('whole_nonsquare.image'), { mode: 'whole' });
      assertClose(logits, g('whole_nonsquare.logits'), 1e-4, 'whole_nonsquare.logits');
      assert.deepEqual(
        [...logits.argmax(1).squeeze(0).to('uint8').toTypedArray()],
        [...g('whole_nonsquare.pred').toTypedArray()],
      );
    });
  });

  it('slide inference logits and prediction, one and several windows per batch', () => {
    noGrad(() => {
      for (const windowBatch of [1, 4]) {
        const logits = model.inference(g('slide.image'), { mode: 'slide', windowBatch });
        assertClose(logits, g('slide.logits'), 1e-4, `slide.logits (batch ${windowBatch})`);
        assert.deepEqual(
          [...logits.argmax(1).squeeze(0).to('uint8').toTypedArray()],
          [...g('slide.pred').toTypedArray()],
        );
      }
    });
  });

  it('losses and gradients (eval-mode BN, as the fixture)', () => {
    const label = g('loss.label').to('int64').unsqueeze(0);
    const out = model.loss(g('input.image'), label);
    assertClose(out['decode.loss_ce'].reshape(1), g('loss.decode'), 1e-5, 'loss.decode');
    assertClose(out['aux.loss_ce']!.reshape(1), g('loss.aux'), 1e-5, 'loss.aux');
    assertClose(out.loss.reshape(1), g('loss.total'), 1e-5, 'loss.total');
    for (const p of model.parameters()) p.zeroGrad();
    out.loss.backward();
    const params = new Map(model.namedParameters());
    const gradKeys = [...golden.keys()].filter((k) => k.startsWith('grad.'));
    assert.ok(gradKeys.length >= 10);
    for (const k of gradKeys) {
      const name = k.slice('grad.'.length);
      const grad = params.get(name)?.grad;
      assert.ok(grad, `no gradient for ${name}`);
      assertClose(grad, g(k), 2e-6, k);
    }
  });
});
