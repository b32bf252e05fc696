/**
 * A minimal, safe unpickler for the pickles inside PyTorch checkpoints.
 *
 * Pickle is a small stack machine whose GLOBAL/REDUCE opcodes normally import and call arbitrary
 * Python callables. Nothing here runs Python: every GLOBAL is looked up in an allow-list of the
 * names torch.save writes (tensor rebuild functions, storage types, OrderedDict and a few
 * harmless builtins), each implemented in JS. Any other global is refused with an error that
 * names it (module.name), which is what makes a checkpoint that references e.g. `os.system`
 * or numpy fail loudly instead of doing anything. (`opaqueGlobals` can instead turn unknown
 * globals into inert records, for inspecting foreign metadata; they are never executed.)
 *
 * Python values map to JS as: None -> null, bool -> boolean, int -> number (bigint beyond
 * 2^53), float -> number, str -> string, bytes -> Uint8Array, list and tuple -> Array,
 * dict and OrderedDict -> Map (keeps order and non-string keys), set -> Set.
 * Tensors are whatever `rebuildTensor` returns; storages whatever `persistentLoad` returns.
 */
import type { DType } from './host_tensor.js';

/** A torch storage class named in a checkpoint (torch.FloatStorage, ...), mapped to its dtype. */
export class StorageType {
  constructor(readonly qualname: string, readonly dtype: DType | null) {}
}

/** Stand-in for a non-allow-listed global when `opaqueGlobals` is set; never executed. */
export class OpaqueObject {
  state: unknown = undefined;
  constructor(readonly qualname: string, readonly args: unknown[] = []) {}
}

export interface UnpickleOptions {
  /** Resolves a persistent id (torch: ('storage', StorageType, key, location, numel)). */
  persistentLoad?: (pid: unknown) => unknown;
  /** Builds a tensor from (storage, storage_offset, size, stride), as torch._utils._rebuild_tensor_v2. */
  rebuildTensor?: (storage: unknown, storageOffset: number, size: number[], stride: number[]) => unknown;
  /** Names the source in error messages (usually the file, plus the entry in an archive). */
  label?: string;
  /** Represent globals outside the allow-list as OpaqueObject instead of refusing them. */
  opaqueGlobals?: boolean;
}

/** A callable that the allow-list provides in place of a Python global. */
class PyCallable {
  constructor(readonly qualname: string, readonly call: (args: unknown[]) => unknown) {}
}

/** A class marker (e.g. torch.Tensor) that may appear as an argument but is never called. */
class PyClassMarker {
  constructor(readonly qualname: string) {}
}

/** State attached by BUILD (e.g. OrderedDict._metadata in torch state dicts), kept out of the values. */
const buildState = new WeakMap<object, unknown>();

/** The state a BUILD opcode attached to `obj` (for a torch state dict: its `_metadata`), if any. */
export function pickleState(obj: object): unknown {
  return buildState.get(obj);
}

/** Storage classes torch writes, and the element type each holds. */
export const STORAGE_DTYPES: Record<string, DType | null> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  UntypedStorage: 'uint8',
  // Recognised so the error can say which dtype is missing, rather than "unknown global".
  DoubleStorage: null,
  ShortStorage: null,
  CharStorage: null,
  ComplexFloatStorage: null,
  ComplexDoubleStorage: null,
};

export class UnpicklingError extends Error {}

function toInt(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw new UnpicklingError(`${what}: expected an integer, got ${describe(v)}`);
}

function toIntList(v: unknown, what: string): number[] {
  if (!Array.isArray(v)) throw new UnpicklingError(`${what}: expected a tuple of integers, got ${describe(v)}`);
  return v.map((x, i) => toInt(x, `${what}[${i}]`));
}

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return `tuple/list of ${v.length}`;
  if (v instanceof Map) return `dict of ${v.size}`;
  if (v instanceof PyCallable || v instanceof PyClassMarker || v instanceof StorageType) return v.qualname;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return `${typeof v} ${String(v).slice(0, 40)}`;
}

