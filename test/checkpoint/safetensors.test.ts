import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensors, writeSafetensors, parseSafetensors } from '../../src/checkpoint/formats/safetensors.js';
import type { HostTensor } from '../../src/common/host_tensor.js';
import { makeTempDir } from '../temp.js';
import { assertStateDictsEqual, bytesEqual, tiny } from './helpers.js';

function sampleTensors(): Map<string, HostTensor> {
  const m = new Map<string, HostTensor>();
  m.set('w.float32', {
    dtype: 'float32',
    shape: [2, 3],
    data: new Uint8Array(Float32Array.from([1, -2, 3.5, 0, 1e-30, -Infinity]).buffer),
  });
  m.set('a.float16', {
    dtype: 'float16',
    shape: [3],
    data: new Uint8Array(Uint16Array.from([0x3c00, 0xc000, 0x7bff]).buffer),
  });
  m.set('b.bfloat16', {
    dtype: 'bfloat16',
    shape: [2, 1],
    data: new Uint8Array(Uint16Array.from([0x3f80, 0xbf80]).buffer),
  });
  m.set('idx.int64', {
    dtype: 'int64',
    shape: [2],
    data: new Uint8Array(BigInt64Array.from([-(2n ** 40n), 7n]).buffer),
  });
  m.set('c.int32', { dtype: 'int32', shape: [1, 2], data: new Uint8Array(Int32Array.from([-3, 2147483647]).buffer) });
  m.set('img.uint8', { dtype: 'uint8', shape: [5], data: Uint8Array.from([0, 1, 127, 128, 255]) });
  m.set('mask.bool', { dtype: 'bool', shape: [3], data: Uint8Array.from([1, 0, 1]) });
  m.set('scalar', { dtype: 'float32', shape: [], data: new Uint8Array(Float32Array.from([42]).buffer) });
  m.set('empty', { dtype: 'float32', shape: [0, 4], data: new Uint8Array(0) });
  return m;
}

test('round trip of all 7 dtypes, 0-d and empty tensors, with metadata', () => {
  const { dir, cleanup } = makeTempDir();
  try {
    const file = path.join(dir, 'all.safetensors');
    const tensors = sampleTensors();
    const metadata = { format: 'pt', note: 'ünïcode "quoted"' };
    writeSafetensors(file, tensors, metadata);
    const back = readSafetensors(file);
    assertStateDictsEqual(back.tensors, tensors);
    assert.deepEqual(back.metadata, metadata);
    // Only the output file is left in the directory (the temp file was renamed).
    assert.deepEqual(fs.readdirSync(dir), ['all.safetensors']);
  } finally {
    cleanup();
  }
});

test('writer layout matches the reference library: header padded to 8 with spaces, dtype-then-name order', () => {
  const { dir, cleanup } = makeTempDir();
  try {
    const file = path.join(dir, 'o.safetensors');
    writeSafetensors(file, Object.fromEntries(sampleTensors()), { z: '1', a: '2' });
    const buf = fs.readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const headerText = buf.subarray(8, 8 + n).toString('utf8');
    assert.match(headerText, /^\{"__metadata__":\{"a":"2","z":"1"\},/);
    assert.match(headerText, /\} *$/);
    const header = JSON.parse(headerText) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    const order = Object.keys(header).filter((k) => k !== '__metadata__');
    // Reference order: descending dtype rank (I64 > F32 > I32 > BF16 > F16 > U8 > BOOL), then name.
    assert.deepEqual(order, [
      'idx.int64',
      'empty',
      'scalar',
      'w.float32',
      'c.int32',
      'b.bfloat16',
      'a.float16',
      'img.uint8',
      'mask.bool',
    ]);
    // Data offsets follow header order and every tensor is aligned to its element size.
    let cursor = 0;
    for (const k of order) {
      assert.equal(header[k]!.data_offsets[0], cursor);
      cursor = header[k]!.data_offsets[1];
    }
    assert.equal(8 + n + cursor, buf.length);
  } finally {
    cleanup();
  }
});

test('writer reproduces the format byte for byte on a small example', () => {
  const { dir, cleanup } = makeTempDir();
  try {
    const file = path.join(dir, 'x.safetensors');
    writeSafetensors(file, {
      'attn.0': {
        dtype: 'float32',
        shape: [1, 2, 3],
        data: new Uint8Array(Float32Array.from([0, 1, 2, 3, 4, 5]).buffer),
      },
    });
    const json = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
    const expected = Buffer.concat([
      Buffer.from([padded.length, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from(padded),
      Buffer.from(Float32Array.from([0, 1, 2, 3, 4, 5]).buffer),
    ]);
    assert.ok(bytesEqual(fs.readFileSync(file), expected));
    // An empty dict is "{}" padded to 8 bytes.
    writeSafetensors(path.join(dir, 'e.safetensors'), new Map());
    assert.ok(
      bytesEqual(
        fs.readFileSync(path.join(dir, 'e.safetensors')),
        Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 32, 32, 32, 32, 32, 32]),
      ),
    );
  } finally {
    cleanup();
  }
});

test('reads the shared fixtures with zero-copy views into one buffer', () => {
  const { tensors, metadata } = readSafetensors(tiny('tensors.safetensors'));
  assert.equal(metadata.fixture, 'tiny_public');
  assert.equal(tensors.get('input.image_rgb_u8')!.dtype, 'uint8');
  assert.deepEqual(tensors.get('input.image')!.shape, [1, 3, 64, 64]);
  const buffers = new Set([...tensors.values()].map((t) => t.data.buffer));
  assert.equal(buffers.size, 1, 'all tensors view the same file buffer');
  const conv = readSafetensors(tiny('converted_beit2mmseg.safetensors')).tensors;
  assert.equal(conv.get('layers.0.attn.relative_position_index')!.dtype, 'int64');
  // float32 views are aligned, so a Float32Array can be taken without copying.
  const t = conv.get('cls_token')!;
  assert.equal(t.data.byteOffset % 4, 0);
});

