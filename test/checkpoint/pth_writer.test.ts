/**
 * Export to PyTorch: the torch.save-format writer, read back by the project's .pth reader bit for
 * bit, laid out as torch lays it out, and (where Debian's python3-torch is installed) loaded by
 * torch.load(weights_only=True).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HostTensor } from '../../src/common/host_tensor.js';
import { convertFile } from '../../src/checkpoint/convert/convert_file.js';
import { readPthContent } from '../../src/checkpoint/formats/pth.js';
import { readCheckpoint } from '../../src/checkpoint/read_checkpoint.js';
import { readSafetensors } from '../../src/checkpoint/formats/safetensors.js';
import { writeTorchCheckpoint } from '../../src/checkpoint/formats/pth_writer.js';
import { makeTempDir } from '../temp.js';
import { assertStateDictsEqual, repoRoot, tiny } from './helpers.js';

function bytesOf(values: number[], ctor: { new (v: number[]): ArrayBufferView }): Uint8Array {
  const a = new ctor(values);
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** One tensor of every dtype the writer supports, plus a 0-d and an empty one. */
function everyDtype(): Map<string, HostTensor> {
  return new Map<string, HostTensor>([
    ['f32', { dtype: 'float32', shape: [2, 3], data: bytesOf([1.5, -2, 3.25, 0, -0.125, 1e-7], Float32Array) }],
    ['f16', { dtype: 'float16', shape: [3], data: bytesOf([0x3c00, 0xc000, 0x3555], Uint16Array) }],
    ['bf16', { dtype: 'bfloat16', shape: [2], data: bytesOf([0x3f80, 0xbfc0], Uint16Array) }],
    ['i64', { dtype: 'int64', shape: [], data: new Uint8Array(new BigInt64Array([123456789012n]).buffer) }],
    ['i32', { dtype: 'int32', shape: [1, 2], data: bytesOf([-7, 2 ** 30], Int32Array) }],
    ['u8', { dtype: 'uint8', shape: [4], data: Uint8Array.from([0, 1, 254, 255]) }],
    ['bool', { dtype: 'bool', shape: [3], data: Uint8Array.from([1, 0, 1]) }],
    ['empty', { dtype: 'float32', shape: [0, 4], data: new Uint8Array(0) }],
  ]);
}

const META = {
  small: 7,
  mid: 300,
  big: 70000,
  negative: -5,
  huge: 2 ** 40,
  ratio: 0.1,
  name: 'Grüße',
  yes: true,
  no: false,
  none: null,
  list: [1, 'two', [3]],
  pair: { tuple: [640, 640] },
  nested: { classes: { tuple: ['wall', 'sky'] } },
};

/** Walks the zip's local headers: names in order, and each entry's data offset. */
function localEntries(buf: Buffer): { name: string; dataOffset: number; extra: Buffer }[] {
  const out: { name: string; dataOffset: number; extra: Buffer }[] = [];
  let at = 0;
  while (buf.readUInt32LE(at) === 0x04034b50) {
    assert.equal(buf.readUInt16LE(at + 8), 0, 'entries are STORED');
    const size = buf.readUInt32LE(at + 18);
    const n = buf.readUInt16LE(at + 26),
      e = buf.readUInt16LE(at + 28);
    const name = buf.subarray(at + 30, at + 30 + n).toString('utf8');
    out.push({ name, dataOffset: at + 30 + n + e, extra: buf.subarray(at + 30 + n, at + 30 + n + e) });
    at += 30 + n + e + size;
  }
  return out;
}

