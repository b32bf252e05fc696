/**
 * The pickle machine behind pickle.ts: input cursor, stack, mark stack and memo with the reading
 * primitives and checks the opcodes use, the inert records for foreign objects, and the options and
 * result types. The opcodes themselves (one row each) and the entry points are in pickle.ts, which
 * hands its table to the machine.
 */
import {
  ALLOWED_GETATTR,
  INERT_DATA_GLOBALS,
  lookupAllowed,
  PY2_MODULES,
  PyCallable,
  PyClassMarker,
  StorageType,
  UnpicklingError,
  type GlobalContext,
} from './pickle_globals.js';
import { limitHint, resolveLimits, type CheckpointLimits } from './limits.js';
import { fileText, quoteFileText } from '../../common/safe_text.js';

/**
 * Stand-in for an object of a non-allow-listed global (see `foreignGlobals`); never executed.
 * Holds the global's name, the arguments it was called with, BUILD state, and the items a
 * pickle appends or sets on it (list and dict subclasses).
 */
export class OpaqueObject {
  state: unknown = undefined;
  readonly listItems: unknown[] = [];
  readonly dictItems = new Map<unknown, unknown>();
  constructor(
    readonly qualname: string,
    readonly args: unknown[] = [],
  ) {}
}

/**
 * What to do with a global outside the allow-list: refuse the pickle ('refuse', the default),
 * read objects that checkpoints of training runners hold (numpy values, mmengine buffers, plain
 * classes instantiated with NEWOBJ) as inert records while refusing any other call ('data'), or
 * read every foreign object as an inert record ('inert').
 */
export type ForeignGlobals = 'refuse' | 'data' | 'inert';

/** A foreign global read in 'data' or 'inert' mode: calling it makes an inert record, or is refused. */
class ForeignGlobal {
  constructor(
    readonly qualname: string,
    readonly callable: 'always' | 'as-class',
  ) {}
}

export interface UnpickleOptions {
  /** Resolves a persistent id (torch: ('storage', StorageType, key, location, numel)). */
  persistentLoad?: (pid: unknown) => unknown;
  /** Builds a tensor from (storage, storage_offset, size, stride), as torch._utils._rebuild_tensor_v2. */
  rebuildTensor?: (storage: unknown, storageOffset: number, size: number[], stride: number[]) => unknown;
  /** Names the source in error messages (usually the file, plus the entry in an archive). */
  label?: string;
  /** Represent globals outside the allow-list as OpaqueObject instead of refusing them (foreignGlobals 'inert'). */
  opaqueGlobals?: boolean;
  /** Handling of globals outside the allow-list (default 'refuse'; opaqueGlobals: true means 'inert'). */
  foreignGlobals?: ForeignGlobals;
  /** Overrides of the resource limits (maxIntBytes, maxDepth); defaults and env variables in limits.ts. */
  limits?: Partial<CheckpointLimits>;
}

export interface UnpickleResult {
  value: unknown;
  /** Offset just past the STOP opcode. */
  end: number;
  /** Inert records made for foreign globals, counted by global name. */
  inertRecords: Map<string, number>;
}

/** State attached by BUILD (e.g. OrderedDict._metadata in torch state dicts), kept out of the values. */
const buildState = new WeakMap<object, unknown>();

/** The state a BUILD opcode attached to `obj` (for a torch state dict: its `_metadata`), if any. */
export function pickleState(obj: object): unknown {
  return buildState.get(obj);
}

/** A value for an error message; any text from the file is quoted safely and cut short. */
export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return `tuple/list of ${v.length}`;
  if (v instanceof Map) return `dict of ${v.size}`;
  if (v instanceof PyCallable || v instanceof PyClassMarker || v instanceof StorageType || v instanceof ForeignGlobal) {
    return fileText(v.qualname);
  }
  if (v instanceof OpaqueObject) return `an inert ${fileText(v.qualname)} record`;
  if (typeof v === 'string') return `string ${quoteFileText(v, "'", 40)}`;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return `${typeof v} ${String(v).slice(0, 40)}`;
}

function isContainer(v: unknown): v is object {
  return Array.isArray(v) || v instanceof Map || v instanceof Set || v instanceof OpaqueObject;
}