function writeRaw(
  dir: string,
  name: string,
  header: string | Buffer,
  data: Buffer = Buffer.alloc(0),
  lengthOverride?: bigint,
): string {
  const h = typeof header === 'string' ? Buffer.from(header) : header;
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(h.length));
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.concat([len, h, data]));
  return file;
}

test('corrupt files give errors naming the file and the key', () => {
  const { dir, cleanup } = makeTempDir();
  try {
    const cases: [string, string | Buffer, Buffer, bigint | undefined, RegExp][] = [
      ['huge-length', '{}', Buffer.alloc(0), 1n << 40n, /header length .* larger than the 100 MB limit/],
      ['past-end', '{}', Buffer.alloc(0), 1000n, /header length 1000 runs past the end/],
      ['not-json', '{"a": [1,', Buffer.alloc(0), undefined, /header is not valid JSON/],
      ['not-brace', '[1,2]   ', Buffer.alloc(0), undefined, /does not start with "\{"/],
      ['bad-utf8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), Buffer.alloc(0), undefined, /not valid UTF-8/],
      [
        'bad-dtype',
        '{"t":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}',
        Buffer.alloc(4),
        undefined,
        /tensor "t": unknown dtype "Q7"/,
      ],
      [
        'f64',
        '{"t":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}',
        Buffer.alloc(8),
        undefined,
        /tensor "t": dtype F64 is not supported/,
      ],
      [
        'oob',
        '{"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}',
        Buffer.alloc(8),
        undefined,
        /tensor "t": data_offsets \[0, 16\] run past the 8 data bytes/,
      ],
      [
        'size-mismatch',
        '{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}',
        Buffer.alloc(8),
        undefined,
        /tensor "t": data_offsets \[0, 8\] hold 8 bytes but shape \[3\] of F32 needs 12/,
      ],
      [
        'bad-shape',
        '{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}',
        Buffer.alloc(4),
        undefined,
        /tensor "t": "shape" must be a list of non-negative integers/,
      ],
      [
        'gap',
        '{"t":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}',
        Buffer.alloc(4),
        undefined,
        /tensor "t": .* leave a gap after byte 0/,
      ],
      [
        'overlap',
        '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}',
        Buffer.alloc(3),
        undefined,
        /tensor "b": .* overlap the previous tensor/,
      ],
      [
        'trailing',
        '{"t":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}',
        Buffer.alloc(5),
        undefined,
        /tensors cover 2 bytes but the file has 5 data bytes/,
      ],
      ['bad-meta', '{"__metadata__":{"k":1}}', Buffer.alloc(0), undefined, /"__metadata__" entry "k" is not a string/],
    ];
    for (const [name, header, data, len, re] of cases) {
      const file = writeRaw(dir, `${name}.safetensors`, header, data, len);
      assert.throws(
        () => readSafetensors(file),
        (err: Error) => {
          assert.match(err.message, re, name);
          assert.ok(err.message.startsWith(file), `${name}: message names the file: ${err.message}`);
          return true;
        },
      );
    }
    const short = path.join(dir, 'short.safetensors');
    fs.writeFileSync(short, Buffer.from([1, 2, 3]));
    assert.throws(() => readSafetensors(short), /short.safetensors: invalid safetensors file: file is 3 bytes/);
    assert.throws(() => readSafetensors(path.join(dir, 'missing.safetensors')), /missing.safetensors: no such file/);
  } finally {
    cleanup();
  }
});

test('truncated safetensors file is reported as such', () => {
  const { dir, cleanup } = makeTempDir();
  try {
    const src = fs.readFileSync(tiny('official_state_dict.safetensors'));
    const file = path.join(dir, 'cut.safetensors');
    fs.writeFileSync(file, src.subarray(0, src.length - 100));
    assert.throws(
      () => readSafetensors(file),
      /cut.safetensors: invalid safetensors file: tensor ".*": data_offsets .* run past .* \(truncated\?\)/,
    );
  } finally {
    cleanup();
  }
});

test('writer validates input and never leaves a partial file', () => {
  const { dir, cleanup } = makeTempDir();
  try {
    const file = path.join(dir, 'out.safetensors');
    fs.writeFileSync(file, 'previous content');
    const bad = {
      ok: { dtype: 'float32', shape: [2], data: new Uint8Array(8) },
      broken: { dtype: 'float32', shape: [3], data: new Uint8Array(8) },
    } as Record<string, HostTensor>;
    assert.throws(
      () => writeSafetensors(file, bad),
      /out.safetensors: tensor "broken": 8 data bytes but shape \[3\] of float32 needs 12/,
    );
    assert.throws(
      () => writeSafetensors(file, { __metadata__: { dtype: 'uint8', shape: [0], data: new Uint8Array(0) } }),
      /reserved/,
    );
    assert.equal(fs.readFileSync(file, 'utf8'), 'previous content');
    assert.throws(
      () => writeSafetensors(path.join(dir, 'no', 'such', 'dir.safetensors'), {}),
      /output directory .* does not exist/,
    );
    // Overwrite works and is complete.
    writeSafetensors(file, { ok: bad.ok! });
    assert.equal(readSafetensors(file).tensors.size, 1);
    assert.deepEqual(fs.readdirSync(dir), ['out.safetensors']);
  } finally {
    cleanup();
  }
});

test('parseSafetensors accepts in-memory bytes', () => {
  const buf = fs.readFileSync(tiny('official_state_dict.safetensors'));
  const { tensors } = parseSafetensors(buf);
  assert.equal(tensors.size, 75);
});
