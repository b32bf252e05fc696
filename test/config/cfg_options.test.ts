/** --cfg-options in mmengine's DictAction syntax, merged like Config.merge_from_dict. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyCfgOptions, parseCfgOptions, parseOptionValue } from '../../src/config/cfg_options.js';
import { ConfigError } from '../../src/config/errors.js';
import type { Dict } from '../../src/config/merge.js';

describe('--cfg-options', () => {
  it('values: int, float, bool (any case), None, strings, lists, tuples, nesting, quotes and spaces', () => {
    assert.equal(parseOptionValue('3'), 3);
    assert.equal(parseOptionValue('-3'), -3);
    assert.equal(parseOptionValue('1e-4'), 1e-4);
    assert.equal(parseOptionValue('0.5'), 0.5);
    assert.equal(parseOptionValue('True'), true);
    assert.equal(parseOptionValue('false'), false);
    assert.equal(parseOptionValue('None'), null);
    assert.equal(parseOptionValue('none'), 'none', 'only None is None, as in mmengine');
    assert.equal(parseOptionValue('slide'), 'slide');
    assert.equal(parseOptionValue("'quoted'"), 'quoted');
    assert.deepEqual(parseOptionValue('[512,512]'), [512, 512]);
    assert.deepEqual(parseOptionValue('(426, 426)'), [426, 426]);
    assert.deepEqual(parseOptionValue('1,2,3'), [1, 2, 3]);
    assert.deepEqual(parseOptionValue('[(1,2,3),[a,b],c]'), [[1, 2, 3], ['a', 'b'], 'c']);
    assert.deepEqual(parseOptionValue('[]'), []);
    assert.throws(() => parseOptionValue('[1,(2]'), /unbalanced brackets/);
    assert.throws(() => parseOptionValue('inf'), /not a finite number/);
  });

  it('keys: dotted paths and list indices; malformed options are refused', () => {
    assert.deepEqual(parseCfgOptions(['a.b.c=1', 'x=y=z']), [
      { key: 'a.b.c', value: 1 },
      { key: 'x', value: 'y=z' },
    ]);
    assert.throws(() => parseCfgOptions(['novalue']), ConfigError);
    assert.throws(() => parseCfgOptions(['=1']), /expected key=value/);
    assert.throws(() => parseCfgOptions(['a..b=1']), /not a dotted key/);
  });

  it('merges into nested dicts, indexes lists, creates missing keys and leaves the input alone', () => {
    const cfg: Dict = {
      model: { decode_head: { num_classes: 150, channels: 768 }, test_cfg: { mode: 'whole' } },
      train_pipeline: [{ type: 'LoadImageFromFile' }, { type: 'RandomResize', scale: [2560, 640] }],
      heads: [{ x: 1 }, { x: 2 }],
    };
    const before = JSON.stringify(cfg);
    const out = applyCfgOptions(
      cfg,
      parseCfgOptions([
        'model.decode_head.num_classes=19',
        'model.test_cfg.mode=slide',
        'model.test_cfg.stride=(426,426)',
        'train_pipeline.1.scale=[512,512]',
        'heads.0.x=None',
        'new.key=true',
      ]),
    );
    assert.deepEqual(out, {
      model: { decode_head: { num_classes: 19, channels: 768 }, test_cfg: { mode: 'slide', stride: [426, 426] } },
      train_pipeline: [{ type: 'LoadImageFromFile' }, { type: 'RandomResize', scale: [512, 512] }],
      heads: [{ x: null }, { x: 2 }],
      new: { key: true },
    });
    assert.equal(JSON.stringify(cfg), before);
  });

  it('refuses an index past the end of a list and a field set inside a number', () => {
    const cfg: Dict = { l: [1], n: 5 };
    assert.throws(
      () => applyCfgOptions(cfg, parseCfgOptions(['l.3=1'])),
      /index 3 exceeds the length \(1\) of the list l/,
    );
    assert.throws(() => applyCfgOptions(cfg, parseCfgOptions(['l.x=1'])), /only list indices/);
    assert.throws(() => applyCfgOptions(cfg, parseCfgOptions(['n.x=1'])), /n is a dict here but a number/);
  });
});
