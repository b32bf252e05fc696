import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readPth, readPthContent } from '../../src/checkpoint/formats/pth.js';
import { readCheckpoint } from '../../src/checkpoint/read_checkpoint.js';
import { readSafetensors } from '../../src/checkpoint/formats/safetensors.js';
import { pickleState, OpaqueObject } from '../../src/checkpoint/formats/pickle.js';
import { toFloat64 } from '../../src/checkpoint/formats/float_convert.js';
import { isHostTensor, type HostTensor } from '../../src/common/host_tensor.js';
import { makeTempDir } from '../temp.js';
import { assertStateDictsEqual, buildTorchZip, buildZip, local, PickleWriter, tiny } from './helpers.js';

function asStateDict(v: unknown): Map<string, HostTensor> {
  assert.ok(v instanceof Map);
  for (const t of v.values()) assert.ok(isHostTensor(t));
  return v as Map<string, HostTensor>;
}

test('official checkpoint: readPth(...)["model"] equals official_state_dict.safetensors bit for bit', async () => {
  const obj = await readPth(tiny('beit_official.pth'));
  assert.ok(obj instanceof Map);
  assert.deepEqual([...obj.keys()], ['model']);
  const sd = asStateDict(obj.get('model'));
  assertStateDictsEqual(sd, readSafetensors(tiny('official_state_dict.safetensors')).tensors, true);
  // torch attaches _metadata to state dicts through BUILD; it is kept aside, not mixed into the keys.
  const state = pickleState(sd);
  assert.ok(state instanceof Map && state.has('_metadata'));
});

test(
  'segmentor checkpoint: readPth(...)["state_dict"] equals segmentor_state_dict.safetensors bit for ' + 'bit',
  async () => {
    const obj = (await readPth(tiny('segmentor_mmseg.pth'))) as Map<string, unknown>;
    const sd = asStateDict(obj.get('state_dict'));
    // The .pth holds num_batches_tracked as 0-d tensors (shape []), as torch does; the fixture's
    // safetensors copy stores them as shape [1]. Same bytes either way.
    const zeroDim = [...sd].filter(([, t]) => t.shape.length === 0).map(([k]) => k);
    assert.equal(zeroDim.length, 14);
    assert.ok(zeroDim.every((k) => k.endsWith('num_batches_tracked')));
    assertStateDictsEqual(sd, readSafetensors(tiny('segmentor_state_dict.safetensors')).tensors, true, {
      expectedZeroDimAsOne: true,
    });
  },
);

test('contiguous tensors are zero-copy views into one buffer per storage', async () => {
  const content = await readPthContent(tiny('beit_official.pth'));
  assert.equal(content.format, 'pth-zip');
  assert.equal(content.archiveName, 'beit_official');
  const sd = (content.value as Map<string, unknown>).get('model') as Map<string, HostTensor>;
  assert.equal(content.storages, sd.size);
  for (const t of sd.values()) {
    assert.equal(t.data.byteOffset, 0);
    assert.equal(
      t.data.byteLength,
      t.data.buffer.byteLength,
      'a tensor that covers its whole storage is the storage buffer itself',
    );
  }
});

interface Expected {
  dtype: string;
  shape: number[];
  values: number[];
}
const expected = JSON.parse(fs.readFileSync(local('expected.json'), 'utf8')) as Record<string, Expected>;

function valuesOf(t: HostTensor): number[] {
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const n = t.shape.reduce((a, b) => a * b, 1);
  switch (t.dtype) {
    case 'float32':
    case 'float16':
    case 'bfloat16':
      return [...toFloat64(t)];
    case 'int64':
      return Array.from({ length: n }, (_, i) => Number(view.getBigInt64(8 * i, true)));
    case 'int32':
      return Array.from({ length: n }, (_, i) => view.getInt32(4 * i, true));
    case 'uint8':
    case 'bool':
      return [...t.data];
  }
}

