/**
 * Layer-decay parameter groups against mmseg's LayerDecayOptimizerConstructor output recorded
 * in the tiny_public manifest (optimizer.all_groups): names, order, lr_scale, weight_decay,
 * member parameters.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { buildSegmentor } from '../../src/models/builder.js';
import { loadConfig, type Dict } from '../../src/config/schema.js';
import { isNoDecay, layerDecayParamGroups, layerIdForVit, powRoundedExactly } from '../../src/engine/param_groups.js';
import { fixtureFile, tinyConfigPath } from '../helpers.js';

interface ManifestGroup {
  lr_scale: number;
  lr: number;
  weight_decay: number;
  param_names: string[];
}

const manifest = JSON.parse(fs.readFileSync(fixtureFile('manifest.json'), 'utf8')) as {
  optimizer: { base_lr: number; weight_decay: number; all_groups: Record<string, ManifestGroup> };
};

describe('layer-decay parameter groups', () => {
  const model = buildSegmentor(loadConfig(tinyConfigPath).model as Dict);
  const opt = manifest.optimizer;

  it('match mmseg exactly (tiny_public manifest)', () => {
    const groups = layerDecayParamGroups(model.namedParameters(), {
      numLayers: 4,
      decayRate: 0.9,
      baseLr: opt.base_lr,
      baseWeightDecay: opt.weight_decay,
    });
    const expected = Object.entries(opt.all_groups);
    assert.deepEqual(
      groups.map((g) => g.name),
      expected.map(([n]) => n),
    );
    for (const [name, e] of expected) {
      const g = groups.find((x) => x.name === name)!;
      assert.equal(g.lrScale, e.lr_scale, `${name} lr_scale`);
      assert.equal(g.initialLr, e.lr, `${name} lr`);
      assert.equal(g.weightDecay, e.weight_decay, `${name} weight_decay`);
      assert.deepEqual(g.paramNames, e.param_names, `${name} members`);
    }
    const total = groups.reduce((s, g) => s + g.params.length, 0);
    assert.equal(total, model.namedParameters().length);
  });

  it('keeps the cls_token quirk by default and fixes it on request', () => {
    assert.equal(isNoDecay('backbone.cls_token', [1, 1, 32]), false);
    assert.equal(isNoDecay('backbone.layers.0.attn.relative_position_bias_table', [52, 4]), false);
    assert.equal(isNoDecay('backbone.cls_token', [1, 1, 32], true), true);
    assert.equal(isNoDecay('backbone.layers.0.attn.relative_position_bias_table', [52, 4], true), true);
    assert.equal(isNoDecay('decode_head.conv_seg.weight', [5, 32, 1, 1], true), false);
    assert.equal(isNoDecay('neck.upsample_4x.1.weight', [32]), true);
    const groups = layerDecayParamGroups(model.namedParameters(), {
      numLayers: 4,
      decayRate: 0.9,
      baseLr: 1,
      baseWeightDecay: 0.05,
      correctedNoDecay: true,
    });
    const g0 = groups.find((g) => g.name === 'layer_0_no_decay')!;
    assert.ok(g0.paramNames.includes('backbone.cls_token'));
    const g1 = groups.find((g) => g.name === 'layer_1_no_decay')!;
    assert.ok(g1.paramNames.includes('backbone.layers.0.attn.relative_position_bias_table'));
  });

  it('scales are rounded as Python computes rate ** k', () => {
    // values printed by CPython (repr of 0.95 ** k etc.)
    const cases: [number, number, number][] = [
      [0.95, 1, 0.95],
      [0.95, 7, 0.6983372960937497],
      [0.95, 13, 0.5133420832795048],
      [0.95, 24, 0.2919890243387724],
      [0.95, 25, 0.27738957312183377],
      [0.9, 4, 0.6561],
      [0.9, 9, 0.3874204890000001],
      [0.9, 13, 0.2541865828329001],
      [0.75, 30, 0.00017858209017001473],
      [1.1, 17, 5.054470284992945],
      [0.9, 0, 1],
    ];
    for (const [x, n, want] of cases) assert.equal(powRoundedExactly(x, n), want, `${x} ** ${n}`);
  });

  it('layer ids and base-model scales', () => {
    assert.equal(layerIdForVit('backbone.patch_embed.projection.weight', 14), 0);
    assert.equal(layerIdForVit('backbone.layers.11.ln1.weight', 14), 12);
    assert.equal(layerIdForVit('auxiliary_head.conv_seg.weight', 14), 13);
    // notes §1.11: base scales 0.9^(13 - id)
    const scales = [
      0.254187, 0.28243, 0.313811, 0.348678, 0.38742, 0.430467, 0.478297, 0.531441, 0.59049, 0.6561, 0.729, 0.81, 0.9,
      1.0,
    ];
    scales.forEach((s, id) => assert.ok(Math.abs(0.9 ** (14 - id - 1) - s) < 1e-6));
  });
});
