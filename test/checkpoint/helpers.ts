/** Shared helpers for the checkpoint tests: fixture paths, temp dirs, tensor comparison, zip/pickle builders. */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import type { HostTensor } from '../../src/common/host_tensor.js';

/** Repository root: this file is compiled to dist/test/checkpoint/helpers.js. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const tinyPublic = path.join(repoRoot, 'test', 'fixtures', 'tiny_public');
export const localFixtures = path.resolve(repoRoot, 'test', 'fixtures', 'checkpoint');

export function tiny(name: string): string {
  return path.join(tinyPublic, name);
}

export function local(name: string): string {
  return path.join(localFixtures, name);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return (
    a.byteLength === b.byteLength &&
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    ) === 0
  );
}

/** Asserts two state dicts have the same keys (in the same order if `ordered`), dtypes, shapes and bytes. */
export function assertStateDictsEqual(
  actual: Map<string, HostTensor>,
  expected: Map<string, HostTensor>,
  ordered = false,
  opts: { expectedZeroDimAsOne?: boolean } = {},
): void {
  if (ordered) assert.deepEqual([...actual.keys()], [...expected.keys()]);
  else assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [k, e] of expected) {
    const a = actual.get(k)!;
    assert.equal(a.dtype, e.dtype, `${k}: dtype`);
    // The shared fixture safetensors files store torch's 0-d tensors (BN num_batches_tracked) as shape [1].
    const shape =
      opts.expectedZeroDimAsOne && a.shape.length === 0 && e.shape.length === 1 && e.shape[0] === 1 ? [] : e.shape;
    assert.deepEqual(a.shape, shape, `${k}: shape`);
    assert.ok(bytesEqual(a.data, e.data), `${k}: bytes differ`);
  }
}

export function f32Tensor(values: number[], shape: number[]): HostTensor {
  return { dtype: 'float32', shape, data: new Uint8Array(Float32Array.from(values).buffer) };
}

// ---------------------------------------------------------------------------------------------
// A minimal zip writer (STORED entries only), enough to hand-build torch-like archives in tests.

export interface ZipEntryInput {
  name: string;
  data: Uint8Array;
  /** Override the CRC written (to simulate corruption). */
  crc?: number;
  /** Store the entry deflated (method 8) instead of STORED. */
  deflate?: boolean;
  /** Override the uncompressed size written in both headers. */
  uncompressedSize?: number;
  /** Set the UTF-8 file name flag (without it, readers decode names as CP437). */
  utf8?: boolean;
}

export function buildZip(entries: ZipEntryInput[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const crc = e.crc ?? zlib.crc32(e.data) >>> 0;
    const body = e.deflate ? zlib.deflateRawSync(e.data) : Buffer.from(e.data);
    const usize = e.uncompressedSize ?? e.data.byteLength;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(e.utf8 ? 0x800 : 0, 6);
    lh.writeUInt16LE(e.deflate ? 8 : 0, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(body.byteLength, 18);
    lh.writeUInt32LE(usize, 22);
    lh.writeUInt16LE(name.length, 26);
    lh.writeUInt16LE(0, 28);
    const local = Buffer.concat([lh, name, body]);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(e.utf8 ? 0x800 : 0, 8);
    ch.writeUInt16LE(e.deflate ? 8 : 0, 10);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(body.byteLength, 20);
    ch.writeUInt32LE(usize, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(offset, 42);
    centrals.push(Buffer.concat([ch, name]));
    locals.push(local);
    offset += local.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

// ---------------------------------------------------------------------------------------------
// A tiny pickle emitter for hand-built test pickles (protocol 2 opcodes).

export class PickleWriter {
  private parts: number[] = [];
  op(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }
  proto(v = 2): this {
    return this.op(0x80, v);
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    if (b.length < 256)
      this.op(0x8c, b.length); // SHORT_BINUNICODE
    else {
      this.op(0x58);
      this.u32(b.length);
    }
    return this.op(...b);
  }
  binunicode(s: string): this {
    const b = Buffer.from(s, 'utf8');
    this.op(0x58);
    this.u32(b.length);
    return this.op(...b);
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return this.op(...b);
  }
  int(v: number): this {
    if (v >= 0 && v < 256) return this.op(0x4b, v);
    if (v >= 0 && v < 65536) return this.op(0x4d, v & 0xff, v >> 8);
    if (v >= -(2 ** 31) && v < 2 ** 31) {
      const b = Buffer.alloc(4);
      b.writeInt32LE(v);
      return this.op(0x4a, ...b);
    }
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(v));
    return this.op(0x8a, 8, ...b); // LONG1
  }
  float(v: number): this {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v);
    return this.op(0x47, ...b);
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...Buffer.from(`${module}\n${name}\n`, 'latin1'));
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(): this {
    return this.op(0x74);
  }
  emptyDict(): this {
    return this.op(0x7d);
  }
  emptyTuple(): this {
    return this.op(0x29);
  }
  setitem(): this {
    return this.op(0x73);
  }
  setitems(): this {
    return this.op(0x75);
  }
  emptyList(): this {
    return this.op(0x5d);
  }
  append(): this {
    return this.op(0x61);
  }
  appends(): this {
    return this.op(0x65);
  }
  newobj(): this {
    return this.op(0x81);
  }
  build(): this {
    return this.op(0x62);
  }
  newtrue(): this {
    return this.op(0x88);
  }
  binput(i: number): this {
    return this.op(0x71, i);
  }
  binget(i: number): this {
    return this.op(0x68, i);
  }
  /** Python 3 bytes as protocol 2 writes them: _codecs.encode(latin-1 text, 'latin1'). */
  pybytes(b: Uint8Array): this {
    return this.global('_codecs', 'encode')
      .mark()
      .str(Buffer.from(b).toString('latin1'))
      .str('latin1')
      .tuple()
      .reduce();
  }
  reduce(): this {
    return this.op(0x52);
  }
  binpersid(): this {
    return this.op(0x51);
  }
  newfalse(): this {
    return this.op(0x89);
  }
  none(): this {
    return this.op(0x4e);
  }
  stop(): this {
    return this.op(0x2e);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }

  /**
   * Emits torch._utils._rebuild_tensor_v2(storage(pid), offset, size, stride, False, OrderedDict())
   * with pid = ('storage', torch.<storageType>, key, 'cpu', numel).
   */
  tensor(storageType: string, key: string, numel: number, offset: number, size: number[], stride: number[]): this {
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.mark();
    this.mark().str('storage').global('torch', storageType).str(key).str('cpu').int(numel).tuple().binpersid();
    this.int(offset);
    this.mark();
    for (const s of size) this.int(s);
    this.tuple();
    this.mark();
    for (const s of stride) this.int(s);
    this.tuple();
    this.newfalse();
    this.global('collections', 'OrderedDict').emptyTuple().reduce();
    this.tuple();
    return this.reduce();
  }
}

/** A torch-like zip checkpoint: `<name>/data.pkl`, `<name>/data/<key>` storages, `<name>/version`. */
export function buildTorchZip(
  name: string,
  pickle: Uint8Array,
  storages: Record<string, Uint8Array>,
  extra: ZipEntryInput[] = [],
): Buffer {
  return buildZip([
    { name: `${name}/data.pkl`, data: pickle },
    ...Object.entries(storages).map(([k, data]) => ({ name: `${name}/data/${k}`, data })),
    { name: `${name}/version`, data: Buffer.from('3\n') },
    ...extra,
  ]);
}