async function checkViewsFile(file: string, format: string): Promise<void> {
  const content = await readPthContent(file);
  assert.equal(content.format, format);
  const obj = content.value as Map<string, unknown>;
  const sd = asStateDict(obj.get('state_dict'));
  assert.deepEqual([...sd.keys()], Object.keys(expected));
  for (const [k, e] of Object.entries(expected)) {
    const t = sd.get(k)!;
    assert.equal(t.dtype, e.dtype, k);
    assert.deepEqual(t.shape, e.shape, k);
    assert.deepEqual(valuesOf(t), e.values, k);
  }
  // base, rows_1_3 are contiguous views of the same storage: same memory, no copy.
  assert.equal(sd.get('rows_1_3')!.data.buffer, sd.get('base')!.data.buffer);
  assert.equal(sd.get('rows_1_3')!.data.byteOffset - sd.get('base')!.data.byteOffset, 6 * 4);
  // the transpose and the column are gathered into their own buffers.
  assert.notEqual(sd.get('transposed')!.data.buffer, sd.get('base')!.data.buffer);
  assert.notEqual(sd.get('column_2')!.data.buffer, sd.get('base')!.data.buffer);
  // plain Python metadata
  const meta = obj.get('meta') as Map<string, unknown>;
  assert.deepEqual(meta.get('list'), [1, 2.5, 'x', null, true, false]);
  assert.deepEqual(meta.get('tuple'), [1, [2, 3]]);
  assert.equal(meta.get('big'), 2n ** 70n);
  assert.equal(meta.get('neg'), -5);
  assert.deepEqual(meta.get('bytes'), Uint8Array.from([0x61, 0x62, 0x00, 0xff]));
  assert.deepEqual(meta.get('set'), new Set([7]));
  assert.deepEqual(meta.get('nested'), new Map([['a', new Map([['b', 'c']])]]));
}

test('views.pth: non-contiguous, offset, expanded and shared-storage tensors of every dtype', async () => {
  await checkViewsFile(local('views.pth'), 'pth-zip');
});

test('legacy (pre-1.6, non-zip) torch.save format is read too', async () => {
  await checkViewsFile(local('legacy.pth'), 'pth-legacy');
});

test('hand-built archive: transposed view and a shared-storage pair', async () => {
  const { dir, cleanup } = makeTempDir();
  try {
    // storage '0': 6 floats [0..5]; 'a' = contiguous (2,3); 'b' = its transpose (3,2) stride (1,3);
    // 'c' = elements 3..5 (offset 3) of the same storage.
    const pkl = new PickleWriter()
      .proto(2)
      .emptyDict()
      .str('a')
      .tensor('FloatStorage', '0', 6, 0, [2, 3], [3, 1])
      .setitem()
      .str('b')
      .tensor('FloatStorage', '0', 6, 0, [3, 2], [1, 3])
      .setitem()
      .str('c')
      .tensor('FloatStorage', '0', 6, 3, [3], [1])
      .setitem()
      .stop()
      .bytes();
    const file = path.join(dir, 'renamed-file.pth');
    fs.writeFileSync(
      file,
      buildTorchZip('archive', pkl, { 0: new Uint8Array(Float32Array.from([0, 1, 2, 3, 4, 5]).buffer) }),
    );
    const sd = asStateDict(await readPth(file));
    assert.deepEqual([...toFloat64(sd.get('a')!)], [0, 1, 2, 3, 4, 5]);
    assert.deepEqual([...toFloat64(sd.get('b')!)], [0, 3, 1, 4, 2, 5]);
    assert.deepEqual([...toFloat64(sd.get('c')!)], [3, 4, 5]);
    assert.equal(sd.get('c')!.data.buffer, sd.get('a')!.data.buffer);
  } finally {
    cleanup();
  }
});

