/**
 * mmseg init_cfg=Pretrained and load_from against the tiny_public fixture: the official BEiT
 * checkpoint (unilm keys, .pth) loaded as a pretrained backbone equals the backbone of the
 * mmseg segmentor state dict; a window change resizes the relative-position tables.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadFromCheckpoint, loadPretrainedBackbone } from '../../src/engine/init_weights.js';
import { buildSegmentor } from '../../src/models/builder.js';
import { loadConfig, type Dict } from '../../src/config/schema.js';
import { fixtureFile, loadFixtureTensors, tinyConfigPath } from '../helpers.js';

function tinyModel(imgSize?: number) {
  const cfg = loadConfig(tinyConfigPath).model as Dict;
  if (imgSize) (cfg.backbone as Dict).img_size = [imgSize, imgSize];
  return buildSegmentor(cfg);
}

describe('weight initialisation', () => {
  const golden = loadFixtureTensors('segmentor_state_dict.safetensors');

  it('pretrained backbone (official .pth) = fixture backbone; heads untouched', async () => {
    const model = tinyModel();
    const headBefore = model.stateDict().get('decode_head.conv_seg.weight')!.toBytes();
    const r = await loadPretrainedBackbone(model, fixtureFile('beit_official.pth'));
    assert.deepEqual(r.missingKeys, []);
    assert.equal(r.resizedTables, 0);
    for (const [k, t] of model.stateDict()) {
      if (!k.startsWith('backbone.') || k.endsWith('relative_position_index')) continue;
      assert.deepEqual(t.toBytes(), golden.get(k)!.toBytes(), k);
    }
    assert.deepEqual(model.stateDict().get('decode_head.conv_seg.weight')!.toBytes(), headBefore);
    model.dispose();
  });

  it('resizes relative-position tables to another window', async () => {
    const model = tinyModel(96);
    const r = await loadPretrainedBackbone(model, fixtureFile('converted_beit2mmseg.safetensors'));
    assert.equal(r.resizedTables, 4);
    assert.deepEqual(model.stateDict().get('backbone.layers.0.attn.relative_position_bias_table')!.shape, [124, 4]);
    model.dispose();
  });

  it('load_from a full segmentor checkpoint (.pth)', async () => {
    const model = tinyModel();
    const r = await loadFromCheckpoint(model, fixtureFile('segmentor_mmseg.pth'));
    assert.deepEqual(r.missingKeys, []);
    assert.deepEqual(r.unexpectedKeys, []);
    for (const [k, t] of model.stateDict()) assert.deepEqual(t.toBytes(), golden.get(k)!.toBytes(), k);
    model.dispose();
  });
});
