/**
 * mmseg .py configs read without Python: the Python subset (literals, strings, arithmetic,
 * dict/list/tuple, comprehensions, names), refusals with file and line, and mmengine's
 * `_base_` merge on config trees written as fixtures.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../src/config/errors.js';
import { readConfigFile, substitutePlaceholders } from '../../src/config/load.js';
import { mergeInto } from '../../src/config/merge.js';
import { loadConfig, type Dict } from '../../src/config/schema.js';
import { trainSettings } from '../../src/engine/train_config.js';
import { repoRoot, tinyConfigPath } from '../helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-pycfg-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let counter = 0;
/** Writes `files` (name -> text) into a fresh folder and returns its path. */
function tree(files: Record<string, string>): string {
  const dir = path.join(tmp, `t${counter++}`);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

function py(text: string): Dict {
  return readConfigFile(path.join(tree({ 'c.py': text }), 'c.py'));
}

function refuses(text: string, line: number, pattern: RegExp): void {
  assert.throws(
    () => py(text),
    (e: Error) => {
      assert.ok(e instanceof ConfigError, `not a ConfigError: ${e.message}`);
      assert.match(e.message, new RegExp(`c\\.py:${line}: `), e.message);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

const fixtures = path.join(repoRoot, 'test', 'fixtures', 'configs');

describe('the Python subset of mmengine configs', () => {
  it('literals: numbers in every form, True/False/None, strings in every quote form', () => {
    const c = py(
      [
        'a = 1',
        'b = -2.5e-3',
        'c = 0x1F + 0o17 + 0b11 + 1_000',
        'd = .5',
        'e = 1.',
        'f = True',
        'g = False',
        'h = None',
        "s1 = 'single'",
        's2 = "double"',
        "s3 = '''triple\nsingle'''",
        's4 = """triple\ndouble"""',
        's5 = r\'raw\\n\' R"\\d"',
        "s6 = 'esc\\t\\n\\\\\\'\\x41\\u00e9\\101'",
        "s7 = u'unicode'",
        "s8 = 'implicit' \"concat\" '''enation'''",
        "s9 = ('in'\n    'parens')",
      ].join('\n'),
    );
    assert.deepEqual(c, {
      a: 1,
      b: -0.0025,
      c: 31 + 15 + 3 + 1000,
      d: 0.5,
      e: 1,
      f: true,
      g: false,
      h: null,
      s1: 'single',
      s2: 'double',
      s3: 'triple\nsingle',
      s4: 'triple\ndouble',
      s5: 'raw\\n\\d',
      s6: "esc\t\n\\'A\u00e9A",
      s7: 'unicode',
      s8: 'implicitconcatenation',
      s9: 'inparens',
    });
  });

  it('arithmetic with Python precedence and semantics; string and list joins', () => {
    const c = py(
      [
        'a = 2 + 3 * 4',
        'b = -2 ** 2',
        'c = 2 ** -1',
        'd = 7 // 2',
        'e = -7 // 2',
        'f = 7 % -3',
        'g = -7 % 3',
        'h = (1 + 2) * 3',
        'i = 10 / 4',
        'j = 2 ** 3 ** 2',
        "k = 'ab' + 'cd'",
        'l = [1] + [2, 3]',
        'm = (1,) * 3',
        "n = 'x' * 3",
        'o = 3 * [0]',
        'p = +5 - -5',
      ].join('\n'),
    );
    assert.deepEqual(c, {
      a: 14,
      b: -4,
      c: 0.5,
      d: 3,
      e: -4,
      f: -2,
      g: 2,
      h: 9,
      i: 2.5,
      j: 512,
      k: 'abcd',
      l: [1, 2, 3],
      m: [1, 1, 1],
      n: 'xxx',
      o: [0, 0, 0],
      p: 10,
    });
  });

  it(
    'dict(...), {...} with ** spreads, lists, tuples, names, indexing, comprehensions, comments, ' + 'continuations',
    () => {
      const c = py(
        [
          '# a comment line',
          'norm = dict(type="BN", requires_grad=True)  # trailing comment',
          "head = dict(norm_cfg=norm, channels=[1, 2,], extra={'k': 1, **norm})",
          'size = (640, 640)',
          'half = size[0] // 2',
          'last = size[-1]',
          "pick = head['channels'][1]",
          'ratios = [0.5, 1.0]',
          "tta = [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in ratios]",
          'nested = [[r * 2 for r in ratios], ()]',
          'total = 1 + \\',
          '    2',
          'empty = dict()',
          'single = (1)',
          'multi = (',
          '    1,',
          '    2',
          ')',
          'bare = 1, 2',
          "a = 1; b = 'two'",
          '__private = 3',
        ].join('\n'),
      );
      assert.deepEqual(c, {
        norm: { type: 'BN', requires_grad: true },
        head: {
          norm_cfg: { type: 'BN', requires_grad: true },
          channels: [1, 2],
          extra: { k: 1, type: 'BN', requires_grad: true },
        },
        size: [640, 640],
        half: 320,
        last: 640,
        pick: 2,
        ratios: [0.5, 1],
        tta: [
          { type: 'Resize', scale_factor: 0.5, keep_ratio: true },
          { type: 'Resize', scale_factor: 1, keep_ratio: true },
        ],
        nested: [[1, 2], []],
        total: 3,
        empty: {},
        single: 1,
        multi: [1, 2],
        bare: [1, 2],
        a: 1,
        b: 'two',
      });
    },
  );

  it('a later assignment replaces an earlier one; values are copies, not aliases', () => {
    const c = py(['x = dict(a=1)', 'y = dict(inner=x)', 'x = 5'].join('\n'));
    assert.deepEqual(c, { x: 5, y: { inner: { a: 1 } } });
  });

  it('a module docstring and a "__proto__" key are plain data', () => {
    const c = py(['"""docs"""', "d = {'__proto__': 1}"].join('\n'));
    assert.equal(Object.getPrototypeOf(c.d), Object.prototype);
    assert.deepEqual(Object.keys(c.d as object), ['__proto__']);
  });

  it('refuses everything else with the file, the line and the construct', () => {
    refuses('a = 1\nimport os', 2, /import statement is not supported/);
    assert.throws(() => py('from mmengine.config import read_base'), /lazy-import configs .* are not supported/);
    refuses('def f():\n    return 1', 1, /function definition/);
    refuses('class A:\n    pass', 1, /class definition/);
    refuses('for i in [1]:\n    x = i', 1, /for loop/);
    refuses('while True:\n    pass', 1, /while loop/);
    refuses('if True:\n    x = 1', 1, /if statement/);
    assert.throws(() => py('with read_base():\n    x = 1'), /lazy-import configs .* are not supported/);
    refuses('with open(x):\n    x = 1', 1, /with statement/);
    refuses("x = open('/etc/passwd')", 1, /calling open\(\.\.\.\) is not supported/);
    refuses("x = __import__('os')", 1, /calling __import__/);
    refuses('x = dict(a=1).copy()', 1, /calling \.copy/);
    refuses('x = set((1, 2))', 1, /calling set/);
    refuses('x = lambda: 1', 1, /lambda/);
    refuses("x = f'{1!r}'", 1, /f-string conversions/);
    refuses('x = 1 if True', 1, /expected 'else' in the conditional expression/);
    refuses('x = [1] is [1]', 1, /'is' is supported only against None, True or False/);
    refuses("x = 1 < 'a'", 1, /'<': an int and a string cannot be ordered/);
    refuses('x = [1, 2][::0]', 1, /slice step cannot be zero/);
    refuses("x = 'ab'[0.5:]", 1, /slice indices must be integers or None, got a float/);
    refuses('x = and', 1, /unexpected 'and'/);
    refuses('x = y', 1, /name 'y' is not defined/);
    refuses('x = 1\n  y = 2', 2, /indentation/);
    refuses('x = 1\nx += 1', 2, /augmented assignment/);
    refuses('a, b = 1, 2', 1, /only a plain name/);
    refuses('print(1)', 1, /calling print/);
    refuses('x = 1 / 0', 1, /division by zero/);
    refuses("x = 'a' + 1", 1, /'\+' is not supported between a string and an int/);
    refuses('x = [1] + (2,)', 1, /'\+' is not supported between a list and a tuple/);
    refuses("x = 'unterminated", 1, /unterminated string/);
    refuses('x = [1, 2', 1, /expected '\]'|unexpected/);
    refuses('x = [0] * 10 ** 9', 1, /repetition longer/);
    refuses('x = {1, 2}', 1, /set literals/);
    refuses('x = a.b', 1, /only supported on _base_/);
    refuses('x = 0777', 1, /leading zeros/);
  });

  it('{{_base_.x}} placeholders, bare or quoted, become references (line numbers unchanged)', () => {
    assert.equal(
      substitutePlaceholders("a = {{ _base_.model.backbone }}\nb = '{{_base_.x}}'"),
      'a = _base_.model.backbone\nb = _base_.x',
    );
  });
});

describe('_base_ inheritance, merged like mmengine', () => {
  it('the tiny tree: every overridden, inherited, computed and deleted field', () => {
    const c = loadConfig(path.join(fixtures, 'tiny', 'leaves', 'tiny_leaf.py'));
    const model = c.model as Dict;
    const backbone = model.backbone as Dict,
      neck = model.neck as Dict;
    const decode = model.decode_head as Dict,
      aux = model.auxiliary_head as Dict;
    // leaf overrides, merged into the base dicts
    assert.deepEqual(backbone.img_size, [64, 64]);
    assert.equal(backbone.embed_dims, 32, '_base_.model.backbone.embed_dims // 2');
    assert.equal(neck.embed_dim, 32);
    assert.deepEqual(decode.in_channels, [32, 32, 32, 32]);
    assert.equal(decode.channels, 32, '2 ** 5');
    assert.equal(decode.num_classes, 5);
    assert.deepEqual(model.test_cfg, { mode: 'slide', crop_size: [64, 64], stride: [43, 43] });
    assert.deepEqual((model.data_preprocessor as Dict).size, [64, 64]);
    assert.deepEqual((c.data_preprocessor as Dict).size, [64, 64]);
    // inherited from the model base (tuples as lists)
    assert.equal(backbone.patch_size, 16);
    assert.equal(backbone.num_layers, 4);
    assert.deepEqual(backbone.out_indices, [0, 1, 2, 3]);
    assert.deepEqual(decode.pool_scales, [1, 2, 3, 6]);
    assert.deepEqual(decode.norm_cfg, { type: 'SyncBN', requires_grad: true });
    assert.deepEqual((model.data_preprocessor as Dict).std, [58.395, 57.12, 57.375]);
    // _delete_: the base's kernel_size, dilation and num_convs=2 are gone, no _delete_ key is left
    assert.deepEqual(aux, {
      type: 'FCNHead',
      in_channels: 32,
      in_index: 2,
      channels: 16,
      num_convs: 1,
      concat_input: false,
      dropout_ratio: 0.1,
      num_classes: 5,
      norm_cfg: { type: 'SyncBN', requires_grad: true },
      align_corners: false,
      loss_decode: { type: 'CrossEntropyLoss', use_sigmoid: false, loss_weight: 0.4 },
    });
    assert.deepEqual(c.optim_wrapper, {
      type: 'OptimWrapper',
      optimizer: { type: 'AdamW', lr: 0.001, betas: [0.9, 0.999], weight_decay: 0.05 },
      constructor: 'LayerDecayOptimizerConstructor',
      paramwise_cfg: { num_layers: 4, layer_decay_rate: 0.9 },
    });
    // lists are replaced whole
    assert.equal((c.param_scheduler as Dict[]).length, 2);
    assert.deepEqual(
      (c.test_pipeline as Dict[]).map((t) => t.type),
      ['LoadImageFromFile', 'LoadAnnotations', 'PackSegInputs'],
    );
    // a dict merged by key: batch_size and num_workers changed, the rest inherited
    const train = c.train_dataloader as Dict;
    assert.equal(train.batch_size, 2);
    assert.equal(train.num_workers, 0);
    assert.equal(train.persistent_workers, true);
    assert.deepEqual((train.dataset as Dict).data_prefix, {
      img_path: 'images/training',
      seg_map_path: 'annotations/training',
    });
    assert.equal((train.dataset as Dict).data_root, 'data/synthetic', 'a backslash-continued implicit concatenation');
    assert.deepEqual(((train.dataset as Dict).pipeline as Dict[])[2], {
      type: 'RandomResize',
      scale: [256, 64],
      ratio_range: [0.5, 2],
      keep_ratio: true,
    });
    // the leaf's own comprehension over its own ratios; the base's over the base's
    const tta = (c.tta_pipeline as Dict[])[1].transforms as Dict[][];
    assert.deepEqual(
      tta[0].map((t) => t.scale_factor),
      [1, 1.5],
    );
    assert.deepEqual(c.test_dataloader, c.val_dataloader);
    assert.equal(c.work_dir, 'work_dirs/tiny_leaf');
    assert.deepEqual(c.custom_imports, { imports: ['mmseg.models'], allow_failed_imports: false });
    assert.equal(c.default_scope, 'mmseg');
    assert.equal((c.train_cfg as Dict).max_iters, 160);
    assert.equal(((c.default_hooks as Dict).checkpoint as Dict).save_best, 'mIoU');
    assert.ok(!('_base_' in c));
    // the model is exactly the golden tiny_public model
    assert.deepEqual(model, (JSON.parse(fs.readFileSync(tinyConfigPath, 'utf8')) as Dict).model);
  });

  it(
    "a tree in the style of mmseg's BEiT configs equals " + 'configs/beit-base_upernet_8xb2-160k_ade20k-640x640.json',
    () => {
      const name = 'beit-base_upernet_8xb2-160k_ade20k-640x640';
      const fromPy = loadConfig(path.join(fixtures, 'mmseg_beit', `${name}.py`));
      const jsonPath = path.join(repoRoot, 'configs', `${name}.json`);
      const fromJson = loadConfig(jsonPath);
      assert.deepEqual(fromPy, fromJson);
      const a = trainSettings(fromPy, `${name}.py`),
        b = trainSettings(fromJson, jsonPath);
      assert.deepEqual(a, b);
      assert.equal(a.configName, name);
    },
  );

  it('several levels, lists of bases, JSON bases and _base_ references', () => {
    const dir = tree({
      'base/a.py': "x = dict(p=1, q=dict(r=2, s=3))\nitems = [1, 2]\nname = 'a'",
      'base/b.json': JSON.stringify({ other: { k: 'v' } }),
      'mid.py': "_base_ = ['./base/a.py', './base/b.json']\nx = dict(q=dict(r=20))\nitems = [9]",
      'leaf.py':
        "_base_ = './mid.py'\nx = dict(t=_base_.x.q.s + 1)\n" + "copy = {{_base_.other}}\nlabel = '{{_base_.name}}'",
      'leaf.json': JSON.stringify({ _base_: './mid.py', x: { q: { _delete_: true, z: 0 } } }),
    });
    assert.deepEqual(readConfigFile(path.join(dir, 'leaf.py')), {
      x: { p: 1, q: { r: 20, s: 3 }, t: 4 },
      items: [9],
      name: 'a',
      other: { k: 'v' },
      copy: { k: 'v' },
      label: 'a',
    });
    assert.deepEqual(readConfigFile(path.join(dir, 'leaf.json')), {
      x: { p: 1, q: { z: 0 } },
      items: [9],
      name: 'a',
      other: { k: 'v' },
    });
  });

  it('refuses cycles, missing bases, keys in two bases and a dict over a non-dict', () => {
    const dir = tree({
      'a.py': "_base_ = './b.py'\nx = 1",
      'b.py': "_base_ = './a.py'\ny = 1",
      'missing.py': "_base_ = ['./nope.py']",
      'd1.py': 'k = 1',
      'd2.py': 'k = 2',
      'dup.py': "_base_ = ['./d1.py', './d2.py']",
      'scalar.py': "_base_ = './d1.py'\nk = dict(a=1)",
      'scoped.py': "_base_ = 'mmseg::_base_/models/upernet_beit.py'",
      'late.py': "x = 1\n_base_ = './d1.py'",
      'badref.py': "_base_ = './d1.py'\ny = _base_.nothere",
    });
    const load = (f: string) => () => readConfigFile(path.join(dir, f));
    assert.throws(load('a.py'), /_base_ cycle \(a\.py -> b\.py -> a\.py\)/);
    assert.throws(load('missing.py'), /missing\.py:1: _base_ '\.\/nope\.py' not found/);
    assert.throws(load('dup.py'), /key 'k' is defined in two bases/);
    assert.throws(load('scalar.py'), /k is a dict here but a number in the base config; set _delete_=True/);
    assert.throws(load('scoped.py'), /--mmseg-configs DIR or BEITSEG_MMSEG_CONFIGS=DIR/);
    // mmengine reads _base_ wherever it is assigned
    assert.deepEqual(load('late.py')(), { k: 1, x: 1 });
    assert.throws(load('badref.py'), /badref\.py:2: _base_\.nothere is not defined/);
  });

  it('merge: _delete_ replaces, lists are replaced whole, list indices only with allowListKeys', () => {
    const base = { a: { b: 1, c: 2 }, l: [{ x: 1 }, { x: 2 }] };
    // mmengine pops _delete_ where the key is in the base, keeps it (and nested ones) where it is not
    assert.deepEqual(mergeInto({ a: { _delete_: true, d: 3 } }, base, 't'), { a: { d: 3 }, l: base.l });
    assert.deepEqual(mergeInto({ a: { _delete_: false, d: 3 } }, base, 't'), { a: { b: 1, c: 2, d: 3 }, l: base.l });
    assert.deepEqual(mergeInto({ n: { _delete_: true, d: 3 } }, base, 't'), { ...base, n: { _delete_: true, d: 3 } });
    assert.deepEqual(mergeInto({ a: { _delete_: true, d: { _delete_: true } } }, base, 't'), {
      a: { d: { _delete_: true } },
      l: base.l,
    });
    assert.deepEqual(mergeInto({ l: [5] }, base, 't'), { a: base.a, l: [5] });
    assert.deepEqual(mergeInto({ l: { 1: { x: 9 } } }, base, 't', true), { a: base.a, l: [{ x: 1 }, { x: 9 }] });
    assert.throws(() => mergeInto({ l: { 1: { x: 9 } } }, base, 't'), /a dict here but a list/);
    assert.deepEqual(base, { a: { b: 1, c: 2 }, l: [{ x: 1 }, { x: 2 }] }, 'the base is not changed');
  });
});
