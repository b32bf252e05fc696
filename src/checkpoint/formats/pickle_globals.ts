/**
 * The Python globals a checkpoint pickle may name, in one table, and what each becomes in JS.
 *
 * Pickle's GLOBAL opcode normally imports a Python callable and REDUCE calls it. Nothing here
 * runs Python: a name in ALLOWED_GLOBALS is implemented in JS (tensor rebuild functions, storage
 * types, OrderedDict, sets, bytes); any other name is refused by the unpickler, or, where the
 * caller asks for it, read as an inert record (see pickle.ts). Keys are `module.name` after
 * Python-2 module renames.
 */
import type { DType } from '../../common/host_tensor.js';

/** A torch storage class named in a checkpoint (torch.FloatStorage, ...), mapped to its dtype. */
export class StorageType {
  constructor(
    readonly qualname: string,
    readonly dtype: DType | null,
  ) {}
}

/** A callable that the allow-list provides in place of a Python global. */
export class PyCallable {
  constructor(
    readonly qualname: string,
    readonly call: (args: unknown[]) => unknown,
  ) {}
}

/** A class marker (e.g. torch.Tensor) that may appear as an argument but is never called. */
export class PyClassMarker {
  constructor(readonly qualname: string) {}
}

export class UnpicklingError extends Error {}

/** What an implementation of a global may use from the caller. */
export interface GlobalContext {
  /** Builds a tensor from (storage, storage_offset, size, stride), as torch._utils._rebuild_tensor_v2. */
  rebuildTensor?: (storage: unknown, storageOffset: number, size: number[], stride: number[]) => unknown;
  /** Renders a value for an error message (names globals, sizes containers, quotes text safely). */
  describe: (v: unknown) => string;
}

type GlobalImpl = (args: unknown[], ctx: GlobalContext) => unknown;
/** An allow-list entry: a JS implementation to call, a class marker, or a storage type. */
export type AllowedGlobal = GlobalImpl | 'class-marker' | StorageType;

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

/** Python 2 module names that Python 3 maps when reading protocol <= 2 pickles. */
export const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

export function toInt(v: unknown, what: string, ctx: Pick<GlobalContext, 'describe'>): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER))
    return Number(v);
  throw new UnpicklingError(`${what}: expected an integer, got ${ctx.describe(v)}`);
}

function toIntList(v: unknown, what: string, ctx: GlobalContext): number[] {
  if (!Array.isArray(v)) throw new UnpicklingError(`${what}: expected a tuple of integers, got ${ctx.describe(v)}`);
  return v.map((x, i) => toInt(x, `${what}[${i}]`, ctx));
}

function rebuildTensor(args: unknown[], name: string, ctx: GlobalContext): unknown {
  if (args.length < 4) throw new UnpicklingError(`${name} expects at least 4 arguments, got ${args.length}`);
  if (!ctx.rebuildTensor) throw new UnpicklingError(`${name}: tensors are not expected in this pickle`);
  return ctx.rebuildTensor(
    args[0],
    toInt(args[1], `${name} storage_offset`, ctx),
    toIntList(args[2], `${name} size`, ctx),
    toIntList(args[3], `${name} stride`, ctx),
  );
}

/** Tensor subclasses / tensors with attributes: (rebuild function, type, its args, state). */
function rebuildFromType(args: unknown[], ctx: GlobalContext): unknown {
  const [func, type, funcArgs] = args;
  // The tensor's class must be an allowed one too (where foreign globals are read as inert data,
  // a foreign class would otherwise slip through as an argument that is never called).
  if (!(type instanceof PyClassMarker)) {
    throw new UnpicklingError(
      `_rebuild_from_type_v2: refusing tensor type ${ctx.describe(type)}: only torch.Tensor and ` +
        'torch.nn.Parameter are allowed; nothing was executed',
    );
  }
  if (!(func instanceof PyCallable)) {
    throw new UnpicklingError(`_rebuild_from_type_v2: first argument ${ctx.describe(func)} is not callable`);
  }
  if (!Array.isArray(funcArgs)) throw new UnpicklingError('_rebuild_from_type_v2: arguments are not a tuple');
  return func.call(funcArgs);
}

function orderedDict(args: unknown[], ctx: GlobalContext): Map<unknown, unknown> {
  const d = new Map<unknown, unknown>();
  if (args.length > 0 && args[0] !== null) {
    if (!Array.isArray(args[0]))
      throw new UnpicklingError(`OrderedDict: expected a list of pairs, got ${ctx.describe(args[0])}`);
    for (const pair of args[0]) {
      if (!Array.isArray(pair) || pair.length !== 2)
        throw new UnpicklingError('OrderedDict: expected (key, value) pairs');
      d.set(pair[0], pair[1]);
    }
  }
  return d;
}

function makeSet(args: unknown[], ctx: GlobalContext): Set<unknown> {
  if (args.length === 0) return new Set();
  if (!Array.isArray(args[0])) throw new UnpicklingError(`set: expected a list, got ${ctx.describe(args[0])}`);
  return new Set(args[0]);
}

