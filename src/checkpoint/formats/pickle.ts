/**
 * A minimal, safe unpickler for the pickles inside PyTorch checkpoints.
 *
 * Pickle is a small stack machine whose GLOBAL/REDUCE opcodes normally import and call arbitrary
 * Python callables. Nothing here runs Python: every GLOBAL is looked up in the allow-list
 * (ALLOWED_GLOBALS in pickle_globals.ts: tensor rebuild functions, storage types, OrderedDict and
 * a few harmless builtins), each implemented in JS. Any other global is refused with an error that
 * names it (module.name), which is what makes a checkpoint that references e.g. `os.system`
 * or numpy fail loudly instead of doing anything. `foreignGlobals` can instead read foreign
 * objects as inert records (OpaqueObject), never executed: 'data' for the objects that runner
 * checkpoints (mmengine) hold next to the state dict, 'inert' for any name. A foreign global that
 * receives a storage or tensor is refused by name in every mode.
 *
 * Limits (limits.ts): integers longer than `maxIntBytes`, containers nested deeper than
 * `maxDepth` and objects that contain themselves are refused; text from the file is quoted
 * safely in every message (common/safe_text.ts).
 *
 * Written by hand because the npm pickle readers either evaluate globals through a user-supplied
 * registry without an allow-list, or do not support the opcodes and torch conventions used here.
 * The machine is the `Unpickler` class (pickle_machine.ts: its reading primitives and stack); every
 * opcode is one row of the OPCODES table here, so adding an opcode touches that table only.
 *
 * Python values map to JS as: None -> null, bool -> boolean, int -> number (bigint beyond
 * 2^53), float -> number, str -> string, bytes -> Uint8Array, list and tuple -> Array,
 * dict and OrderedDict -> Map (keeps order and non-string keys), set -> Set.
 * Tensors are whatever `rebuildTensor` returns; storages whatever `persistentLoad` returns.
 */
import { quoteFileText } from '../../common/safe_text.js';
import { describe, type OpHandler, Unpickler, type UnpickleOptions, type UnpickleResult } from './pickle_machine.js';

export { StorageType, UnpicklingError, STORAGE_DTYPES, ALLOWED_GLOBALS, INERT_DATA_GLOBALS } from './pickle_globals.js';
export {
  type ForeignGlobals,
  OpaqueObject,
  pickleState,
  type UnpickleOptions,
  type UnpickleResult,
} from './pickle_machine.js';