/** Builds the allow-list. Keys are `module.name` after Python-2 name fixes. */
function allowList(opts: UnpickleOptions): Map<string, PyCallable | PyClassMarker | StorageType> {
  const m = new Map<string, PyCallable | PyClassMarker | StorageType>();
  const fn = (name: string, call: (args: unknown[]) => unknown) => m.set(name, new PyCallable(name, call));

  const rebuild = (args: unknown[], name: string): unknown => {
    if (args.length < 4) throw new UnpicklingError(`${name} expects at least 4 arguments, got ${args.length}`);
    if (!opts.rebuildTensor) throw new UnpicklingError(`${name}: tensors are not expected in this pickle`);
    return opts.rebuildTensor(args[0], toInt(args[1], `${name} storage_offset`),
      toIntList(args[2], `${name} size`), toIntList(args[3], `${name} stride`));
  };
  fn('torch._utils._rebuild_tensor_v2', (a) => rebuild(a, '_rebuild_tensor_v2'));
  fn('torch._utils._rebuild_tensor', (a) => rebuild(a, '_rebuild_tensor'));
  // Parameters are saved as (tensor, requires_grad, hooks[, state]); the tensor is all we keep.
  fn('torch._utils._rebuild_parameter', (a) => a[0]);
  fn('torch._utils._rebuild_parameter_with_state', (a) => a[0]);
  // Tensor subclasses / tensors with attributes: (rebuild function, type, its args, state).
  fn('torch._tensor._rebuild_from_type_v2', (a) => {
    const [func, , args] = a;
    if (!(func instanceof PyCallable)) throw new UnpicklingError(`_rebuild_from_type_v2: first argument ${describe(func)} is not callable`);
    if (!Array.isArray(args)) throw new UnpicklingError('_rebuild_from_type_v2: arguments are not a tuple');
    return func.call(args);
  });
  for (const name of ['torch._tensor.Tensor', 'torch.Tensor', 'torch.nn.parameter.Parameter']) m.set(name, new PyClassMarker(name));
  fn('torch.Size', (a) => (a.length === 0 ? [] : toIntList(a[0], 'torch.Size')));
  for (const [name, dtype] of Object.entries(STORAGE_DTYPES)) m.set(`torch.${name}`, new StorageType(`torch.${name}`, dtype));

  fn('collections.OrderedDict', (a) => {
    const d = new Map<unknown, unknown>();
    if (a.length > 0 && a[0] !== null) {
      if (!Array.isArray(a[0])) throw new UnpicklingError(`OrderedDict: expected a list of pairs, got ${describe(a[0])}`);
      for (const pair of a[0]) {
        if (!Array.isArray(pair) || pair.length !== 2) throw new UnpicklingError('OrderedDict: expected (key, value) pairs');
        d.set(pair[0], pair[1]);
      }
    }
    return d;
  });
  const makeSet = (a: unknown[]) => {
    if (a.length === 0) return new Set();
    if (!Array.isArray(a[0])) throw new UnpicklingError(`set: expected a list, got ${describe(a[0])}`);
    return new Set(a[0]);
  };
  fn('builtins.set', makeSet);
  fn('builtins.frozenset', makeSet);
  // Protocol 2 has no bytes opcode: Python 3 writes bytes as _codecs.encode(text, 'latin1').
  fn('_codecs.encode', (a) => {
    const [text, encoding] = a;
    if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) {
      throw new UnpicklingError(`_codecs.encode: only (str, 'latin1') is supported, got ${describe(text)}, ${describe(encoding)}`);
    }
    return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
  });
  return m;
}

/** Python 2 module names that Python 3 maps when reading protocol <= 2 pickles. */
const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

/** Unpickles one pickle starting at `data[0]`. */
export function unpickle(data: Uint8Array, options: UnpickleOptions = {}): unknown {
  return unpickleAt(data, 0, options).value;
}

/**
 * Unpickles one pickle starting at `offset` and returns it with the offset just past its STOP
 * opcode (legacy torch files hold several pickles back to back).
 */
