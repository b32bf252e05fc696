/**
 * The tiny BEiT-UperNet with attention computed in query blocks ('blocked', several blocks per
 * layer: BEITSEG_ATTENTION_BLOCK_KB=1 gives 3 query rows per block here) against mmseg's golden
 * tensors: inference logits and the training gradients, as tiny_parity checks the math path.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EncoderDecoder } from '../../src/models/segmentors/encoder_decoder.js';
import { attentionImpl, noGrad } from '../../src/tensor/runtime.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, goldenGetter, loadFixtureTensors, loadTinyModel } from '../helpers.js';

describe('tiny_public parity with blocked attention', () => {
  let model: EncoderDecoder;
  let golden: Map<string, Tensor>;
  let g: (key: string) => Tensor;
  let implBefore: ReturnType<typeof attentionImpl>;
  const blockKbBefore = process.env.BEITSEG_ATTENTION_BLOCK_KB;

  before(() => {
    model = loadTinyModel();
    golden = loadFixtureTensors('tensors.safetensors');
    g = goldenGetter(golden);
    implBefore = attentionImpl('blocked');
    process.env.BEITSEG_ATTENTION_BLOCK_KB = '1';
  });

  after(() => {
    attentionImpl(implBefore);
    if (blockKbBefore === undefined) delete process.env.BEITSEG_ATTENTION_BLOCK_KB;
    else process.env.BEITSEG_ATTENTION_BLOCK_KB = blockKbBefore;
  });

  it('whole and slide inference logits', () => {
    noGrad(() => {
      assertClose(
        model.inference(g('input.image'), { mode: 'whole' }),
        g('seg.logits_whole'),
        1e-4,
        'seg.logits_whole',
      );
      assertClose(
        model.inference(g('slide.image'), { mode: 'slide', windowBatch: 2 }),
        g('slide.logits'),
        1e-4,
        'slide.logits',
      );
    });
  });

  it('losses and gradients', () => {
    const out = model.loss(g('input.image'), g('loss.label').to('int64').unsqueeze(0));
    assertClose(out.loss.reshape(1), g('loss.total'), 1e-5, 'loss.total');
    for (const p of model.parameters()) p.zeroGrad();
    out.loss.backward();
    const params = new Map(model.namedParameters());
    const gradKeys = [...golden.keys()].filter((k) => k.startsWith('grad.'));
    assert.ok(
      gradKeys.some((k) => k.includes('relative_position_bias_table')),
      'the fixture has bias-table gradients',
    );
    for (const k of gradKeys) {
      const grad = params.get(k.slice('grad.'.length))?.grad;
      assert.ok(grad, `no gradient for ${k}`);
      assertClose(grad, g(k), 2e-6, k);
    }
  });
});
