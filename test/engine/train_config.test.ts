/** Training settings read from the mmseg BEiT configs (JSON dumps), overrides and refusals. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { trainSettings } from '../../src/engine/train_config.js';
import { ConfigError, loadConfig, type Dict } from '../../src/config/schema.js';
import { repoRoot } from '../helpers.js';

const cfgPath = (n: string) => path.join(repoRoot, 'configs', `${n}.json`);
const base = 'beit-base_upernet_8xb2-160k_ade20k-640x640';
const large = 'beit-large_upernet_8xb1-amp-160k_ade20k-640x640';

describe('training settings from mmseg configs', () => {
  it('BEiT-B: AdamW 3e-5 + layer decay 0.9 over 12 layers, warm-up 1500 + poly to 160k, fp32', () => {
    const s = trainSettings(loadConfig(cfgPath(base)), cfgPath(base));
    assert.equal(s.configName, base);
    assert.equal(s.workDir, path.join('work_dirs', base));
    assert.deepEqual(s.optimizer, { lr: 3e-5, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.05 });
    assert.deepEqual(s.layerDecay, { numLayers: 12, decayRate: 0.9, correctedNoDecay: false });
    assert.equal(s.accum, 1);
    assert.equal(s.amp, null);
    assert.equal(s.maxIters, 160000);
    assert.equal(s.valInterval, 16000);
    assert.equal(s.checkpointInterval, 16000);
    assert.equal(s.logInterval, 50);
    assert.deepEqual(s.padTo, [640, 640]);
    assert.equal(s.train.batchSize, 2);
    assert.equal(s.train.shuffle, true);
    assert.equal(s.seed, 0);
    assert.deepEqual(
      s.schedulers.map((x) => [x.type, x.begin, x.end]),
      [
        ['LinearLR', 0, 1500],
        ['PolyLR', 1500, 160000],
      ],
    );
    assert.equal(s.pretrained, 'pretrain/beit_base_patch16_224_pt22k_ft22k.pth');
  });

  it('BEiT-L: AmpOptimWrapper = fp16, accumulative_counts 2, layer decay 0.95 over 24 layers', () => {
    const s = trainSettings(loadConfig(cfgPath(large)), cfgPath(large));
    assert.equal(s.amp, 'fp16');
    assert.equal(s.accum, 2);
    assert.deepEqual(s.layerDecay, { numLayers: 24, decayRate: 0.95, correctedNoDecay: false });
    assert.equal(s.maxIters, 320000);
    assert.equal(s.schedulers[1]!.end, 160000);
  });

  it('command-line overrides win', () => {
    const s = trainSettings(loadConfig(cfgPath(large)), cfgPath(large), {
      amp: 'fp32',
      accum: 4,
      maxIters: 10,
      batchSize: 3,
      seed: 7,
      workDir: '/tmp/x',
      loadFrom: 'w.safetensors',
    });
    assert.equal(s.amp, null);
    assert.equal(s.accum, 4);
    assert.equal(s.maxIters, 10);
    assert.equal(s.train.batchSize, 3);
    assert.equal(s.seed, 7);
    assert.equal(s.workDir, '/tmp/x');
    assert.equal(s.loadFrom, 'w.safetensors');
  });

  it('refuses what would change the recipe silently', () => {
    const edit = (f: (c: Dict) => void) => {
      const c = loadConfig(cfgPath(base));
      f(c);
      return () => trainSettings(c, cfgPath(base));
    };
    assert.throws(
      edit((c) => {
        (c.optim_wrapper as Dict).clip_grad = { max_norm: 1 };
      }),
      ConfigError,
    );
    assert.throws(
      edit((c) => {
        ((c.optim_wrapper as Dict).optimizer as Dict).type = 'SGD';
      }),
      /AdamW/,
    );
    assert.throws(
      edit((c) => {
        (c.train_cfg as Dict).type = 'EpochBasedTrainLoop';
      }),
      /IterBasedTrainLoop/,
    );
    assert.throws(
      edit((c) => {
        (c.param_scheduler as Dict[])[1]!.type = 'CosineAnnealingLR';
      }),
      /not supported/,
    );
    assert.throws(
      edit((c) => {
        ((c.default_hooks as Dict).checkpoint as Dict).save_best = 'loss';
      }),
      /save_best/,
    );
  });
});