/** Every opcode the unpickler runs: code, name (as in Python's pickletools), and what it does. */
const OPCODE_TABLE: [number, string, OpHandler][] = [
  // Framing and control
  [
    0x80,
    'PROTO',
    (m) => {
      const proto = m.u8();
      if (proto > 5) m.fail(`unsupported pickle protocol ${proto}`);
    },
  ],
  [
    0x95,
    'FRAME',
    (m) => {
      m.u64();
    },
  ], // framing only matters for streaming readers
  [
    0x2e,
    'STOP',
    (m) => {
      m.result = { value: m.pop() };
    },
  ],
  [0x28, 'MARK', (m) => m.mark()],
  [
    0x30,
    'POP',
    (m) => {
      m.pop();
    },
  ],
  [
    0x31,
    'POP_MARK',
    (m) => {
      m.popMark();
    },
  ],
  [0x32, 'DUP', (m) => m.push(m.top())],
  // Containers
  [0x29, 'EMPTY_TUPLE', (m) => m.push([])],
  [0x5d, 'EMPTY_LIST', (m) => m.push([])],
  [0x7d, 'EMPTY_DICT', (m) => m.push(new Map())],
  [0x8f, 'EMPTY_SET', (m) => m.push(new Set())],
  [
    0x90,
    'ADDITEMS',
    (m) => {
      const items = m.popMark();
      m.appendTo(m.top(), items);
    },
  ],
  [
    0x91,
    'FROZENSET',
    (m) => {
      const items = m.popMark();
      m.push(new Set(items));
    },
  ],
  [
    0x61,
    'APPEND',
    (m) => {
      const v = m.pop();
      m.appendTo(m.top(), [v]);
    },
  ],
  [
    0x65,
    'APPENDS',
    (m) => {
      const items = m.popMark();
      m.appendTo(m.top(), items);
    },
  ],
  [
    0x73,
    'SETITEM',
    (m) => {
      const v = m.pop();
      const k = m.pop();
      m.setItem(m.top(), k, v);
    },
  ],
  [
    0x75,
    'SETITEMS',
    (m) => {
      const items = m.popMark();
      const d = m.top();
      for (const [k, v] of m.dictFromPairs(items, 'SETITEMS')) m.setItem(d, k, v);
    },
  ],
  [
    0x74,
    'TUPLE',
    (m) => {
      const items = m.popMark();
      m.push(items);
    },
  ], // popMark swaps `stack`: read it first
  [0x85, 'TUPLE1', (m) => m.push([m.pop()])],
  [
    0x86,
    'TUPLE2',
    (m) => {
      const b = m.pop();
      const a = m.pop();
      m.push([a, b]);
    },
  ],
  [
    0x87,
    'TUPLE3',
    (m) => {
      const c = m.pop();
      const b = m.pop();
      const a = m.pop();
      m.push([a, b, c]);
    },
  ],
  [
    0x6c,
    'LIST',
    (m) => {
      const items = m.popMark();
      m.push(items);
    },
  ],
  [
    0x64,
    'DICT',
    (m) => {
      const items = m.popMark();
      m.push(m.dictFromPairs(items, 'DICT'));
    },
  ],
  // Scalars
  [0x4e, 'NONE', (m) => m.push(null)],
  [0x88, 'NEWTRUE', (m) => m.push(true)],
  [0x89, 'NEWFALSE', (m) => m.push(false)],
  [0x4a, 'BININT', (m) => m.push(m.i32())],
  [0x4b, 'BININT1', (m) => m.push(m.u8())],
  [0x4d, 'BININT2', (m) => m.push(m.u16())],
  [0x8a, 'LONG1', (m) => m.push(m.decodeLong(m.u8(), 'LONG1'))],
  [
    0x8b,
    'LONG4',
    (m) => {
      const n = m.i32();
      if (n < 0) m.fail('negative LONG4 length');
      m.push(m.decodeLong(n, 'LONG4'));
    },
  ],
  [
    0x49,
    'INT',
    (m) => {
      // text; protocol 0 spells booleans "01"/"00"
      const s = m.line();
      m.push(s === '01' ? true : s === '00' ? false : m.decimalInt(s, 'INT'));
    },
  ],
  [0x4c, 'LONG', (m) => m.push(m.decimalInt(m.line().replace(/L$/, ''), 'LONG'))], // text, trailing L
  [
    0x46,
    'FLOAT',
    (m) => {
      // text
      const s = m.line();
      const v = Number(s);
      if (Number.isNaN(v) && !/nan/i.test(s)) m.fail(`bad FLOAT literal ${quoteFileText(s)}`);
      m.push(v);
    },
  ],
  [0x47, 'BINFLOAT', (m) => m.push(m.f64be())], // big-endian
  // Text and bytes
  [0x58, 'BINUNICODE', (m) => m.push(m.utf8(m.u32()))],
  [0x8c, 'SHORT_BINUNICODE', (m) => m.push(m.utf8(m.u8()))],
  [0x8d, 'BINUNICODE8', (m) => m.push(m.utf8(m.u64()))],
  [
    0x56,
    'UNICODE',
    (m) => {
      // raw-unicode-escape, protocol 0
      m.push(m.line().replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))));
    },
  ],
  [
    0x54,
    'BINSTRING',
    (m) => {
      // Python 2 str: read as latin-1 text
      const n = m.i32();
      if (n < 0) m.fail('negative BINSTRING length');
      m.push(m.latin1(n));
    },
  ],
  [0x55, 'SHORT_BINSTRING', (m) => m.push(m.latin1(m.u8()))],
  [0x42, 'BINBYTES', (m) => m.push(m.bytes(m.u32()).slice())],
  [0x43, 'SHORT_BINBYTES', (m) => m.push(m.bytes(m.u8()).slice())],
  [0x8e, 'BINBYTES8', (m) => m.push(m.bytes(m.u64()).slice())],
  [0x96, 'BYTEARRAY8', (m) => m.push(m.bytes(m.u64()).slice())],
  // Memo
  [
    0x70,
    'PUT',
    (m) => {
      m.memoSet(m.textIndex('PUT'));
    },
  ],
  [
    0x71,
    'BINPUT',
    (m) => {
      m.memoSet(m.u8());
    },
  ],
  [
    0x72,
    'LONG_BINPUT',
    (m) => {
      m.memoSet(m.u32());
    },
  ],
  [
    0x94,
    'MEMOIZE',
    (m) => {
      m.memoSet(m.memo.size);
    },
  ],
  ...(
    [
      [0x67, 'GET'],
      [0x68, 'BINGET'],
      [0x6a, 'LONG_BINGET'],
    ] as const
  ).map(([code, name]): [number, string, OpHandler] => [
    code,
    name,
    (m, op) => {
      const idx = op === 0x67 ? m.textIndex('GET') : op === 0x68 ? m.u8() : m.u32();
      if (!m.memo.has(idx)) m.fail(`memo entry ${idx} is missing (corrupt pickle)`);
      m.push(m.memo.get(idx));
    },
  ]),
  // Globals and calls: the only way to reach Python callables, all through the allow-list
  [
    0x63,
    'GLOBAL',
    (m) => {
      const module = m.line();
      const name = m.line();
      m.push(m.findGlobal(module, name));
    },
  ],
  [
    0x93,
    'STACK_GLOBAL',
    (m) => {
      const name = m.pop();
      const module = m.pop();
      if (typeof module !== 'string' || typeof name !== 'string') m.fail('STACK_GLOBAL needs two strings');
      m.push(m.findGlobal(module as string, name as string));
    },
  ],
  [
    0x52,
    'REDUCE',
    (m) => {
      const args = m.pop();
      const f = m.pop();
      m.push(m.call(f, args, 'REDUCE'));
    },
  ],
  [
    0x81,
    'NEWOBJ',
    (m) => {
      const args = m.pop();
      const cls = m.pop();
      m.push(m.call(cls, args, 'NEWOBJ'));
    },
  ],
  [
    0x92,
    'NEWOBJ_EX',
    (m) => {
      // keyword arguments are not used by anything we allow
      const kwargs = m.pop();
      const args = m.pop();
      const cls = m.pop();
      if (kwargs instanceof Map && kwargs.size > 0) m.fail(`NEWOBJ_EX with keyword arguments for ${describe(cls)}`);
      m.push(m.call(cls, args, 'NEWOBJ_EX'));
    },
  ],
  [
    0x69,
    'INST',
    (m) => {
      // "module\nname\n" with MARKed args
      const module = m.line();
      const name = m.line();
      const args = m.popMark();
      m.push(m.call(m.findGlobal(module, name), args, 'INST'));
    },
  ],
  [
    0x6f,
    'OBJ',
    (m) => {
      // MARK cls args...
      const items = m.popMark();
      if (items.length === 0) m.fail('OBJ without a class');
      m.push(m.call(items[0], items.slice(1), 'OBJ'));
    },
  ],
  [
    0x62,
    'BUILD',
    (m) => {
      const state = m.pop();
      m.build(state, m.top());
    },
  ], // attach state to the object below it
  [0x51, 'BINPERSID', (m) => m.push(m.persistentLoad(m.pop()))],
  [0x50, 'PERSID', (m) => m.push(m.persistentLoad(m.line()))], // text
  // Recognised but unsupported, for a precise message
  ...(
    [
      [0x82, 'EXT1'],
      [0x83, 'EXT2'],
      [0x84, 'EXT4'],
    ] as const
  ).map(([code, name]): [number, string, OpHandler] => [
    code,
    name,
    (m) => m.fail('extension-registry opcodes (EXT1/EXT2/EXT4) are not supported'),
  ]), // no copyreg registry
  ...(
    [
      [0x97, 'NEXT_BUFFER'],
      [0x98, 'READONLY_BUFFER'],
    ] as const
  ).map(([code, name]): [number, string, OpHandler] => [
    code,
    name,
    (m) => m.fail('out-of-band buffers (pickle protocol 5) are not supported'),
  ]),
  [0x53, 'STRING', (m) => m.fail('protocol-0 STRING opcode is not supported')], // quoted repr
];

/** OPCODE_TABLE indexed by opcode byte, for dispatch. */
const OPCODES: ({ name: string; run: OpHandler } | undefined)[] = new Array(256).fill(undefined);
for (const [code, name, run] of OPCODE_TABLE) {
  if (OPCODES[code] !== undefined)
    throw new Error(`pickle opcode table: 0x${code.toString(16)} (${name}) is listed twice`);
  OPCODES[code] = { name, run };
}

/** Unpickles one pickle starting at `data[0]`. */
export function unpickle(data: Uint8Array, options: UnpickleOptions = {}): unknown {
  return unpickleAt(data, 0, options).value;
}

/**
 * Unpickles one pickle starting at `offset` and returns it with the offset just past its STOP
 * opcode (legacy torch files hold several pickles back to back).
 */
export function unpickleAt(data: Uint8Array, offset: number, options: UnpickleOptions = {}): UnpickleResult {
  return new Unpickler(data, offset, options, OPCODES).run();
}
