/**
 * mmengine 1.x runner checkpoints (issue 17, point 6): meta, state_dict, message_hub, optimizer and
 * param_schedulers, with numpy arrays and scalars and mmengine HistoryBuffers. readCheckpoint (and
 * so predict, eval and train, which load through it) takes the state dict and reads the rest as
 * inert data; a foreign global that a tensor needs is still refused by name.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCheckpoint } from '../../src/checkpoint/read_checkpoint.js';
import { readPth } from '../../src/checkpoint/formats/pth.js';
import { readSafetensors } from '../../src/checkpoint/formats/safetensors.js';
import { OpaqueObject, unpickle } from '../../src/checkpoint/formats/pickle.js';
import type { HostTensor } from '../../src/common/host_tensor.js';
import { initModel } from '../../src/inference/api.js';
import { datasetMetaWithCheckpoint } from '../../src/inference/metainfo.js';
import { loadFromCheckpoint } from '../../src/engine/init_weights.js';
import { makeTempDir } from '../temp.js';
import { assertStateDictsEqual, buildTorchZip, local, PickleWriter, tiny } from './helpers.js';
import { tinyConfigPath } from '../helpers.js';

const STORAGE_OF: Record<string, string> = {
  float32: 'FloatStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

function contiguousStride(shape: number[]): number[] {
  const stride = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    stride[d] = s;
    s *= shape[d]!;
  }
  return stride;
}

/** numpy.dtype('<f8') as numpy pickles it: REDUCE of ('f8', False, True), then BUILD. */
function npDtype(w: PickleWriter, code: string): PickleWriter {
  return w
    .global('numpy', 'dtype')
    .mark()
    .str(code)
    .newfalse()
    .newtrue()
    .tuple()
    .reduce()
    .mark()
    .int(3)
    .str('<')
    .none()
    .none()
    .none()
    .int(-1)
    .int(-1)
    .int(0)
    .tuple()
    .build();
}

/** A 1-D float64 numpy array: _reconstruct(ndarray, (0,), b'b') then BUILD (1, shape, dtype, False, raw). */
function npArray(w: PickleWriter, values: number[]): PickleWriter {
  w.global('numpy.core.multiarray', '_reconstruct')
    .mark()
    .global('numpy', 'ndarray')
    .mark()
    .int(0)
    .tuple()
    .pybytes(Buffer.from('b'))
    .tuple()
    .reduce();
  w.mark().int(1).mark().int(values.length).tuple();
  npDtype(w, 'f8');
  return w
    .newfalse()
    .pybytes(new Uint8Array(Float64Array.from(values).buffer))
    .tuple()
    .build();
}

function npScalar(w: PickleWriter, v: number): PickleWriter {
  w.global('numpy.core.multiarray', 'scalar').mark();
  npDtype(w, 'f8');
  return w
    .pybytes(new Uint8Array(Float64Array.of(v).buffer))
    .tuple()
    .reduce();
}

function historyBuffer(w: PickleWriter, values: number[]): PickleWriter {
  w.global('mmengine.logging.history_buffer', 'HistoryBuffer').emptyTuple().newobj();
  w.emptyDict().mark().str('max_length').int(1000000).str('_log_history');
  npArray(w, values);
  w.str('_count_history');
  npArray(
    w,
    values.map(() => 1),
  );
  // mmengine's __getstate__ adds the class's statistics methods, written as getattr(HistoryBuffer, name)
  w.str('statistics_methods').emptyDict().mark();
  for (const name of ['min', 'max', 'current', 'mean']) {
    w.str(name).global('__builtin__', 'getattr').global('mmengine.logging.history_buffer', 'HistoryBuffer');
    w.str(name).op(0x86).reduce();
  }
  w.setitems();
  return w.setitems().build();
}

