/**
 * Seeded case generator for the checkpoint fuzz suite: mutations of the fixture .pth and
 * .safetensors files (raw bytes, truncation, the pickle inside a re-built zip, the safetensors
 * header) and hand-built hostile pickles (random opcode soup, cycles, deep nesting, long
 * integers, expanded views, oversized storages). The same seed always gives the same cases;
 * fuzz.test.ts runs a couple hundred, `npm run fuzz:checkpoint` as many as asked.
 */
import * as fs from 'node:fs';
import { buildTorchZip, buildZip, local, PickleWriter, tiny, type ZipEntryInput } from './helpers.js';
import { prng as rng } from '../tensor/ref.js';

export interface FuzzCase {
  name: string;
  ext: 'pth' | 'safetensors';
  bytes: Uint8Array;
}

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

/** Values that tend to break length and index fields. */
const INTERESTING_U32 = [
  0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
];

/** Small random edits of a byte string: bit flips, byte sets, interesting 32-bit values, chunk copies and cuts. */
export function mutateBytes(r: Rand, src: Uint8Array, edits = 1 + int(r, 6)): Uint8Array {
  let b = Uint8Array.from(src);
  for (let e = 0; e < edits && b.length > 0; e++) {
    const at = int(r, b.length);
    switch (int(r, 6)) {
      case 0:
        b[at] = b[at]! ^ (1 << int(r, 8));
        break;
      case 1:
        b[at] = int(r, 256);
        break;
      case 2: {
        const v = pick(r, INTERESTING_U32);
        for (let k = 0; k < 4 && at + k < b.length; k++) b[at + k] = (v >>> (8 * k)) & 0xff;
        break;
      }
      case 3: {
        // duplicate a chunk
        const len = 1 + int(r, Math.min(64, b.length - at));
        b = Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
        break;
      }
      case 4: {
        // delete a chunk
        const len = 1 + int(r, Math.min(64, b.length - at));
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
        break;
      }
      default:
        b[at] = pick(
          r,
          [0x00, 0x0a, 0x28, 0x2e, 0x51, 0x52, 0x62, 0x63, 0x68, 0x71, 0x73, 0x74, 0x75, 0x81, 0x8a, 0x8b, 0x93, 0x95],
        );
    }
  }
  return b;
}

