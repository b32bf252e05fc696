/**
 * Issue 15.6: bad configs fail before any work with a message naming the path, unknown keys
 * are reported at every level, and class counts are cross-checked (config metainfo, heads,
 * weights) before training or inference starts.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { buildSegmentor } from '../../src/models/builder.js';
import { ConfigError, loadConfig, type Dict } from '../../src/config/schema.js';
import { preprocessFromConfig } from '../../src/inference/preprocess.js';
import { loadWeights } from '../../src/inference/weights.js';
import { trainSettings } from '../../src/engine/train_config.js';
import { configWarnings } from '../../src/config/warnings.js';
import { applyCfgOptions, parseCfgOptions } from '../../src/config/cfg_options.js';
import { fixtureFile, repoRoot, tinyConfigPath } from '../helpers.js';

const configs = path.join(repoRoot, 'configs');
const synthetic = path.join(configs, 'tiny_synthetic.json');

/** The tiny_public config with `options` (mmengine --cfg-options syntax) applied. */
function tiny(...options: string[]): Dict {
  return applyCfgOptions(loadConfig(tinyConfigPath), parseCfgOptions(options));
}

function buildFails(message: RegExp, ...options: string[]): void {
  assert.throws(
    () => buildSegmentor(tiny(...options).model as Dict),
    (e: Error) => {
      assert.ok(e instanceof ConfigError, `${e.constructor.name}: ${e.message}`);
      assert.match(e.message, message);
      return true;
    },
  );
}

describe('numeric fields of the model are checked with their paths', () => {
  it('slide stride and crop size: zero or negative', () => {
    buildFails(/^model\.test_cfg\.stride\[0\] must be > 0, got 0$/, 'model.test_cfg.stride=[0,0]');
    buildFails(/^model\.test_cfg\.stride\[1\] must be > 0, got -43$/, 'model.test_cfg.stride=[43,-43]');
    buildFails(/^model\.test_cfg\.stride must be > 0, got 0$/, 'model.test_cfg.stride=0');
    buildFails(/^model\.test_cfg\.crop_size\[0\] must be > 0, got 0$/, 'model.test_cfg.crop_size=[0,64]');
    buildFails(/^model\.test_cfg\.stride\[0\] must be an integer, got 4\.5$/, 'model.test_cfg.stride=[4.5,4]');
  });

  it('std of zero, and mean/std of the wrong length', () => {
    buildFails(/^model\.data_preprocessor\.std\[0\] must not be 0$/, 'model.data_preprocessor.std=[0,0,0]');
    buildFails(/model\.data_preprocessor\.mean must have 3 values/, 'model.data_preprocessor.mean=[1,2]');
    buildFails(/^model\.data_preprocessor\.size\[1\] must be > 0/, 'model.data_preprocessor.size=[64,0]');
    // mean/std from the top-level data_preprocessor (no model.data_preprocessor)
    const cfg = tiny('data_preprocessor.std=[1,0,1]');
    delete (cfg.model as Dict).data_preprocessor;
    assert.throws(() => preprocessFromConfig(cfg), /std\[1\] must not be 0/);
  });

  it('in_index out of range, in_channels that do not fit, mismatched lengths', () => {
    buildFails(
      /^model\.decode_head\.in_index\[3\] is 7 but the neck gives 4 feature maps \(0\.\.3\)$/,
      'model.decode_head.in_index=[0,1,2,7]',
    );
    buildFails(
      /^model\.auxiliary_head\.in_index is 4 but the neck gives 4 feature maps/,
      'model.auxiliary_head.in_index=4',
    );
    buildFails(/^model\.decode_head\.in_index\[0\] must be >= 0, got -1$/, 'model.decode_head.in_index=[-1,1,2,3]');
    buildFails(
      /in_channels \[32,32,32\] and in_index \[0,1,2,3\] must have the same length/,
      'model.decode_head.in_channels=[32,32,32]',
    );
    buildFails(
      /^model\.decode_head\.in_channels\[2\] is 16 but the feature maps have 32 channels/,
      'model.decode_head.in_channels=[32,32,16,32]',
    );
    buildFails(
      /^model\.neck\.embed_dim \(16\) differs from model\.backbone\.embed_dims \(32\)$/,
      'model.neck.embed_dim=16',
    );
    buildFails(
      /^model\.neck\.rescales has 3 entries but model\.backbone\.out_indices gives 4/,
      'model.neck.rescales=[4,2,1]',
    );
    buildFails(
      /^model\.neck\.rescales\[0\] must be one of 4, 2, 1, 0\.5, 0\.25, got 3$/,
      'model.neck.rescales=[3,2,1,0.5]',
    );
  });

  it('channels, patch size, num_classes, layers, heads, ratios', () => {
    buildFails(/^model\.decode_head\.channels must be > 0, got 0$/, 'model.decode_head.channels=0');
    buildFails(/^model\.auxiliary_head\.channels must be > 0, got -16$/, 'model.auxiliary_head.channels=-16');
    buildFails(/^model\.backbone\.patch_size must be > 0, got 0$/, 'model.backbone.patch_size=0');
    buildFails(/^model\.backbone\.patch_size 128 is larger than img_size \[64,64\]$/, 'model.backbone.patch_size=128');
    buildFails(/^model\.decode_head\.num_classes must be > 0, got 0$/, 'model.decode_head.num_classes=0');
    buildFails(
      /^model\.auxiliary_head\.num_classes \(4\) differs from model\.decode_head\.num_classes \(5\)$/,
      'model.auxiliary_head.num_classes=4',
    );
    buildFails(/^model\.backbone\.num_heads must be > 0, got 0$/, 'model.backbone.num_heads=0');
    buildFails(/^model\.backbone\.embed_dims must be > 0, got -32$/, 'model.backbone.embed_dims=-32');
    buildFails(/^model\.backbone\.in_channels must be an integer, got 2\.5$/, 'model.backbone.in_channels=2.5');
    buildFails(/^model\.backbone\.out_indices\[1\] must be < 4, got 9$/, 'model.backbone.out_indices=[0,9,2,3]');
    buildFails(/^model\.backbone\.out_indices has repeated layers/, 'model.backbone.out_indices=[0,1,1,3]');
    buildFails(/^model\.backbone\.drop_path_rate must be < 1, got 1\.5$/, 'model.backbone.drop_path_rate=1.5');
    buildFails(/^model\.backbone\.mlp_ratio must be > 0, got 0$/, 'model.backbone.mlp_ratio=0');
    buildFails(/^model\.backbone\.norm_cfg\.eps must be > 0, got 0$/, 'model.backbone.norm_cfg.eps=0');
    buildFails(/^model\.decode_head\.pool_scales\[1\] must be > 0, got 0$/, 'model.decode_head.pool_scales=[1,0,3,6]');
    buildFails(/^model\.decode_head\.dropout_ratio must be < 1, got 1$/, 'model.decode_head.dropout_ratio=1');
    buildFails(/^model\.auxiliary_head\.kernel_size must be odd, got 2$/, 'model.auxiliary_head.kernel_size=2');
    buildFails(/^model\.auxiliary_head\.num_convs must be >= 0, got -1$/, 'model.auxiliary_head.num_convs=-1');
  });

  it('a valid config still builds (the checks accept what mmseg accepts)', () => {
    const m = buildSegmentor(
      tiny(
        'model.backbone.out_indices=3',
        'model.neck.rescales=[1]',
        'model.decode_head.in_index=[0]',
        'model.decode_head.in_channels=[32]',
        'model.auxiliary_head.in_index=0',
      ).model as Dict,
    );
    assert.deepEqual(m.backbone.cfg.out_indices, [3]);
    m.dispose?.();
  });
});