/** An mmengine Runner.save_checkpoint-shaped pickle around `sd`; tensors become storages 0..n-1. */
function mmengineCheckpoint(
  sd: Map<string, HostTensor>,
  classes = ['background', 'thing'],
): { pkl: Uint8Array; storages: Record<string, Uint8Array> } {
  const storages: Record<string, Uint8Array> = {};
  const w = new PickleWriter().proto(2).emptyDict().mark();
  w.str('meta')
    .emptyDict()
    .mark()
    .str('mmengine_version')
    .str('0.10.4')
    .str('seed')
    .int(0)
    .str('iter')
    .int(4)
    .str('dataset_meta')
    .emptyDict()
    .str('classes')
    .mark();
  for (const c of classes) w.str(c);
  w.tuple().setitem().setitems();
  w.str('state_dict').global('collections', 'OrderedDict').emptyTuple().reduce().mark();
  let i = 0;
  const tensorOf = (t: HostTensor) => {
    const key = String(i++);
    storages[key] = t.data;
    const numel = t.shape.reduce((a, b) => a * b, 1);
    return w.tensor(STORAGE_OF[t.dtype]!, key, numel, 0, t.shape, contiguousStride(t.shape));
  };
  for (const [k, t] of sd) {
    w.str(k);
    tensorOf(t);
  }
  w.setitems();
  w.str('message_hub')
    .emptyDict()
    .mark()
    .str('log_scalars')
    .global('collections', 'OrderedDict')
    .emptyTuple()
    .reduce()
    .mark()
    .str('train/loss');
  historyBuffer(w, [1.5, 1.25]);
  w.setitems().str('runtime_info').emptyDict().mark().str('best_score');
  npScalar(w, 0.4125);
  w.str('iter').int(4).setitems().setitems();
  const first = sd.values().next().value as HostTensor;
  w.str('optimizer').emptyDict().mark().str('state').emptyDict().int(0).emptyDict().str('exp_avg');
  tensorOf(first);
  w.setitem().setitem();
  w.str('param_groups').emptyList().emptyDict().mark().str('lr');
  npScalar(w, 6e-5);
  w.str('params').emptyList().int(0).append().setitems().append().setitems();
  w.str('param_schedulers').emptyList().emptyDict().mark().str('last_step').int(4).str('_last_value').emptyList();
  npScalar(w, 3e-5);
  w.append().setitems().append();
  w.setitems().stop();
  return { pkl: w.bytes(), storages };
}

test(
  'mmengine_runner.pth (written by torch.save with numpy values and HistoryBuffers) loads its state ' + 'dict',
  async () => {
    const file = local('mmengine_runner.pth');
    const r = await readCheckpoint(file);
    assert.deepEqual(
      [...r.stateDict.keys()],
      ['backbone.patch_embed.projection.weight', 'decode_head.conv_seg.bias', 'decode_head.bn.num_batches_tracked'],
    );
    const w = r.stateDict.get('backbone.patch_embed.projection.weight')!;
    assert.deepEqual(w.shape, [2, 3, 2, 2]);
    assert.deepEqual(
      [...new Float32Array(w.data.slice().buffer)],
      Array.from({ length: 24 }, (_, k) => k / 8),
    );
    assert.equal(r.description.container, 'state_dict');
    assert.deepEqual(r.description.skipped, ['meta', 'message_hub', 'optimizer', 'param_schedulers']);
    assert.deepEqual(r.description.inertRecords, {
      'mmengine.logging.history_buffer.HistoryBuffer': 2,
      'numpy.core.multiarray._reconstruct': 4,
      'numpy.dtype': 2, // f8 and i8, each pickled once and memoised
      'numpy.core.multiarray.scalar': 3,
    });
    assert.match(
      r.description.summary,
      new RegExp(
        "^pth-zip, state dict under 'state_dict', 3 tensors, skipped meta, message_hub, optimizer, " +
          String.raw`param_schedulers, read as inert data: .*2 mmengine\.logging\.history_buffer\.HistoryBuffer`,
      ),
    );
    // Strict reading (readPth's default) still refuses the numpy globals, by name.
    await assert.rejects(readPth(file), /refusing to load global 'mmengine\.logging\.history_buffer\.HistoryBuffer'/);
    // The inert records keep what the pickle said, and nothing was called.
    const all = (await readPth(file, { foreignGlobals: 'data' })) as Map<string, unknown>;
    const hub = all.get('message_hub') as Map<string, Map<string, unknown>>;
    const loss = hub.get('log_scalars')!.get('train/loss') as OpaqueObject;
    assert.ok(loss instanceof OpaqueObject);
    assert.equal(loss.qualname, 'mmengine.logging.history_buffer.HistoryBuffer');
    const state = loss.state as Map<string, unknown>;
    assert.equal(state.get('max_length'), 1000000);
    const hist = state.get('_log_history') as OpaqueObject;
    assert.equal(hist.qualname, 'numpy.core.multiarray._reconstruct');
    const raw = (hist.state as unknown[])[4] as Uint8Array;
    assert.deepEqual([...new Float64Array(raw.slice().buffer)], [1.5, 1.25, 1.0]);
    // getattr(HistoryBuffer, 'min') and co., as mmengine's __getstate__ makes torch.save write them:
    // inert markers naming the method, which nothing can call
    const methods = state.get('statistics_methods') as Map<string, OpaqueObject>;
    assert.deepEqual([...methods.keys()], ['min', 'max', 'current', 'mean']);
    for (const [name, m] of methods) {
      assert.ok(m instanceof OpaqueObject && typeof m !== 'function');
      assert.equal(m.qualname, `mmengine.logging.history_buffer.HistoryBuffer.${name}`);
    }
  },
);