/** What a container holds, for walks over the unpickled object (BUILD state included). */
function childrenOf(v: object): unknown[] {
  const state = buildState.get(v);
  const extra = state === undefined ? [] : [state];
  if (Array.isArray(v)) return extra.length ? [...v, ...extra] : v;
  if (v instanceof Map) return [...v.keys(), ...v.values(), ...extra];
  if (v instanceof Set) return [...v, ...extra];
  if (v instanceof OpaqueObject)
    return [...v.args, v.state, ...v.listItems, ...v.dictItems.keys(), ...v.dictItems.values()];
  return extra;
}

const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8');

/** The pickle machine: input cursor, stack, mark stack and memo, with the primitives opcodes use. */
export class Unpickler {
  readonly view: DataView;
  readonly memo = new Map<number, unknown>();
  stack: unknown[] = [];
  readonly metastack: unknown[][] = [];
  pos: number;
  /** Offset of the opcode being run (error messages point at it). */
  opPos: number;
  /** Set by STOP. */
  result: { value: unknown } | null = null;
  readonly label: string;
  readonly limits: CheckpointLimits;
  readonly foreignGlobals: ForeignGlobals;
  readonly inertRecords = new Map<string, number>();
  /**
   * Values pushed, marks set and memo entries written so far, against limits.maxObjects. Every
   * opcode adds at most one of each, so this one O(1) count bounds the stack, the mark stack and the
   * memo (and all of them stay below the pickle's length in opcodes).
   */
  private made = 0;
  /** Storages and tensors made so far, where foreign globals are read: a foreign global may not receive one. */
  private readonly tensorValues: WeakSet<object> | null;
  /** Inert records made for foreign calls, with their arguments: checked for tensors once, after the run. */
  private readonly foreignCalls: { qualname: string; args: unknown[] }[] = [];
  private readonly globalContext: GlobalContext;