/** Entries of a STORED zip as torch writes it (enough to take fixture archives apart). */
export function unzipStored(buf: Uint8Array): ZipEntryInput[] {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let eocd = buf.length - 22;
  while (eocd >= 0 && v.getUint32(eocd, true) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error('fixture is not a zip');
  const count = v.getUint16(eocd + 10, true);
  let p = v.getUint32(eocd + 16, true);
  const out: ZipEntryInput[] = [];
  for (let k = 0; k < count; k++) {
    const size = v.getUint32(p + 20, true);
    const nameLen = v.getUint16(p + 28, true);
    const extraLen = v.getUint16(p + 30, true);
    const commentLen = v.getUint16(p + 32, true);
    const local = v.getUint32(p + 42, true);
    const name = Buffer.from(buf.subarray(p + 46, p + 46 + nameLen)).toString('utf8');
    const dataStart = local + 30 + v.getUint16(local + 26, true) + v.getUint16(local + 28, true);
    out.push({ name, data: buf.subarray(dataStart, dataStart + size) });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

function fixtureSources(): { name: string; ext: 'pth' | 'safetensors'; bytes: Uint8Array }[] {
  const read = (f: string) => new Uint8Array(fs.readFileSync(f));
  return [
    { name: 'beit_official', ext: 'pth', bytes: read(tiny('beit_official.pth')) },
    { name: 'segmentor_mmseg', ext: 'pth', bytes: read(tiny('segmentor_mmseg.pth')) },
    { name: 'views', ext: 'pth', bytes: read(local('views.pth')) },
    { name: 'legacy', ext: 'pth', bytes: read(local('legacy.pth')) },
    { name: 'mmengine', ext: 'pth', bytes: read(local('mmengine_runner.pth')) },
    { name: 'official_st', ext: 'safetensors', bytes: read(tiny('official_state_dict.safetensors')) },
    { name: 'segmentor_st', ext: 'safetensors', bytes: read(tiny('segmentor_state_dict.safetensors')) },
  ];
}

/** A zip fixture with its data.pkl mutated and the archive rebuilt (valid CRCs), so the unpickler sees the edit. */
function mutatePickleInZip(r: Rand, zip: Uint8Array): Uint8Array {
  const entries = unzipStored(zip);
  const pkl = entries.find((e) => e.name.endsWith('/data.pkl'))!;
  pkl.data = mutateBytes(r, pkl.data);
  return buildZip(entries);
}

/** A safetensors file with numbers or strings in its JSON header changed, length prefix kept consistent. */
function mutateSafetensorsHeader(r: Rand, st: Uint8Array): Uint8Array {
  const n = Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true));
  let header = Buffer.from(st.subarray(8, 8 + n)).toString('utf8');
  const edits = 1 + int(r, 3);
  for (let e = 0; e < edits; e++) {
    const nums = [...header.matchAll(/\d+/g)];
    if (int(r, 3) > 0 && nums.length) {
      const m = pick(r, nums);
      const repl = pick(r, [
        '0',
        '1',
        '-1',
        '4294967296',
        '9007199254740993',
        '1e308',
        '99999999999',
        String(Number(m[0]) + 1),
        '[]',
      ]);
      header = header.slice(0, m.index) + repl + header.slice(m.index! + m[0].length);
    } else {
      const swaps: [RegExp, string][] = [
        [/"F32"/, '"F64"'],
        [/"F32"/, '"I64"'],
        [/"shape"/, '"shap"'],
        [/\]/, ',[]]'],
        [/"/, '"\u001b[2J'],
      ];
      const [re, s] = pick(r, swaps);
      header = header.replace(re, s);
    }
  }
  const body = Buffer.from(header, 'utf8');
  const out = Buffer.concat([Buffer.alloc(8), body, Buffer.from(st.subarray(8 + n))]);
  out.writeBigUInt64LE(BigInt(body.length));
  return out;
}

/** Random opcodes with plausible arguments, in a torch zip. */
function opcodeSoup(r: Rand): Uint8Array {
  const w = new PickleWriter().proto(2);
  const steps = 5 + int(r, 60);
  for (let s = 0; s < steps; s++) {
    switch (int(r, 14)) {
      case 0:
        w.mark();
        break;
      case 1:
        w.emptyDict();
        break;
      case 2:
        w.emptyList();
        break;
      case 3:
        w.str(pick(r, ['state_dict', 'w', 'storage', 'cpu', '0', 'model']));
        break;
      case 4:
        w.int(int(r, 70000) - 100);
        break;
      case 5:
        w.op(pick(r, [0x73, 0x75, 0x61, 0x65, 0x74, 0x85, 0x86, 0x87, 0x52, 0x81, 0x62, 0x51, 0x30, 0x32]));
        break;
      case 6:
        w.binput(int(r, 4));
        break;
      case 7:
        w.binget(int(r, 4));
        break;
      case 8:
        w.global(
          ...pick(r, [
            ['collections', 'OrderedDict'],
            ['torch._utils', '_rebuild_tensor_v2'],
            ['torch', 'FloatStorage'],
            ['numpy', 'dtype'],
            ['mylib', 'Thing'],
            ['os', 'system'],
            ['torch._utils', '_rebuild_parameter'],
          ] as [string, string][]),
        );
        break;
      case 9:
        w.tensor(
          'FloatStorage',
          String(int(r, 2)),
          int(r, 8),
          int(r, 3),
          [int(r, 4), int(r, 4)],
          [int(r, 3), int(r, 3)],
        );
        break;
      case 10:
        w.op(0x8a, 9, ...Array.from({ length: 9 }, () => int(r, 256)));
        break;
      case 11:
        w.emptyTuple();
        break;
      case 12:
        w.none();
        break;
      default:
        w.op(int(r, 256));
    }
  }
  w.stop();
  return buildTorchZip('soup', w.bytes(), { 0: new Uint8Array(16), 1: new Uint8Array(8) });
}

/** Opcodes that push, mark or memoize one entry each, with what must come before them. */
const REPEATED_OPCODES: [string, number[], number[]][] = [
  ['EMPTY_DICT', [0x80, 2], [0x7d]],
  ['NONE', [0x80, 2], [0x4e]],
  ['MARK', [0x80, 2, 0x4e], [0x28]],
  ['EMPTY_LIST', [0x80, 2], [0x5d]],
  ['EMPTY_TUPLE', [0x80, 2], [0x29]],
  ['MEMOIZE', [0x80, 2, 0x7d], [0x94]],
  ['BINPUT', [0x80, 2, 0x7d], [0x71, 7]],
  ['LONG_BINPUT', [0x80, 2, 0x7d], [0x72, 0xff, 0xff, 0xff, 0x7f]],
  ['DUP', [0x80, 2, 0x7d], [0x32]],
  ['BINGET', [0x80, 2, 0x7d, 0x71, 0], [0x68, 0]],
  ['NEWTRUE', [0x80, 2], [0x88]],
  ['TUPLE1', [0x80, 2, 0x4e], [0x85]],
];

/** Hostile pickles of known shapes with random sizes: each must end in a clean error or a result. */
function hostile(r: Rand): { name: string; bytes: Uint8Array } {
  const kind = int(r, 7);
  const sd = (w: PickleWriter) =>
    w.str('state_dict').emptyDict().str('w').tensor('FloatStorage', '0', 1, 0, [1], [1]).setitem();
  switch (kind) {
    case 0: {
      // a container that holds itself, at a random depth
      const w = new PickleWriter().proto(2).emptyDict().binput(0);
      const depth = int(r, 5);
      for (let d = 0; d < depth; d++) w.str(`k${d}`).emptyDict();
      w.str('self').binget(0).setitem();
      for (let d = 0; d < depth; d++) w.setitem();
      return { name: 'cycle', bytes: buildTorchZip('c', sd(w).setitem().stop().bytes(), { 0: new Uint8Array(4) }) };
    }
    case 1: {
      // deep nesting
      const depth = 100 + int(r, 50_000);
      const w = new PickleWriter().proto(2).emptyDict().str('meta');
      for (let d = 0; d < depth; d++) w.emptyList();
      for (let d = 1; d < depth; d++) w.append();
      return {
        name: 'deep',
        bytes: buildTorchZip('d', sd(w.setitem()).setitem().stop().bytes(), { 0: new Uint8Array(4) }),
      };
    }
    case 2: {
      // a long integer
      const n = 500 + int(r, 300_000);
      const head = new PickleWriter().proto(2).emptyDict().str('meta').op(0x8b).u32(n).bytes();
      const tail = sd(new PickleWriter().setitem()).setitem().stop().bytes();
      const pkl = Buffer.concat([head, Buffer.alloc(n, 0x5a), tail]);
      return { name: 'long', bytes: buildTorchZip('l', pkl, { 0: new Uint8Array(4) }) };
    }
    case 3: {
      // an expanded view of random size
      const dims = [1 + int(r, 100_000), 1 + int(r, 100_000)];
      const pkl = new PickleWriter()
        .proto(2)
        .emptyDict()
        .str('w')
        .tensor('FloatStorage', '0', 1, 0, dims, [0, 0])
        .setitem()
        .stop()
        .bytes();
      return { name: 'expand', bytes: buildTorchZip('e', pkl, { 0: new Uint8Array(4) }) };
    }
    case 4: {
      // a storage that claims far more than it holds, or than its tensor uses
      const numel = pick(r, [2 ** 31, 2 ** 40, 2 ** 53, 1e6]);
      const pkl = new PickleWriter()
        .proto(2)
        .emptyDict()
        .str('w')
        .tensor('FloatStorage', '0', numel, 0, [1], [1])
        .setitem()
        .stop()
        .bytes();
      return { name: 'bigstorage', bytes: buildTorchZip('s', pkl, { 0: new Uint8Array(4) }) };
    }
    case 6: {
      // one opcode repeated (deflated, so the file stays small): stack, mark stack or memo growth
      const [name, head, unit] = pick(r, REPEATED_OPCODES);
      const count = 100_000 + int(r, 3_000_000);
      const body = Buffer.alloc(head.length + unit.length * count + 1);
      body.set(head);
      for (let i = 0; i < count; i++) body.set(unit, head.length + i * unit.length);
      body[body.length - 1] = 0x2e;
      return {
        name: `repeat-${name}`,
        bytes: buildZip([
          { name: 'r/data.pkl', data: body, deflate: true },
          { name: 'r/version', data: Buffer.from('3\n') },
        ]),
      };
    }
    default: {
      // a deflated storage bigger than its tensor needs
      const size = 4 * (1 + int(r, 2 ** 19));
      const pkl = new PickleWriter()
        .proto(2)
        .emptyDict()
        .str('w')
        .tensor('FloatStorage', '0', size / 4, 0, [1], [1])
        .setitem()
        .stop()
        .bytes();
      return {
        name: 'deflated',
        bytes: buildTorchZip('z', pkl, {}, [{ name: 'z/data/0', data: new Uint8Array(size), deflate: true }]),
      };
    }
  }
}

/** `count` cases from `seed`: a fixed mix of mutation kinds, deterministic for a seed. */
export function generateCases(seed: number, count: number): FuzzCase[] {
  const r = rng(seed);
  const sources = fixtureSources();
  const zips = sources.filter((s) => s.ext === 'pth' && s.name !== 'legacy');
  const sts = sources.filter((s) => s.ext === 'safetensors');
  const cases: FuzzCase[] = [];
  for (let i = 0; i < count; i++) {
    const kind = i % 6;
    if (kind === 0) {
      const s = pick(r, sources);
      cases.push({ name: `bytes-${s.name}`, ext: s.ext, bytes: mutateBytes(r, s.bytes) });
    } else if (kind === 1) {
      const s = pick(r, sources);
      cases.push({ name: `cut-${s.name}`, ext: s.ext, bytes: s.bytes.subarray(0, int(r, s.bytes.length)) });
    } else if (kind === 2) {
      const s = pick(r, zips);
      cases.push({ name: `pickle-${s.name}`, ext: 'pth', bytes: mutatePickleInZip(r, s.bytes) });
    } else if (kind === 3) {
      const s = pick(r, sts);
      cases.push({ name: `header-${s.name}`, ext: 'safetensors', bytes: mutateSafetensorsHeader(r, s.bytes) });
    } else if (kind === 4) {
      cases.push({ name: 'soup', ext: 'pth', bytes: opcodeSoup(r) });
    } else {
      const h = hostile(r);
      cases.push({ name: `hostile-${h.name}`, ext: 'pth', bytes: h.bytes });
    }
  }
  return cases;
}