test(
  'a hand-built mmengine checkpoint of the tiny segmentor loads in predict/eval (initModel) and train ' + '(load_from)',
  async (t) => {
    const { dir, cleanup } = makeTempDir();
    t.after(cleanup);
    const sd = readSafetensors(tiny('segmentor_state_dict.safetensors')).tensors;
    const { pkl, storages } = mmengineCheckpoint(sd);
    const file = path.join(dir, 'iter_4.pth');
    fs.writeFileSync(file, buildTorchZip('iter_4', pkl, storages));

    const r = await readCheckpoint(file);
    assertStateDictsEqual(r.stateDict, sd, true);
    assert.deepEqual(r.description.skipped, ['meta', 'message_hub', 'optimizer', 'param_schedulers']);
    assert.equal(r.description.inertRecords!['mmengine.logging.history_buffer.HistoryBuffer'], 1);

    const model = await initModel(tinyConfigPath, file, { device: 'cpu' });
    assert.deepEqual(model.weights!.missingKeys, []);
    assert.deepEqual(model.weights!.unexpectedKeys, []);
    assert.match(model.weights!.description.summary, /skipped meta, message_hub, optimizer, param_schedulers/);
    const report = await loadFromCheckpoint(model.model, file);
    assert.equal(report.loaded, sd.size);
    assert.match(report.lines[0]!, /read as inert data: .*numpy\.core\.multiarray\.scalar/);
  },
);

test('a foreign global that a tensor needs, or that the pickle calls, is still refused by name', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const storages = { 0: new Uint8Array(8) };
  const wrap = (entry: (w: PickleWriter) => PickleWriter) => {
    const w = new PickleWriter().proto(2).emptyDict().str('meta');
    npScalar(w, 1).setitem().str('state_dict').emptyDict().str('w');
    return entry(w).setitem().setitem().stop().bytes();
  };
  const cases: [string, Uint8Array, RegExp][] = [
    // A tensor subclass outside the allow-list.
    [
      'subclass',
      wrap((w) =>
        w
          .global('torch._tensor', '_rebuild_from_type_v2')
          .mark()
          .global('torch._utils', '_rebuild_tensor_v2')
          .global('mylib.tensors', 'FancyTensor')
          .mark()
          .mark()
          .str('storage')
          .global('torch', 'FloatStorage')
          .str('0')
          .str('cpu')
          .int(2)
          .tuple()
          .binpersid()
          .int(0)
          .mark()
          .int(2)
          .tuple()
          .mark()
          .int(1)
          .tuple()
          .newfalse()
          .global('collections', 'OrderedDict')
          .emptyTuple()
          .reduce()
          .tuple()
          .emptyDict()
          .tuple()
          .reduce(),
      ),
      /refusing tensor type mylib\.tensors\.FancyTensor/,
    ],
    // A foreign class handed a storage (e.g. a custom tensor container).
    [
      'container',
      wrap((w) =>
        w
          .global('mylib.tensors', 'Box')
          .mark()
          .mark()
          .str('storage')
          .global('torch', 'FloatStorage')
          .str('0')
          .str('cpu')
          .int(2)
          .tuple()
          .binpersid()
          .tuple()
          .newobj(),
      ),
      /refusing to load global 'mylib\.tensors\.Box': it receives a tensor or storage/,
    ],
    // A torch tensor kind that is not supported.
    [
      'qtensor',
      wrap((w) => w.global('torch._utils', '_rebuild_qtensor').emptyTuple().reduce()),
      /refusing to load global 'torch\._utils\._rebuild_qtensor': only dense tensors/,
    ],
    // A call of a foreign function: how a pickle runs code.
    [
      'call',
      wrap((w) => w.global('os', 'system').mark().str('id').tuple().reduce()),
      /refusing to load global 'os\.system': the pickle calls it \(REDUCE\)/,
    ],
  ];
  for (const [name, pkl, re] of cases) {
    const file = path.join(dir, `${name}.pth`);
    fs.writeFileSync(file, buildTorchZip(name, pkl, storages));
    await assert.rejects(readCheckpoint(file), (err: Error) => {
      assert.match(err.message, re, name);
      assert.ok(err.message.includes('nothing was executed'), err.message);
      return true;
    });
  }
});