export function unpickleAt(data: Uint8Array, offset: number, options: UnpickleOptions = {}): { value: unknown; end: number } {
  const label = options.label ?? 'pickle';
  const globals = allowList(options);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  const memo = new Map<number, unknown>();
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  let pos = offset;
  let opPos = offset;

  const fail = (msg: string): never => {
    throw new UnpicklingError(`${label}: ${msg} (at byte ${opPos})`);
  };
  const need = (n: number) => {
    if (pos + n > data.byteLength) fail('pickle data is truncated');
  };
  const u8 = () => { need(1); return data[pos++]!; };
  const u16 = () => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const u32 = () => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const i32 = () => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(data.byteLength)) fail('length field larger than the pickle');
    return Number(v);
  };
  const bytes = (n: number) => { need(n); const b = data.subarray(pos, pos + n); pos += n; return b; };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail('pickle data is truncated (missing newline)');
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0) fail('stack underflow (corrupt pickle)');
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail('stack underflow (corrupt pickle)');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (prev === undefined) fail('MARK missing (corrupt pickle)');
    stack = prev!;
    return items;
  };
  const decodeLong = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const findGlobal = (module: string, name: string): unknown => {
    const mod = PY2_MODULES[module] ?? module;
    const qualname = `${mod}.${name}`;
    const g = globals.get(qualname);
    if (g !== undefined) return g;
    if (options.opaqueGlobals) return new PyCallable(qualname, (args) => new OpaqueObject(qualname, args));
    const why = mod === 'torch' || mod.startsWith('torch.')
      ? 'only dense tensors, parameters and storages of torch types are supported'
      : 'it is not in the allow-list of types a torch checkpoint may contain (this file holds other Python objects, or tries to run code)';
    return fail(`refusing to load global '${qualname}': ${why}; nothing was executed`
      + ' (opaqueGlobals / --allow-unknown-globals reads such objects as inert placeholders)');
  };
  const call = (callable: unknown, args: unknown, what: string): unknown => {
    if (!Array.isArray(args)) fail(`${what}: arguments are not a tuple`);
    if (callable instanceof PyCallable) {
      try {
        return callable.call(args as unknown[]);
      } catch (err) {
        if (err instanceof UnpicklingError && !err.message.startsWith(label)) fail(err.message);
        throw err;
      }
    }
    return fail(`${what}: ${describe(callable)} cannot be called`);
  };
  const setItem = (d: unknown, k: unknown, v: unknown) => {
    if (!(d instanceof Map)) fail(`SETITEM on ${describe(d)}, not a dict`);
    (d as Map<unknown, unknown>).set(k, v);
  };
  const appendTo = (l: unknown, items: unknown[]) => {
    if (Array.isArray(l)) { for (const x of items) l.push(x); return; }
    if (l instanceof Set) { for (const x of items) l.add(x); return; }
    fail(`APPEND on ${describe(l)}, not a list`);
  };

  for (;;) {
    opPos = pos;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const proto = u8();
        if (proto > 5) fail(`unsupported pickle protocol ${proto}`);
        break;
      }
      case 0x95: u64(); break; // FRAME: framing only matters for streaming readers
      case 0x2e: { // STOP
        const value = pop();
        return { value, end: pos };
      }
      case 0x28: metastack.push(stack); stack = []; break; // MARK
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { const items = popMark(); appendTo(top(), items); break; } // ADDITEMS
      case 0x91: { const items = popMark(); stack.push(new Set(items)); break; } // FROZENSET
      case 0x61: { const v = pop(); appendTo(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendTo(top(), items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItem(top(), k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2 !== 0) fail('SETITEMS with an odd number of items');
        const d = top();
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x74: { const items = popMark(); stack.push(items); break; } // TUPLE (popMark swaps `stack`: read it first)
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x6c: { const items = popMark(); stack.push(items); break; } // LIST
      case 0x64: { // DICT
        const items = popMark();
        if (items.length % 2 !== 0) fail('DICT with an odd number of items');
        const d = new Map<unknown, unknown>();
        for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: { const n = u8(); stack.push(decodeLong(bytes(n))); break; } // LONG1
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) fail('negative LONG4 length');
        stack.push(decodeLong(bytes(n)));
        break;
      }
      case 0x49: { // INT (text); protocol 0 spells booleans "01"/"00"
        const s = line();
        if (s === '01') stack.push(true);
        else if (s === '00') stack.push(false);
        else {
          if (!/^[-+]?\d+$/.test(s)) fail(`bad INT literal ${JSON.stringify(s)}`);
          const v = BigInt(s);
          stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        }
        break;
      }
      case 0x4c: { // LONG (text, trailing L)
        const s = line().replace(/L$/, '');
        if (!/^[-+]?\d+$/.test(s)) fail(`bad LONG literal ${JSON.stringify(s)}`);
        const v = BigInt(s);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x46: { // FLOAT (text)
        const s = line();
        const v = Number(s);
        if (Number.isNaN(v) && !/nan/i.test(s)) fail(`bad FLOAT literal ${JSON.stringify(s)}`);
        stack.push(v);
        break;
      }
      case 0x47: { need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT (big-endian)
      case 0x58: { const n = u32(); stack.push(utf8.decode(bytes(n))); break; } // BINUNICODE
      case 0x8c: { const n = u8(); stack.push(utf8.decode(bytes(n))); break; } // SHORT_BINUNICODE
      case 0x8d: { const n = u64(); stack.push(utf8.decode(bytes(n))); break; } // BINUNICODE8
      case 0x56: { // UNICODE (raw-unicode-escape, protocol 0)
        const s = line().replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
        stack.push(s);
        break;
      }
      case 0x54: { // BINSTRING (Python 2 str): read as latin-1 text
        const n = i32();
        if (n < 0) fail('negative BINSTRING length');
        stack.push(latin1.decode(bytes(n)));
        break;
      }
      case 0x55: { const n = u8(); stack.push(latin1.decode(bytes(n))); break; } // SHORT_BINSTRING
      case 0x42: { const n = u32(); stack.push(bytes(n).slice()); break; } // BINBYTES
      case 0x43: { const n = u8(); stack.push(bytes(n).slice()); break; } // SHORT_BINBYTES
      case 0x8e: { const n = u64(); stack.push(bytes(n).slice()); break; } // BINBYTES8
      case 0x96: { const n = u64(); stack.push(bytes(n).slice()); break; } // BYTEARRAY8
      case 0x70: memo.set(toInt(Number(line()), 'PUT index'), top()); break; // PUT
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x67: case 0x68: case 0x6a: { // GET, BINGET, LONG_BINGET
        const idx = op === 0x67 ? Number(line()) : op === 0x68 ? u8() : u32();
        if (!memo.has(idx)) fail(`memo entry ${idx} is missing (corrupt pickle)`);
        stack.push(memo.get(idx));
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        const name = line();
        stack.push(findGlobal(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(findGlobal(module as string, name as string));
        break;
      }
      case 0x52: { const args = pop(); const f = pop(); stack.push(call(f, args, 'REDUCE')); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(call(cls, args, 'NEWOBJ')); break; } // NEWOBJ
      case 0x92: { // NEWOBJ_EX (keyword arguments are not used by anything we allow)
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (kwargs instanceof Map && kwargs.size > 0) fail(`NEWOBJ_EX with keyword arguments for ${describe(cls)}`);
        stack.push(call(cls, args, 'NEWOBJ_EX'));
        break;
      }
      case 0x69: { // INST "module\nname\n" with MARKed args
        const module = line();
        const name = line();
        const args = popMark();
        stack.push(call(findGlobal(module, name), args, 'INST'));
        break;
      }
      case 0x6f: { // OBJ: MARK cls args...
        const items = popMark();
        if (items.length === 0) fail('OBJ without a class');
        stack.push(call(items[0], items.slice(1), 'OBJ'));
        break;
      }
      case 0x62: { // BUILD: attach state to the object below it
        const state = pop();
        const obj = top();
        if (obj instanceof OpaqueObject) obj.state = state;
        else if (typeof obj === 'object' && obj !== null) buildState.set(obj, state);
        else fail(`BUILD on ${describe(obj)}`);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) fail('persistent id found but no persistent_load is available');
        stack.push(options.persistentLoad!(pid));
        break;
      }
      case 0x50: { // PERSID (text)
        const pid = line();
        if (!options.persistentLoad) fail('persistent id found but no persistent_load is available');
        stack.push(options.persistentLoad!(pid));
        break;
      }
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x82: case 0x83: case 0x84: // EXT1/2/4: the copyreg extension registry is not available
        fail('extension-registry opcodes (EXT1/EXT2/EXT4) are not supported');
        break;
      case 0x97: case 0x98: // NEXT_BUFFER / READONLY_BUFFER: out-of-band buffers
        fail('out-of-band buffers (pickle protocol 5) are not supported');
        break;
      case 0x53: // STRING (protocol 0 quoted repr)
        fail('protocol-0 STRING opcode is not supported');
        break;
      default:
        fail(`unknown pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}