test('convert model.safetensors model.pth: {meta, state_dict}, read back bit for bit', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const src = tiny('segmentor_state_dict.safetensors');
  const dst = path.join(dir, 'model.pth');
  const s = await convertFile(src, dst, { meta: { dataset_meta: { classes: { tuple: ['a', 'b', 'c', 'd', 'e'] } } } });
  assert.equal(s.format, 'pth');
  const back = await readCheckpoint(dst);
  assert.equal(back.description.format, 'pth-zip');
  assert.equal(back.description.container, 'state_dict');
  assert.deepEqual(back.description.topLevelKeys, ['meta', 'state_dict']);
  assertStateDictsEqual(back.stateDict, readSafetensors(src).tensors);
  const { value } = await readPthContent(dst);
  const meta = (value as Map<string, unknown>).get('meta') as Map<string, unknown>;
  assert.equal(meta.get('converter'), 'beitseg convert');
  assert.equal(meta.get('layout'), 'mmseg-segmentor');
  assert.deepEqual((meta.get('dataset_meta') as Map<string, unknown>).get('classes'), ['a', 'b', 'c', 'd', 'e']);
  assert.deepEqual(fs.readdirSync(dir), ['model.pth'], 'no temporary file left behind');
});

test('the zip is laid out as torch.save lays it out: archive/ records, STORED, data 64-byte aligned', (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const file = path.join(dir, 'x.pth');
  writeTorchCheckpoint(file, everyDtype(), {});
  const entries = localEntries(fs.readFileSync(file));
  assert.deepEqual(
    entries.map((e) => e.name),
    [
      'archive/data.pkl',
      'archive/byteorder',
      ...[...everyDtype().keys()].map((_, i) => `archive/data/${i}`),
      'archive/version',
    ],
  );
  for (const e of entries) {
    assert.equal(e.dataOffset % 64, 0, `${e.name} data at ${e.dataOffset}`);
    assert.equal(e.extra.subarray(0, 2).toString('latin1'), 'FB');
    assert.equal(e.extra.readUInt16LE(2), e.extra.length - 4);
  }
  const buf = fs.readFileSync(file);
  assert.equal(buf.subarray(entries.at(-1)!.dataOffset, entries.at(-1)!.dataOffset + 2).toString(), '3\n');
});

test('every dtype, 0-d and empty tensors, and meta values of every kind survive the round trip', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const file = path.join(dir, 'all.pth');
  writeTorchCheckpoint(file, everyDtype(), META);
  const back = await readCheckpoint(file);
  assertStateDictsEqual(back.stateDict, everyDtype(), true);
  const meta = ((await readPthContent(file)).value as Map<string, unknown>).get('meta') as Map<string, unknown>;
  const plain = (v: unknown): unknown =>
    v instanceof Map ? Object.fromEntries([...v].map(([k, x]) => [k, plain(x)])) : Array.isArray(v) ? v.map(plain) : v;
  assert.deepEqual(plain(meta), {
    small: 7,
    mid: 300,
    big: 70000,
    negative: -5,
    huge: 2 ** 40,
    ratio: 0.1,
    name: 'Grüße',
    yes: true,
    no: false,
    none: null,
    list: [1, 'two', [3]],
    pair: [640, 640],
    nested: { classes: ['wall', 'sky'] },
  });
});

test('the output is written atomically: an existing file is kept, a missing folder is named', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const dst = path.join(dir, 'keep.pth');
  fs.writeFileSync(dst, 'keep me');
  await assert.rejects(convertFile(tiny('segmentor_state_dict.safetensors'), dst), /already exists/);
  assert.equal(fs.readFileSync(dst, 'utf8'), 'keep me');
  const missing = path.join(dir, 'no', 'such', 'x.pth');
  assert.throws(() => writeTorchCheckpoint(missing, everyDtype(), {}), /output directory .*no.* does not exist/);
  assert.throws(
    () => writeTorchCheckpoint(path.join(dir, 'nan.pth'), everyDtype(), { bad: Number.NaN }),
    /checkpoint\.meta\.bad is NaN/,
  );
  assert.deepEqual(fs.readdirSync(dir).sort(), ['keep.pth']);
});

/** Whether Debian's python3-torch is installed (found without importing it: importing takes seconds). */
function hasPythonTorch(): boolean {
  const find = 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("torch") else 1)';
  return spawnSync('/usr/bin/python3', ['-c', find], { timeout: 30_000 }).status === 0;
}