/** Protocol 2 has no bytes opcode: Python 3 writes bytes as _codecs.encode(text, 'latin1'). */
function codecsEncode(args: unknown[], ctx: GlobalContext): Uint8Array {
  const [text, encoding] = args;
  if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) {
    throw new UnpicklingError(
      `_codecs.encode: only (str, 'latin1') is supported, got ${ctx.describe(text)}, ${ctx.describe(encoding)}`,
    );
  }
  return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
}

/** The allow-list: every global a torch checkpoint may name, and its JS stand-in. */
export const ALLOWED_GLOBALS: Readonly<Record<string, AllowedGlobal>> = {
  'torch._utils._rebuild_tensor_v2': (a, ctx) => rebuildTensor(a, '_rebuild_tensor_v2', ctx),
  'torch._utils._rebuild_tensor': (a, ctx) => rebuildTensor(a, '_rebuild_tensor', ctx),
  // Parameters are saved as (tensor, requires_grad, hooks[, state]); the tensor is all we keep.
  'torch._utils._rebuild_parameter': (a) => a[0],
  'torch._utils._rebuild_parameter_with_state': (a) => a[0],
  'torch._tensor._rebuild_from_type_v2': rebuildFromType,
  'torch._tensor.Tensor': 'class-marker',
  'torch.Tensor': 'class-marker',
  'torch.nn.parameter.Parameter': 'class-marker',
  'torch.Size': (a, ctx) => (a.length === 0 ? [] : toIntList(a[0], 'torch.Size', ctx)),
  ...Object.fromEntries(
    Object.entries(STORAGE_DTYPES).map(([name, dtype]) => [`torch.${name}`, new StorageType(`torch.${name}`, dtype)]),
  ),
  'collections.OrderedDict': orderedDict,
  'builtins.set': makeSet,
  'builtins.frozenset': makeSet,
  '_codecs.encode': codecsEncode,
};

/**
 * Globals that are plain data in the checkpoints of mmengine 1.x runners and similar tools: numpy
 * arrays, scalars and dtypes, mmengine's log buffers and config dicts, standard-library value
 * types. Where the reader is asked to read foreign objects as data (readCheckpoint's default), a
 * call of one of these yields an inert record (OpaqueObject: the name, the arguments and any
 * BUILD state, never executed). Other foreign names are read as inert records only when the pickle
 * instantiates them as classes (NEWOBJ), never when it calls them (REDUCE), which is how a pickle
 * runs code.
 */
export const INERT_DATA_GLOBALS: ReadonlySet<string> = new Set([
  'numpy.core.multiarray._reconstruct',
  'numpy._core.multiarray._reconstruct',
  'numpy.core.multiarray.scalar',
  'numpy._core.multiarray.scalar',
  'numpy.core.numeric._frombuffer',
  'numpy._core.numeric._frombuffer',
  'numpy.dtype',
  'numpy.ndarray',
  'mmengine.logging.history_buffer.HistoryBuffer',
  'mmengine.logging.message_hub.MessageHub',
  'mmengine.config.config.ConfigDict',
  'collections.defaultdict',
  'collections.deque',
  'collections.Counter',
  'datetime.datetime',
  'datetime.date',
  'datetime.time',
  'datetime.timedelta',
  'datetime.timezone',
  'pathlib.PosixPath',
  'pathlib.WindowsPath',
  'pathlib.PurePosixPath',
  'pathlib.PureWindowsPath',
  'builtins.slice',
  'builtins.complex',
  'builtins.range',
  'builtins.bytearray',
  'builtins.object',
  'copyreg._reconstructor',
  'copyreg.__newobj__',
  'argparse.Namespace',
  'torch.torch_version.TorchVersion',
  'torch.device',
]);

/**
 * `getattr(class, name)` pairs that foreign-data reading accepts: how pickle protocol 2 writes a
 * reference to a method (mmengine's HistoryBuffer.__getstate__ stores its statistics methods
 * min/max/current/mean). The result is an inert marker naming the method, never a callable.
 */
export const ALLOWED_GETATTR: Readonly<Record<string, readonly string[]>> = {
  'mmengine.logging.history_buffer.HistoryBuffer': ['min', 'max', 'current', 'mean'],
};

/** The JS value a GLOBAL opcode pushes for an allow-listed name, or undefined if it is not allowed. */
export function lookupAllowed(
  qualname: string,
  ctx: GlobalContext,
): PyCallable | PyClassMarker | StorageType | undefined {
  if (!Object.hasOwn(ALLOWED_GLOBALS, qualname)) return undefined;
  const entry = ALLOWED_GLOBALS[qualname]!;
  if (entry === 'class-marker') return new PyClassMarker(qualname);
  if (entry instanceof StorageType) return entry;
  return new PyCallable(qualname, (args) => entry(args, ctx));
}