test('getattr is read only on an allow-listed class and attribute, as a marker; anything else is refused', async () => {
  const getattr = (mod: string, cls: string, attr: string) =>
    new PickleWriter()
      .proto(2)
      .global('__builtin__', 'getattr')
      .global(mod, cls)
      .str(attr)
      .op(0x86)
      .reduce()
      .stop()
      .bytes();
  const HB = 'mmengine.logging.history_buffer';
  const data = { foreignGlobals: 'data' as const, label: 'g.pkl' };
  assert.equal(
    (unpickle(getattr(HB, 'HistoryBuffer', 'mean'), data) as OpaqueObject).qualname,
    `${HB}.HistoryBuffer.mean`,
  );
  assert.throws(() => unpickle(getattr(HB, 'HistoryBuffer', '__init__'), data), /g\.pkl: refusing getattr\(/);
  assert.throws(() => unpickle(getattr(HB, 'HistoryBuffer', '__reduce__'), data), /refusing getattr/);
  assert.throws(() => unpickle(getattr('os', 'system', 'min'), data), /refusing getattr/);
  assert.throws(() => unpickle(getattr('mylib', 'Thing', 'min'), data), /refusing getattr/);
  // strict reading refuses getattr itself, by name
  assert.throws(() => unpickle(getattr(HB, 'HistoryBuffer', 'min')), /refusing to load global 'builtins\.getattr'/);
  // a marker cannot be called: calling it is refused
  const callMarker = new PickleWriter()
    .proto(2)
    .global('__builtin__', 'getattr')
    .global(HB, 'HistoryBuffer')
    .str('min')
    .op(0x86)
    .reduce()
    .emptyTuple()
    .reduce()
    .stop()
    .bytes();
  assert.throws(() => unpickle(callMarker, data), /cannot be called/);
  // read as inert data throughout, another getattr is an inert record, still never a call
  const inert = unpickle(getattr('os', 'system', 'x'), { foreignGlobals: 'inert' }) as OpaqueObject;
  assert.equal(inert.qualname, 'builtins.getattr');
});

test('class names come from the checkpoint when the config has none; a mismatch warns naming both', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const sd = readSafetensors(tiny('segmentor_state_dict.safetensors')).tensors;
  const names = ['sky', 'road', 'car', 'tree', 'person'];
  const { pkl, storages } = mmengineCheckpoint(sd, names);
  const file = path.join(dir, 'iter_8.pth');
  fs.writeFileSync(file, buildTorchZip('iter_8', pkl, storages));
  assert.deepEqual((await readCheckpoint(file)).description.classes, {
    classes: names,
    palette: null,
    source: 'meta.dataset_meta',
  });
  // the tiny config names no classes (5 outputs): the checkpoint's names are used
  const model = await initModel(tinyConfigPath, file, { device: 'cpu' });
  assert.deepEqual(model.meta.classes, names);
  assert.equal(model.meta.palette.length, 5);
  // a config with its own classes keeps them; the difference is a warning naming both
  const cfg = JSON.parse(fs.readFileSync(tinyConfigPath, 'utf8')) as Record<string, unknown>;
  cfg.metainfo = { classes: ['a', 'b', 'c', 'd', 'e'] };
  const { meta, warnings } = datasetMetaWithCheckpoint(cfg, 5, (await readCheckpoint(file)).description.classes);
  assert.deepEqual(meta.classes, ['a', 'b', 'c', 'd', 'e']);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0]!,
    /config's classes \(5: a, b, c, d, \.\.\.\) differ from the checkpoint's meta\.dataset_meta/,
  );
  assert.match(warnings[0]!, /\(5: sky, road, car, tree, \.\.\.\)/);
  // a count that does not fit the model is not used, with a warning
  const two = datasetMetaWithCheckpoint({}, 5, { classes: ['x', 'y'], palette: null, source: 'meta.CLASSES' });
  assert.deepEqual(two.meta.classes, ['class_0', 'class_1', 'class_2', 'class_3', 'class_4']);
  assert.match(two.warnings[0]!, /meta\.CLASSES lists 2 classes but the model predicts 5; not used/);
});