const TORCH_LOAD = `
import hashlib, json, sys, torch
c = torch.load(sys.argv[1], weights_only=True)
def raw(t):
    t = t.contiguous()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.view(torch.int16)
    return t.numpy().tobytes()
sd = c['state_dict']
print(json.dumps({
    'top': list(c.keys()), 'ordered': type(sd).__name__, 'meta': c['meta'],
    'tensors': {k: [str(v.dtype), list(v.shape), hashlib.sha256(raw(v)).hexdigest()] for k, v in sd.items()},
}))
`;

const TORCH_DTYPE: Record<string, string> = {
  float32: 'torch.float32',
  float16: 'torch.float16',
  bfloat16: 'torch.bfloat16',
  int64: 'torch.int64',
  int32: 'torch.int32',
  uint8: 'torch.uint8',
  bool: 'torch.bool',
};

test("torch.load(weights_only=True) of Debian's python3-torch reads the same values", async (t) => {
  if (!hasPythonTorch()) {
    t.skip('python3-torch is not installed (apt-get install -y python3-torch): torch.load not checked');
    return;
  }
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const tensors = new Map([...readSafetensors(tiny('segmentor_state_dict.safetensors')).tensors, ...everyDtype()]);
  const file = path.join(dir, 'for_torch.pth');
  // No float in meta: torch 1.13's weights_only unpickler has no BINFLOAT opcode (see pickle_writer.ts).
  const { ratio: _ratio, ...meta } = META;
  writeTorchCheckpoint(file, tensors, meta);
  const r = spawnSync('/usr/bin/python3', ['-c', TORCH_LOAD, file], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `torch.load failed: ${r.stderr}`);
  const got = JSON.parse(r.stdout) as {
    top: string[];
    ordered: string;
    meta: Record<string, unknown>;
    tensors: Record<string, [string, number[], string]>;
  };
  assert.deepEqual(got.top, ['meta', 'state_dict']);
  assert.equal(got.ordered, 'OrderedDict');
  assert.deepEqual(got.meta, { ...meta, pair: [640, 640], nested: { classes: ['wall', 'sky'] } });
  assert.deepEqual(Object.keys(got.tensors), [...tensors.keys()]);
  for (const [k, v] of tensors) {
    const sha = crypto.createHash('sha256').update(v.data).digest('hex');
    assert.deepEqual(got.tensors[k], [TORCH_DTYPE[v.dtype], v.shape, sha], k);
  }
});

const PEER_FORWARD = `
import sys, torch
sys.path.insert(0, sys.argv[3])
from beit_upernet import BEiTUperNet, make_config
ckpt = torch.load(sys.argv[1], weights_only=True)
io = torch.load(sys.argv[2], weights_only=True)['state_dict']
model = BEiTUperNet(make_config('tiny'))
model.load_state_dict(ckpt['state_dict'], strict=True)
model.eval()
with torch.no_grad():
    logits = model.whole_inference(io['input'])
print((logits - io['expected']).abs().max().item())
`;

test("the exported .pth drives mmseg's model in PyTorch (bench/peer, strict load) to mmseg's logits", async (t) => {
  if (!hasPythonTorch()) {
    t.skip('python3-torch is not installed (apt-get install -y python3-torch): PyTorch forward not checked');
    return;
  }
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const model = path.join(dir, 'model.pth');
  await convertFile(tiny('segmentor_state_dict.safetensors'), model);
  const golden = readSafetensors(tiny('tensors.safetensors')).tensors;
  const io = path.join(dir, 'io.pth');
  writeTorchCheckpoint(
    io,
    new Map([
      ['input', golden.get('input.image')!],
      ['expected', golden.get('seg.logits_whole')!],
    ]),
    {},
  );
  const r = spawnSync('/usr/bin/python3', ['-c', PEER_FORWARD, model, io, path.join(repoRoot, 'bench', 'peer')], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  assert.equal(r.status, 0, r.stderr);
  const diff = Number(r.stdout.trim());
  assert.ok(diff <= 1e-4, `max |logits - mmseg's| = ${diff}`);
});