describe('unknown keys', () => {
  it('data_preprocessor: an unknown field is an error listing the supported ones', () => {
    buildFails(
      /^model\.data_preprocessor: unknown field 'bogus' \(supported: type, mean, std, size/,
      'model.data_preprocessor.bogus=1',
    );
    buildFails(/^model\.data_preprocessor\.size_divisor is not supported/, 'model.data_preprocessor.size_divisor=32');
  });

  it('test_pipeline: an unknown transform type is an error listing the supported ones', () => {
    const cfg = loadConfig(tinyConfigPath);
    (cfg.test_pipeline as Dict[]).push({ type: 'Bogus' });
    assert.throws(
      () => preprocessFromConfig(cfg),
      new RegExp(
        'test_pipeline\\[3\\]\\.type "Bogus" is not supported in a test pipeline ' +
          '\\(supported: LoadImageFromFile, LoadAnnotations, Resize, PackSegInputs\\)',
      ),
    );
  });

  it('the validation pipeline is checked before training, not at the first validation', () => {
    const options = parseCfgOptions(['val_dataloader.dataset.pipeline.1.type=Bogus']);
    const cfg = applyCfgOptions(loadConfig(synthetic), options);
    assert.throws(
      () => trainSettings(cfg, synthetic),
      /val_dataloader\.dataset\.pipeline\[1\]\.type "Bogus" is not supported/,
    );
  });

  it('train_cfg and the optimizer: unknown fields are errors (mmengine raises TypeError on them)', () => {
    const cfg = (...o: string[]) => applyCfgOptions(loadConfig(synthetic), parseCfgOptions(o));
    assert.throws(() => trainSettings(cfg('train_cfg.bogus=1'), synthetic), /train_cfg: unknown field 'bogus'/);
    assert.throws(
      () => trainSettings(cfg('train_cfg.val_begin=100'), synthetic),
      /train_cfg\.val_begin=100 is not supported/,
    );
    assert.throws(
      () => trainSettings(cfg('optim_wrapper.optimizer.momentum=0.9'), synthetic),
      /optim_wrapper\.optimizer: unknown field 'momentum'/,
    );
    assert.throws(() => trainSettings(cfg('optim_wrapper.bogus=1'), synthetic), /optim_wrapper: unknown field 'bogus'/);
    assert.throws(
      () => trainSettings(cfg('optim_wrapper.paramwise_cfg.bogus=1'), synthetic),
      /optim_wrapper\.paramwise_cfg: unknown field 'bogus'/,
    );
    assert.throws(
      () => trainSettings(cfg('optim_wrapper.optimizer.lr=0'), synthetic),
      /optim_wrapper\.optimizer\.lr must be > 0, got 0/,
    );
    assert.throws(
      () => trainSettings(cfg('optim_wrapper.optimizer.betas=[0.9,1.5]'), synthetic),
      /betas\[1\] must be < 1, got 1\.5/,
    );
    assert.throws(
      () => trainSettings(cfg('train_dataloader.num_workers=-1'), synthetic),
      /train_dataloader\.num_workers must be >= 0/,
    );
    assert.throws(
      () => trainSettings(cfg('default_hooks.checkpoint.max_keep_ckpts=0'), synthetic),
      /max_keep_ckpts must be -1/,
    );
  });

  it('the dataloaders, hooks, randomness and the top level: warnings naming the full path', () => {
    const cfg = applyCfgOptions(
      loadConfig(synthetic),
      parseCfgOptions([
        'train_dataloader.bogus=1',
        'train_dataloader.sampler.seed=3',
        'val_dataloader.drop_last=True',
        'trian_cfg.max_iters=5',
        'default_hooks.checkpoint.save_last=False',
        'default_hooks.mystery.type=X',
        'randomness.deterministic=True',
        'env_cfg.bogus=1',
        'optimizer.lr=0.5',
      ]),
    );
    assert.deepEqual(configWarnings(cfg), [
      'trian_cfg is not used by beitseg (ignored)',
      'train_dataloader.bogus is not used by beitseg (ignored)',
      'train_dataloader.sampler.seed is not used by beitseg (ignored)',
      'val_dataloader.drop_last is not used by beitseg (ignored)',
      'default_hooks.mystery is not used by beitseg (ignored)',
      'default_hooks.checkpoint.save_last is not used by beitseg (ignored)',
      'randomness.deterministic is not used by beitseg (ignored)',
      'optimizer differs from optim_wrapper.optimizer: beitseg trains with optim_wrapper.optimizer ' +
        '(the top-level copy is ignored)',
      'env_cfg.bogus is not used by beitseg (ignored)',
    ]);
  });

  it("mmseg's own dumped configs stay quiet", () => {
    for (const f of [
      'beit-base_upernet_8xb2-160k_ade20k-640x640.json',
      'beit-large_upernet_8xb1-amp-160k_ade20k-640x640.json',
      'tiny_synthetic.json',
    ]) {
      assert.deepEqual(configWarnings(loadConfig(path.join(configs, f))), [], f);
    }
    assert.deepEqual(configWarnings(loadConfig(tinyConfigPath)), []);
  });
});

describe('class counts are cross-checked before any work', () => {
  it('config metainfo against num_classes fails in trainSettings, before the model is built or trained', () => {
    const cfg = loadConfig(synthetic);
    ((cfg.metainfo as Dict).classes as string[]).push('extra');
    (cfg.metainfo as Dict).palette = [...((cfg.metainfo as Dict).palette as number[][]), [1, 2, 3]];
    assert.throws(
      () => trainSettings(cfg, synthetic),
      /metainfo\.classes lists 7 classes but model\.decode_head\.num_classes is 6/,
    );
    const inDataset = applyCfgOptions(
      loadConfig(synthetic),
      parseCfgOptions(['val_dataloader.dataset.metainfo.classes=[a,b]']),
    );
    assert.throws(
      () => trainSettings(inDataset, synthetic),
      /val_dataloader\.dataset\.metainfo\.classes lists 2 classes but model\.decode_head\.num_classes is 6/,
    );
  });

  it("weights whose classifier has another number of classes are refused with the config's terms", async () => {
    const model = buildSegmentor(
      tiny('model.decode_head.num_classes=4', 'model.auxiliary_head.num_classes=4').model as Dict,
    );
    await assert.rejects(
      loadWeights(model, fixtureFile('segmentor_state_dict.safetensors')),
      new RegExp(
        'predicts 5 classes \\(decode_head\\.conv_seg\\.weight \\[5, 32, 1, 1\\]\\) ' +
          'but model\\.decode_head\\.num_classes is 4; .*--cfg-options model\\.decode_head\\.num_classes=5',
      ),
    );
  });
});