test('readCheckpoint dispatches on content and unwraps containers', async () => {
  const off = await readCheckpoint(tiny('beit_official.pth'));
  assert.equal(off.description.format, 'pth-zip');
  assert.equal(off.description.container, 'model');
  assert.equal(off.stateDict.size, 75);
  const seg = await readCheckpoint(tiny('segmentor_mmseg.pth'));
  assert.equal(seg.description.container, 'state_dict');
  const st = await readCheckpoint(tiny('official_state_dict.safetensors'));
  assert.equal(st.description.format, 'safetensors');
  assert.equal(st.description.container, null);
  assertStateDictsEqual(st.stateDict, off.stateDict, true);
  const views = await readCheckpoint(local('views.pth'));
  assert.deepEqual(views.description.topLevelKeys, ['state_dict', 'meta']);

  const { dir, cleanup } = makeTempDir();
  try {
    // {'model': {'module': {'module.x': t}}} as DataParallel-wrapped training scripts write it
    const pkl = new PickleWriter()
      .proto(2)
      .emptyDict()
      .str('epoch')
      .int(3)
      .setitem()
      .str('model')
      .emptyDict()
      .str('module')
      .emptyDict()
      .str('module.x')
      .tensor('FloatStorage', '0', 2, 0, [2], [1])
      .setitem()
      .str('module.n')
      .int(1)
      .setitem()
      .setitem()
      .setitem()
      .stop()
      .bytes();
    const file = path.join(dir, 'wrapped.pth');
    fs.writeFileSync(file, buildTorchZip('wrapped', pkl, { 0: new Uint8Array(8) }));
    const r = await readCheckpoint(file);
    assert.deepEqual([...r.stateDict.keys()], ['x']);
    assert.equal(r.description.container, 'model.module');
    assert.equal(r.description.strippedPrefix, 'module.');
    assert.deepEqual(r.description.ignored, ['module.n']);
  } finally {
    cleanup();
  }
});

test('foreign objects can be read as inert placeholders on request; nothing runs either way', async () => {
  await assert.rejects(
    readCheckpoint(local('foreign_os_system.pth')),
    /refusing to load global 'posix\.system'.*nothing was executed/,
  );
  const r = await readCheckpoint(local('foreign_os_system.pth'), { opaqueGlobals: true });
  assert.deepEqual([...r.stateDict.keys()], ['w']);
  assert.deepEqual(r.description.topLevelKeys, ['state_dict', 'payload']);
  const obj = (await readPth(local('foreign_os_system.pth'), { opaqueGlobals: true })) as Map<string, unknown>;
  const payload = obj.get('payload') as OpaqueObject;
  assert.ok(payload instanceof OpaqueObject);
  assert.equal(payload.qualname, 'posix.system');
  assert.deepEqual(payload.args, ['echo this must never run']);
});

test('readCheckpoint names a truncated safetensors file as such', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const file = path.join(dir, 'cut.safetensors');
  fs.writeFileSync(file, fs.readFileSync(tiny('official_state_dict.safetensors')).subarray(0, 100));
  await assert.rejects(
    readCheckpoint(file),
    /cut\.safetensors: invalid safetensors file: header length \d+ runs past the end/,
  );
});

