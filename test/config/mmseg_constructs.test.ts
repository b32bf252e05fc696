/**
 * Issue 28 item 4: the rest of mmseg's config language, on a fixture tree written in mmseg's style
 * (test/fixtures/configs/mmseg_style, our own files): one test per construct, with the value
 * mmengine's Config gives for it (checked by hand against Python's semantics), and the refusals.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readConfigFile } from '../../src/config/load.js';
import type { Dict } from '../../src/config/merge.js';
import { repoRoot } from '../helpers.js';

const tree = path.join(repoRoot, 'test', 'fixtures', 'configs', 'mmseg_style');
const leaf = path.join(tree, 'hrlike', 'fcn_hrlike-w18_4xb2-1k_mini-512x512.py');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-constructs-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function py(text: string, env: NodeJS.ProcessEnv = {}): Dict {
  const f = path.join(tmp, `c${n++}.py`);
  fs.writeFileSync(f, text);
  return readConfigFile(f, { env });
}

describe('the mmseg-style fixture tree', () => {
  let cfg: Dict;
  let head: Dict;
  before(() => {
    cfg = readConfigFile(leaf, { env: { BEITSEG_TEST_DATA: '/data/x' } });
    head = (cfg.model as Dict).decode_head as Dict;
  });
  it('sum, min, max, len, range, list', () => {
    assert.equal(head.channels, 270);
    assert.equal(head.min_channels, 18);
    assert.equal(head.max_channels, 144);
    assert.deepEqual(head.in_index, [0, 1, 2, 3]);
  });
  it('round (half to even), abs, int, float', () => {
    assert.equal(head.ratio, 10);
    assert.equal(head.rounded, 2);
    assert.equal(head.offset, 3);
    assert.equal(head.as_int, 270);
    assert.equal(head.as_float, 3);
  });
  it('dict comprehensions with f-string keys, zip, enumerate(start=), tuple', () => {
    assert.deepEqual(Object.keys(cfg.stages as Dict), ['stage1', 'stage2', 'stage3', 'stage4']);
    assert.deepEqual((cfg.stages as Dict).stage3, { num_branches: 3, num_channels: [18, 18, 18] });
    assert.deepEqual(head.named, { a: 18, b: 36, c: 72, d: 144 });
    assert.deepEqual(head.indexed, [
      { index: 1, width: 18 },
      { index: 2, width: 36 },
      { index: 3, width: 72 },
      { index: 4, width: 144 },
    ]);
    assert.deepEqual(cfg.as_tuple, ['a', 'b']);
  });
  it('conditions, slices and comprehensions with if, on values of the bases', () => {
    assert.deepEqual(cfg.widths, [18, 36, 72, 144]);
    assert.deepEqual(cfg.high_res, [18, 36]);
    assert.deepEqual(cfg.last_two, [72, 144]);
    assert.equal(cfg.mode, 'slide');
    assert.equal(cfg.flip, true);
  });
  it('set comprehensions (a list of the distinct items, first-seen order), dict(pairs), dict(mapping, **kw)', () => {
    assert.deepEqual(cfg.kinds, ['conv', 'bn', 'relu']);
    assert.deepEqual(cfg.pairs, { x: 1, y: 2 });
    assert.deepEqual(cfg.copied, { x: 1, y: 2, z: 3 });
  });
  it('NAME.update(...) on a dict', () => {
    assert.deepEqual((cfg.model as Dict).data_preprocessor, { type: 'SegDataPreProcessor', size: [512, 512] });
  });
  it('YAML and JSON bases, merged like .py ones', () => {
    assert.equal(cfg.dataset_type, 'ADE20KDataset');
    assert.deepEqual((cfg.train_dataloader as Dict).batch_size, 2);
    assert.deepEqual(cfg.train_cfg, { type: 'IterBasedTrainLoop', max_iters: 1000, val_interval: 100 });
  });
  it('predefined variables and {{$NAME:default}}', () => {
    assert.equal(cfg.work_dir, './work_dirs/fcn_hrlike-w18_4xb2-1k_mini-512x512');
    assert.equal(cfg.from_env, '/data/x');
    assert.equal(cfg.ext, '.py');
    const dflt = readConfigFile(leaf, { env: {} });
    assert.equal(dflt.from_env, 'data/default');
  });
  it('_base_ after other assignments, f-strings with format specs, _base_.x and quoted {{_base_.x}}', () => {
    assert.deepEqual(cfg.crop_size, [512, 512]);
    assert.equal(cfg.name, 'fcn_512x512_1k_lr0.5');
    assert.equal(cfg.lr, 0.0001);
    assert.equal(cfg.batch, 2);
    assert.deepEqual((cfg.model as Dict).test_cfg, { mode: 'slide', crop_size: [512, 512] });
    assert.equal(head.num_classes, 150);
  });
});

describe('each builtin and construct on its own', () => {
  it('sum with a start, range with step, list/tuple of strings and dicts', () => {
    assert.deepEqual(py('a = sum([[1], [2]], [])\nb = sum((0.5, 0.25))\nc = range(10, 0, -3)'), {
      a: [1, 2],
      b: 0.75,
      c: [10, 7, 4, 1],
    });
    assert.deepEqual(py("a = list('ab')\nb = list(dict(x=1, y=2))\nc = tuple()"), {
      a: ['a', 'b'],
      b: ['x', 'y'],
      c: [],
    });
    assert.deepEqual(py('a = sum(x * 2 for x in range(4))'), { a: 12 });
  });
  it('min/max over strings, len of dicts and strings, int/float of strings and bools', () => {
    assert.deepEqual(
      py("a = min(['b', 'a'])\nb = len(dict(x=1))\nc = len('abc')\nd = int(' -7 ')\ne = float('1e-3')"),
      {
        a: 'a',
        b: 1,
        c: 3,
        d: -7,
        e: 0.001,
      },
    );
    assert.deepEqual(py('a = int(True)\nb = int(-2.7)\nc = round(0.125, 2)\nd = round(3.5)'), {
      a: 1,
      b: -2,
      c: 0.12,
      d: 4,
    });
  });
  it('f-strings: expressions, {{ }}, format specs, str() of values', () => {
    assert.deepEqual(py("x = 3\ny = f'{x}-{x * 2:03d}-{{lit}}-{0.5:.2f}-{None}-{True}-{[1, 2]}'"), {
      x: 3,
      y: '3-006-{lit}-0.50-None-True-[1, 2]',
    });
    assert.deepEqual(py('d = dict(a=1)\ns = f"{d[\'a\']}"'), { d: { a: 1 }, s: '1' });
  });
  it('comprehensions with several loops and tuple targets', () => {
    assert.deepEqual(py('a = [i * 10 + j for i in range(2) for j in range(3)]'), { a: [0, 1, 2, 10, 11, 12] });
    assert.deepEqual(py("a = {k: v for k, v in [('x', 1), ('y', 2)]}"), { a: { x: 1, y: 2 } });
    // loop variables do not leak
    assert.throws(() => py('a = [i for i in [1]]\nb = i'), /name 'i' is not defined/);
  });
  it('x.update(mapping, **kw) replaces keys in place; update on a non-dict is refused', () => {
    assert.deepEqual(py('d = dict(a=1, b=dict(c=1))\nd.update(dict(b=2), e=3)'), { d: { a: 1, b: 2, e: 3 } });
    assert.throws(() => py('l = [1]\nl.update(a=1)'), /c\d+\.py:2: l\.update\(\.\.\.\): l is a list, not a dict/);
  });
  it('predefined and environment variables in JSON and YAML configs too', () => {
    const j = path.join(tmp, 'run_a.json');
    fs.writeFileSync(j, '{"work_dir": "./work_dirs/{{ fileBasenameNoExtension }}", "root": "{{$ROOT_X:data}}"}');
    assert.deepEqual(readConfigFile(j, { env: {} }), { work_dir: './work_dirs/run_a', root: 'data' });
    const y = path.join(tmp, 'run_b.yaml');
    fs.writeFileSync(y, 'work_dir: ./work_dirs/{{ fileBasenameNoExtension }}\nroot: "{{$ROOT_X:data}}"\n');
    assert.deepEqual(readConfigFile(y, { env: { ROOT_X: '/d' } }), { work_dir: './work_dirs/run_b', root: '/d' });
  });
  it('{{$NAME}} without a value or default is an error naming the variable', () => {
    assert.throws(
      () => py("a = '{{$BEITSEG_NOT_SET}}'"),
      /environment variable BEITSEG_NOT_SET .* is not set and has no default/,
    );
    assert.deepEqual(py("a = '{{ $HOME_X:/tmp }}'", { HOME_X: '/h' }), { a: '/h' });
  });
  it('refusals: wrong arity or types, other callables and methods, conversions, lazy configs', () => {
    assert.throws(() => py('a = range(1, 2, 0)'), /range\(\): step must not be zero/);
    assert.throws(() => py("a = int('x')"), /invalid literal for int/);
    assert.throws(() => py('a = len(3)'), /object of type an int has no len/);
    assert.throws(() => py("a = min([1, 'a'])"), /min\(\): a string and an int cannot be ordered/);
    assert.throws(() => py('a = abs(1, 2)'), /abs\(\): takes 1 positional arguments, got 2/);
    assert.throws(() => py('a = sorted([2, 1])'), /calling sorted\(\.\.\.\) is not supported/);
    assert.throws(() => py("a = 'x'.upper()"), /calling \.upper/);
    assert.throws(() => py("a = f'{1!r}'"), /f-string conversions/);
    assert.throws(() => py("a = f'{1:>10s}'"), /format spec/);
    assert.throws(() => py('a = range(10 ** 7)'), /longer than 1000000/);
    assert.throws(
      () => py('from mmengine.config import read_base\nwith read_base():\n    from .._base_.models.x import *'),
      /lazy-import configs \(with read_base\(\): \.\.\.\) are not supported/,
    );
  });
});