  constructor(
    readonly data: Uint8Array,
    offset: number,
    readonly options: UnpickleOptions,
    /** The opcode table, indexed by opcode byte (pickle.ts). */
    private readonly opcodes: readonly ({ name: string; run: OpHandler } | undefined)[],
  ) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.pos = offset;
    this.opPos = offset;
    this.label = options.label ?? 'pickle';
    this.limits = resolveLimits(options.limits);
    this.foreignGlobals = options.opaqueGlobals ? 'inert' : (options.foreignGlobals ?? 'refuse');
    this.tensorValues = this.foreignGlobals === 'refuse' ? null : new WeakSet();
    const rebuild = options.rebuildTensor;
    this.globalContext = {
      describe,
      rebuildTensor:
        rebuild && ((storage, offset, size, stride) => this.noteTensor(rebuild(storage, offset, size, stride))),
    };
  }

  run(): UnpickleResult {
    while (this.result === null) {
      this.opPos = this.pos;
      const op = this.u8();
      const entry = this.opcodes[op];
      if (entry === undefined) this.fail(`unknown pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
      entry!.run(this, op);
    }
    this.checkStructure(this.result.value);
    this.checkForeignArgs();
    return { value: this.result.value, end: this.pos, inertRecords: this.inertRecords };
  }

  /**
   * Refuses objects that contain themselves and containers nested deeper than `maxDepth`: code
   * that walks the result (ours or a caller's) must never loop forever or overflow its stack.
   * One iterative pass; shared sub-objects are measured once (height of each container).
   */
  private checkStructure(root: unknown): void {
    if (!isContainer(root)) return;
    const IN_PROGRESS = -1;
    const heights = this.heights;
    heights.set(root, IN_PROGRESS);
    const frames: { node: object; children: unknown[]; next: number; height: number }[] = [
      { node: root, children: childrenOf(root), next: 0, height: 0 },
    ];
    const tooDeep = () =>
      this.fail(
        `containers nested more than ${this.limits.maxDepth} levels deep; ${limitHint('maxDepth', this.limits)}`,
      );
    while (frames.length > 0) {
      const f = frames[frames.length - 1]!;
      if (f.next < f.children.length) {
        const c = f.children[f.next++];
        if (this.tensorValues !== null && this.holdsTensorNow(c)) this.withTensor.add(f.node);
        if (!isContainer(c)) continue;
        const h = heights.get(c);
        if (h === IN_PROGRESS) {
          this.fail(
            'the pickled object contains itself (a container reachable from its own contents); ' +
              'checkpoints never hold cycles',
          );
        }
        if (h !== undefined) {
          f.height = Math.max(f.height, h + 1);
          continue;
        }
        if (frames.length >= this.limits.maxDepth) tooDeep();
        heights.set(c, IN_PROGRESS);
        frames.push({ node: c, children: childrenOf(c), next: 0, height: 0 });
      } else {
        frames.pop();
        heights.set(f.node, f.height);
        const parent = frames[frames.length - 1];
        if (parent) {
          parent.height = Math.max(parent.height, f.height + 1);
          if (this.withTensor.has(f.node)) this.withTensor.add(parent.node);
        }
      }
    }
    if (heights.get(root)! >= this.limits.maxDepth) tooDeep();
  }

  /** Height of each container reached from the result (filled by checkStructure). */
  private readonly heights = new Map<object, number>();
  /** Containers reached from the result that hold a storage or tensor at any depth (filled by checkStructure). */
  private readonly withTensor = new WeakSet<object>();

  private holdsTensorNow(v: unknown): boolean {
    return typeof v === 'object' && v !== null && (this.tensorValues!.has(v) || this.withTensor.has(v));
  }

  /**
   * A foreign global may not receive a storage or tensor (at any depth). Checked once after the run
   * from the containment computed by checkStructure, so each object is looked at once however many
   * calls share it (checking at each call walked a shared 10M-item list per call).
   */
  private checkForeignArgs(): void {
    if (this.tensorValues === null) return;
    for (const { qualname, args } of this.foreignCalls) {
      if (args.some((a) => this.holdsTensorNow(a))) {
        this.fail(
          `refusing to load global ${quoteFileText(qualname)}: it receives a tensor or storage and is not in the ` +
            'allow-list of functions that build tensors; nothing was executed',
        );
      }
    }
  }

  /** Counts one value, mark or memo entry against limits.maxObjects. */
  count(): void {
    if (++this.made > this.limits.maxObjects) {
      this.fail(
        `the pickle makes more than ${this.limits.maxObjects} values, marks and memo entries; ` +
          limitHint('maxObjects', this.limits),
      );
    }
  }

  private noteTensor<T>(v: T): T {
    if (this.tensorValues !== null && typeof v === 'object' && v !== null) this.tensorValues.add(v);
    return v;
  }

  fail(msg: string): never {
    throw new UnpicklingError(`${this.label}: ${msg} (at byte ${this.opPos})`);
  }

  // --- reading the input --------------------------------------------------------------------
  need(n: number): void {
    if (this.pos + n > this.data.byteLength) this.fail('pickle data is truncated');
  }
  u8(): number {
    this.need(1);
    return this.data[this.pos++]!;
  }
  /** A little-endian field of `size` bytes at the cursor, read by `get` at its offset; the cursor moves past it. */
  private field<T>(size: number, get: (offset: number) => T): T {
    this.need(size);
    const v = get(this.pos);
    this.pos += size;
    return v;
  }
  u16(): number {
    return this.field(2, (o) => this.view.getUint16(o, true));
  }
  u32(): number {
    return this.field(4, (o) => this.view.getUint32(o, true));
  }
  i32(): number {
    return this.field(4, (o) => this.view.getInt32(o, true));
  }
  u64(): number {
    const v = this.field(8, (o) => this.view.getBigUint64(o, true));
    if (v > BigInt(this.data.byteLength)) this.fail('length field larger than the pickle');
    return Number(v);
  }
  f64be(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, false);
    this.pos += 8;
    return v;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** A newline-terminated text argument (protocol 0 opcodes, GLOBAL), read as latin-1. */
  line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) this.fail('pickle data is truncated (missing newline)');
    const s = latin1.decode(this.data.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }
  utf8(n: number): string {
    return utf8.decode(this.bytes(n));
  }
  latin1(n: number): string {
    return latin1.decode(this.bytes(n));
  }

  // --- the stacks ---------------------------------------------------------------------------
  push(v: unknown): void {
    this.count();
    this.stack.push(v);
  }
  pop(): unknown {
    if (this.stack.length === 0) this.fail('stack underflow (corrupt pickle)');
    return this.stack.pop();
  }
  top(): unknown {
    if (this.stack.length === 0) this.fail('stack underflow (corrupt pickle)');
    return this.stack[this.stack.length - 1];
  }
  mark(): void {
    this.count();
    this.metastack.push(this.stack);
    this.stack = [];
  }
  /** Pops everything above the last MARK (and the mark), returning those items in order. */
  popMark(): unknown[] {
    const items = this.stack;
    const prev = this.metastack.pop();
    if (prev === undefined) this.fail('MARK missing (corrupt pickle)');
    this.stack = prev!;
    return items;
  }

  /** A memo write (PUT, BINPUT, LONG_BINPUT, MEMOIZE) of the top of the stack, counted against maxObjects. */
  memoSet(idx: number): void {
    const v = this.top();
    this.count();
    this.memo.set(idx, v);
  }

  // --- values -------------------------------------------------------------------------------
  /** The decimal memo index of a protocol-0 PUT/GET. */
  textIndex(what: string): number {
    const s = this.line();
    if (!/^\d{1,15}$/.test(s)) this.fail(`bad ${what} memo index ${quoteFileText(s)}`);
    return Number(s);
  }
  /** Refuses an integer longer than maxIntBytes before decoding it. */
  checkIntLength(nbytes: number, what: string): void {
    if (nbytes > this.limits.maxIntBytes) {
      this.fail(`${what} integer of ${nbytes} bytes exceeds the limit; ${limitHint('maxIntBytes', this.limits)}`);
    }
  }
  /** Two's-complement little-endian integer (LONG1/LONG4), decoded in linear time through hex. */
  decodeLong(n: number, what: string): number | bigint {
    this.checkIntLength(n, what);
    const b = this.bytes(n);
    if (n === 0) return 0;
    const hex = new Array<string>(n);
    for (let i = 0; i < n; i++) hex[i] = b[n - 1 - i]!.toString(16).padStart(2, '0');
    let v = BigInt(`0x${hex.join('')}`);
    if (b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    return narrowInt(v);
  }
  /** A decimal integer literal (protocol 0 INT/LONG). */
  decimalInt(s: string, what: string): number | bigint {
    // log10(256) < 2.41 decimal digits per byte.
    this.checkIntLength(Math.ceil(s.replace(/^[-+]/, '').length / 2.41), what);
    if (!/^[-+]?\d+$/.test(s)) this.fail(`bad ${what} literal ${quoteFileText(s)}`);
    return narrowInt(BigInt(s));
  }
  findGlobal(module: string, name: string): unknown {
    // Own properties only: a module named `constructor` or `__proto__` must not reach Object's prototype.
    const mod = Object.hasOwn(PY2_MODULES, module) ? PY2_MODULES[module]! : module;
    const qualname = `${mod}.${name}`;
    const g = lookupAllowed(qualname, this.globalContext);
    if (g !== undefined) return g;
    if (qualname === 'builtins.getattr' && this.foreignGlobals !== 'refuse') return this.getattrMarker();
    const isTorch = mod === 'torch' || mod.startsWith('torch.');
    if (this.foreignGlobals === 'inert') return new ForeignGlobal(qualname, 'always');
    if (this.foreignGlobals === 'data') {
      if (INERT_DATA_GLOBALS.has(qualname)) return new ForeignGlobal(qualname, 'always');
      // Unknown torch names are how tensors of unsupported kinds are built: refuse them here.
      if (!isTorch) return new ForeignGlobal(qualname, 'as-class');
    }
    const why = isTorch
      ? 'only dense tensors, parameters and storages of torch types are supported'
      : 'it is not in the allow-list of types a torch checkpoint may contain (this file holds other Python objects, ' +
        'or tries to run code)';
    return this.fail(
      `refusing to load global ${quoteFileText(qualname)}: ${why}; nothing was executed` + ` (${CONVERT_HINT})`,
    );
  }
  /**
   * builtins.getattr where foreign objects are read as data: only on an allow-listed foreign class
   * with an allow-listed attribute (ALLOWED_GETATTR), yielding an inert marker (an OpaqueObject
   * named `Class.attr` that cannot be called). In 'inert' mode any other pair is an inert record too.
   */
  private getattrMarker(): PyCallable {
    return new PyCallable('builtins.getattr', (args) => {
      const [cls, attr] = args;
      const owner = cls instanceof ForeignGlobal ? cls.qualname : null;
      if (owner !== null && typeof attr === 'string' && ALLOWED_GETATTR[owner]?.includes(attr)) {
        return new OpaqueObject(`${owner}.${attr}`);
      }
      if (this.foreignGlobals === 'inert')
        return this.foreignCall(new ForeignGlobal('builtins.getattr', 'always'), args, 'REDUCE');
      return this.fail(
        `refusing getattr(${describe(cls)}, ${describe(attr)}): only ${Object.entries(ALLOWED_GETATTR)
          .map(([c, names]) => `${c}.{${names.join(',')}}`)
          .join(', ')} are read (as inert markers); nothing was executed`,
      );
    });
  }

  /** An inert record for a foreign global, unless the call would run code or build a tensor. */
  private foreignCall(g: ForeignGlobal, args: unknown[], what: string): OpaqueObject {
    const asClass = what === 'NEWOBJ' || what === 'NEWOBJ_EX';
    if (g.callable === 'as-class' && !asClass) {
      this.fail(
        `refusing to load global ${quoteFileText(g.qualname)}: the pickle calls it (${what}) and it is not in the ` +
          'allow-list (only classes the pickle instantiates with NEWOBJ and known data types are read as inert ' +
          'records); ' +
          `nothing was executed (${CONVERT_HINT})`,
      );
    }
    // Whether the arguments hold a tensor is decided after the run (checkForeignArgs), once per object.
    this.foreignCalls.push({ qualname: g.qualname, args });
    this.inertRecords.set(g.qualname, (this.inertRecords.get(g.qualname) ?? 0) + 1);
    return new OpaqueObject(g.qualname, args);
  }
  call(callable: unknown, args: unknown, what: string): unknown {
    if (!Array.isArray(args)) this.fail(`${what}: arguments are not a tuple`);
    if (callable instanceof ForeignGlobal) return this.foreignCall(callable, args as unknown[], what);
    if (callable instanceof PyCallable) {
      try {
        return callable.call(args as unknown[]);
      } catch (err) {
        if (err instanceof UnpicklingError && !err.message.startsWith(this.label)) this.fail(err.message);
        throw err;
      }
    }
    return this.fail(`${what}: ${describe(callable)} cannot be called`);
  }
  setItem(d: unknown, k: unknown, v: unknown): void {
    if (d instanceof OpaqueObject) {
      d.dictItems.set(k, v);
      return;
    }
    if (!(d instanceof Map)) this.fail(`SETITEM on ${describe(d)}, not a dict`);
    (d as Map<unknown, unknown>).set(k, v);
  }
  appendTo(l: unknown, items: unknown[]): void {
    if (Array.isArray(l)) {
      for (const x of items) l.push(x);
      return;
    }
    if (l instanceof Set) {
      for (const x of items) l.add(x);
      return;
    }
    if (l instanceof OpaqueObject) {
      for (const x of items) l.listItems.push(x);
      return;
    }
    this.fail(`APPEND on ${describe(l)}, not a list`);
  }
  dictFromPairs(items: unknown[], what: string): Map<unknown, unknown> {
    if (items.length % 2 !== 0) this.fail(`${what} with an odd number of items`);
    const d = new Map<unknown, unknown>();
    for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
    return d;
  }
  persistentLoad(pid: unknown): unknown {
    if (!this.options.persistentLoad) this.fail('persistent id found but no persistent_load is available');
    return this.noteTensor(this.options.persistentLoad!(pid));
  }
  build(state: unknown, obj: unknown): void {
    if (obj instanceof OpaqueObject) obj.state = state;
    else if (typeof obj === 'object' && obj !== null) buildState.set(obj, state);
    else this.fail(`BUILD on ${describe(obj)}`);
  }
}

function narrowInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/**
 * How a user reads a file with foreign objects anyway: only `inspect` and `convert` take
 * --allow-unknown-globals (predict, eval and train do not), so the hint names convert, whose output
 * is a clean checkpoint every command reads; opaqueGlobals is the library option.
 */
const CONVERT_HINT =
  'to read such objects as inert placeholders, never called: `beitseg convert --allow-unknown-globals IN OUT` ' +
  'writes a checkpoint of the tensors alone that every command reads (library: opaqueGlobals)';

/** One opcode's implementation, run with the machine and the opcode byte. */
export type OpHandler = (m: Unpickler, op: number) => void;
