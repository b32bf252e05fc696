/**
 * A protocol-2 pickle emitter for what torch.save writes for a checkpoint: dicts, OrderedDicts,
 * lists, tuples, str, int, float, bool, None and tensors as
 * `torch._utils._rebuild_tensor_v2(persistent_id(storage), offset, size, stride, False, OrderedDict())`
 * with the persistent id `('storage', torch.<Type>Storage, key, 'cpu', numel)`.
 *
 * Written by hand because no npm library pickles (the ones that exist read pickles or emit
 * Python-object graphs without torch's persistent ids). Only protocol-2 opcodes that torch's
 * weights_only unpickler accepts are used (no memo, no protocol-4 opcodes), so
 * `torch.load(weights_only=True)` reads the result. One exception: a non-integer number is
 * written as BINFLOAT, which torch 1.13's weights_only unpickler does not know (plain torch.load
 * reads it); the converter's own meta holds no floats.
 */
import type { DType, HostTensor } from '../../common/host_tensor.js';

/** Storage class torch pickles for each dtype. */
export const STORAGE_CLASS: Record<DType, string> = {
  float32: 'FloatStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

/** A value the writer can pickle; Maps become OrderedDicts, plain objects dicts, arrays lists. */
export type PickleValue =
  | string
  | number
  | boolean
  | null
  | PickleValue[]
  | { tuple: PickleValue[] }
  | Map<string, PickleValue | HostTensor>
  | { [key: string]: PickleValue };

/** The tensors met while pickling, in storage-key order ('0', '1', ...). */
export interface PickledTensors {
  pickle: Uint8Array;
  storages: HostTensor[];
}

const OP = {
  PROTO: 0x80,
  STOP: 0x2e,
  MARK: 0x28,
  EMPTY_DICT: 0x7d,
  EMPTY_LIST: 0x5d,
  EMPTY_TUPLE: 0x29,
  SETITEMS: 0x75,
  APPENDS: 0x65,
  TUPLE: 0x74,
  GLOBAL: 0x63,
  REDUCE: 0x52,
  BINPERSID: 0x51,
  BINUNICODE: 0x58,
  BININT1: 0x4b,
  BININT2: 0x4d,
  BININT: 0x4a,
  LONG1: 0x8a,
  BINFLOAT: 0x47,
  NONE: 0x4e,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
} as const;

class Emitter {
  private chunks: Buffer[] = [];
  readonly storages: HostTensor[] = [];

  op(code: number): void {
    this.chunks.push(Buffer.from([code]));
  }
  raw(b: Buffer): void {
    this.chunks.push(b);
  }

  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    const head = Buffer.alloc(5);
    head[0] = OP.BINUNICODE;
    head.writeUInt32LE(b.length, 1);
    this.raw(head);
    this.raw(b);
  }

  int(v: number): void {
    if (!Number.isSafeInteger(v)) throw new Error(`pickle: ${v} is not a safe integer`);
    if (v >= 0 && v < 0x100) {
      this.raw(Buffer.from([OP.BININT1, v]));
      return;
    }
    if (v >= 0 && v < 0x10000) {
      const b = Buffer.alloc(3);
      b[0] = OP.BININT2;
      b.writeUInt16LE(v, 1);
      this.raw(b);
      return;
    }
    if (v >= -0x80000000 && v < 0x80000000) {
      const b = Buffer.alloc(5);
      b[0] = OP.BININT;
      b.writeInt32LE(v, 1);
      this.raw(b);
      return;
    }
    // LONG1: little-endian two's complement, 8 bytes is enough for any safe integer.
    const b = Buffer.alloc(10);
    b[0] = OP.LONG1;
    b[1] = 8;
    b.writeBigInt64LE(BigInt(v), 2);
    this.raw(b);
  }

  float(v: number): void {
    const b = Buffer.alloc(9);
    b[0] = OP.BINFLOAT;
    b.writeDoubleBE(v, 1);
    this.raw(b);
  }

  global(module: string, name: string): void {
    this.op(OP.GLOBAL);
    this.raw(Buffer.from(`${module}\n${name}\n`, 'latin1'));
  }

  tuple(items: (() => void)[]): void {
    if (items.length === 0) {
      this.op(OP.EMPTY_TUPLE);
      return;
    }
    this.op(OP.MARK);
    for (const item of items) item();
    this.op(OP.TUPLE);
  }

  orderedDict(): void {
    this.global('collections', 'OrderedDict');
    this.op(OP.EMPTY_TUPLE);
    this.op(OP.REDUCE);
  }

  tensor(t: HostTensor): void {
    const key = String(this.storages.length);
    this.storages.push(t);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const stride: number[] = [];
    let s = 1;
    for (let i = t.shape.length - 1; i >= 0; i--) {
      stride[i] = s;
      s *= t.shape[i]!;
    }
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.tuple([
      () => {
        this.tuple([
          () => this.str('storage'),
          () => this.global('torch', STORAGE_CLASS[t.dtype]),
          () => this.str(key),
          () => this.str('cpu'),
          () => this.int(numel),
        ]);
        this.op(OP.BINPERSID);
      },
      () => this.int(0),
      () => this.tuple(t.shape.map((d) => () => this.int(d))),
      () => this.tuple(stride.map((d) => () => this.int(d))),
      () => this.op(OP.NEWFALSE),
      () => this.orderedDict(),
    ]);
    this.op(OP.REDUCE);
  }

  value(v: PickleValue | HostTensor, path: string): void {
    if (v === null) this.op(OP.NONE);
    else if (typeof v === 'boolean') this.op(v ? OP.NEWTRUE : OP.NEWFALSE);
    else if (typeof v === 'string') this.str(v);
    else if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new Error(`pickle: ${path} is ${v}`);
      if (Number.isInteger(v)) this.int(v);
      else this.float(v);
    } else if (Array.isArray(v)) {
      this.op(OP.EMPTY_LIST);
      if (v.length) {
        this.op(OP.MARK);
        v.forEach((x, i) => this.value(x, `${path}[${i}]`));
        this.op(OP.APPENDS);
      }
    } else if (v instanceof Map) {
      this.orderedDict();
      this.items([...v], path);
    } else if (isTensorLike(v)) {
      this.tensor(v);
    } else if ('tuple' in v && Array.isArray(v.tuple)) {
      const items = v.tuple as PickleValue[];
      this.tuple(items.map((x, i) => () => this.value(x, `${path}[${i}]`)));
    } else {
      this.op(OP.EMPTY_DICT);
      this.items(Object.entries(v), path);
    }
  }

  items(entries: [string, PickleValue | HostTensor][], path: string): void {
    if (!entries.length) return;
    this.op(OP.MARK);
    for (const [k, x] of entries) {
      this.str(k);
      this.value(x, `${path}.${k}`);
    }
    this.op(OP.SETITEMS);
  }

  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

function isTensorLike(v: object): v is HostTensor {
  return 'dtype' in v && 'shape' in v && 'data' in v && (v as HostTensor).data instanceof Uint8Array;
}

/** Pickles `root` (protocol 2) and returns the bytes and the tensors, numbered as storage keys. */
export function pickleCheckpoint(root: PickleValue): PickledTensors {
  const e = new Emitter();
  e.raw(Buffer.from([OP.PROTO, 2]));
  e.value(root, 'checkpoint');
  e.op(OP.STOP);
  return { pickle: e.bytes(), storages: e.storages };
}