test('errors: missing file, truncated zip, wrong magic, foreign globals, broken archives', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const write = (name: string, data: Uint8Array | string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, data);
    return f;
  };
  const rejects = async (file: string, re: RegExp) => {
    await assert.rejects(readPth(file), (err: Error) => {
      assert.match(err.message, re);
      assert.ok(err.message.includes(file), `message names the file: ${err.message}`);
      return true;
    });
  };

  await rejects(path.join(dir, 'nope.pth'), /no such file/);
  await rejects(write('empty.pth', ''), /file is empty/);

  const official = fs.readFileSync(tiny('beit_official.pth'));
  await rejects(
    write('truncated.pth', official.subarray(0, Math.floor(official.length / 2))),
    /not a valid zip archive \(truncated or corrupt\?\)/,
  );
  await rejects(write('truncated-tail.pth', official.subarray(0, official.length - 10)), /not a valid zip archive/);

  await rejects(tiny('official_state_dict.safetensors'), /this is a safetensors file, not a torch\.save/);
  await rejects(
    write('image.pth', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0])),
    /not a PyTorch .* looks like a PNG image/,
  );
  await rejects(
    write('text.pth', 'hello world, not a checkpoint'),
    /unrecognised content \(first bytes: 68 65 6c 6c 6f/,
  );
  await rejects(write('bare.pkl', new PickleWriter().proto(2).int(1).stop().bytes()), /bare Python pickle/);

  await rejects(local('foreign_os_system.pth'), /refusing to load global 'posix\.system'/);
  const osSystem = new PickleWriter()
    .proto(2)
    .emptyDict()
    .str('x')
    .global('os', 'system')
    .mark()
    .str('id')
    .tuple()
    .reduce()
    .setitem()
    .stop()
    .bytes();
  await rejects(
    write('os.pth', buildTorchZip('os', osSystem, {})),
    /os\/data\.pkl: refusing to load global 'os\.system'/,
  );
  const numpy = new PickleWriter().proto(2).global('numpy.core.multiarray', 'scalar').stop().bytes();
  await rejects(
    write('np.pth', buildTorchZip('np', numpy, {})),
    /refusing to load global 'numpy\.core\.multiarray\.scalar'/,
  );

  const onePkl = new PickleWriter()
    .proto(2)
    .emptyDict()
    .str('w')
    .tensor('FloatStorage', '0', 2, 0, [2], [1])
    .setitem()
    .stop()
    .bytes();
  await rejects(
    write('nostorage.pth', buildTorchZip('a', onePkl, {})),
    /storage 0 is referenced by data\.pkl but a\/data\/0 is missing/,
  );
  await rejects(
    write('short-storage.pth', buildTorchZip('a', onePkl, { 0: new Uint8Array(4) })),
    /storage 0 has 4 bytes but torch\.FloatStorage of 2 elements needs 8/,
  );
  const outOfRange = new PickleWriter()
    .proto(2)
    .emptyDict()
    .str('w')
    .tensor('FloatStorage', '0', 2, 1, [2], [1])
    .setitem()
    .stop()
    .bytes();
  await rejects(
    write('oob.pth', buildTorchZip('a', outOfRange, { 0: new Uint8Array(8) })),
    /needs 3 elements but the storage holds 2/,
  );
  // Storage CRCs are checked on request (they cost a second pass over the data); data.pkl's always.
  const badCrc = write(
    'crc.pth',
    buildTorchZip('a', onePkl, {}, [{ name: 'a/data/0', data: new Uint8Array(8), crc: 1234 }]),
  );
  await assert.rejects(readPth(badCrc, { verifyCrc: true }), /crc\.pth: entry a\/data\/0: CRC-32 mismatch/);
  assert.ok((await readPth(badCrc)) instanceof Map);
  const pklCorrupt = buildZip([
    { name: 'a/data.pkl', data: onePkl, crc: 99 },
    { name: 'a/data/0', data: new Uint8Array(8) },
  ]);
  await rejects(write('pklcrc.pth', pklCorrupt), /entry a\/data\.pkl: CRC-32 mismatch/);
  await rejects(
    write(
      'bigendian.pth',
      buildTorchZip('a', onePkl, { 0: new Uint8Array(8) }, [{ name: 'a/byteorder', data: Buffer.from('big') }]),
    ),
    /big-endian/,
  );
  const double = new PickleWriter()
    .proto(2)
    .emptyDict()
    .str('w')
    .tensor('DoubleStorage', '0', 1, 0, [1], [1])
    .setitem()
    .stop()
    .bytes();
  await rejects(
    write('double.pth', buildTorchZip('a', double, { 0: new Uint8Array(8) })),
    /torch\.DoubleStorage, whose dtype is not supported/,
  );
  await rejects(
    write('nopkl.pth', buildZip([{ name: 'x/readme.txt', data: Buffer.from('hi') }])),
    /zip archive without <name>\/data\.pkl/,
  );
  const script = buildZip([
    { name: 'm/constants.pkl', data: Buffer.from('x') },
    { name: 'm/code/__torch__.py', data: Buffer.from('x') },
  ]);
  await rejects(write('script.pth', script), /TorchScript archive/);
});
