/**
 * Reading torch.save files (.pth / .pt / .bin) without Python.
 *
 * Zip format (torch >= 1.6): an archive `<name>/data.pkl` (the pickled object, with tensors
 * stored as persistent ids that name a storage), `<name>/data/<key>` (each storage's raw
 * little-endian bytes, STORED uncompressed), `<name>/version`, and in newer torch
 * `<name>/byteorder`. We parse the zip directory with yauzl, unpickle data.pkl with the
 * allow-list unpickler, then read each referenced storage once into its own buffer and turn
 * each tensor's (storage, offset, size, stride) into a HostTensor: a zero-copy view when
 * contiguous, a gathered copy otherwise. Tensors sharing a storage share its buffer.
 *
 * Legacy format (torch < 1.6, or `_use_new_zipfile_serialization=False`): several pickles in
 * a row (magic number, protocol version, sys info, the object, the list of storage keys) and
 * then each storage as an int64 element count followed by its bytes. Also supported.
 *
 * Resource limits (limits.ts) are checked from the zip directory and the pickle before any
 * storage is read: the size of data.pkl, the storage bytes against the bytes the tensors use,
 * and the bytes that non-contiguous views would materialise.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import yauzl from 'yauzl';
import { DTYPE_BYTES, type DType, type HostTensor } from '../../common/host_tensor.js';
import { StorageType, unpickleAt, type ForeignGlobals, type UnpickleOptions } from './pickle.js';
import { isContiguous, requiredStorageElements, viewBytes } from './strided.js';
import { CheckpointLimitError, limitHint, resolveLimits, type CheckpointLimits } from './limits.js';
import { fileList, fileText, quoteFileText } from '../../common/safe_text.js';
import { detectFormat, LEGACY_TORCH_MAGIC } from './format.js';
import { openForReading, readExactly, readWholeFile } from '../file_io.js';

export interface PthReadOptions {
  /**
   * Also check every storage against its zip CRC-32 (default false). data.pkl is always checked.
   * Off by default because hashing costs about as much as reading the file again (seconds per GB),
   * and torch.load does not check it either; turn it on to vet a downloaded file.
   */
  verifyCrc?: boolean;
  /** Represent non-allow-listed globals as inert OpaqueObjects instead of refusing the file. */
  opaqueGlobals?: boolean;
  /**
   * Handling of globals outside the allow-list (see pickle.ts): readPth refuses them by default,
   * readCheckpoint reads runner metadata as inert data ('data'). opaqueGlobals: true means 'inert'.
   */
  foreignGlobals?: ForeignGlobals;
  /** Overrides of the resource limits (defaults and environment variables in limits.ts). */
  limits?: Partial<CheckpointLimits>;
}

export interface PthContent {
  /** The unpickled object: Maps for dicts, arrays for lists/tuples, HostTensor leaves. */
  value: unknown;
  format: 'pth-zip' | 'pth-legacy';
  /** Top-level folder inside the zip archive (torch uses the file's stem), or null for legacy. */
  archiveName: string | null;
  /** Number of distinct storages read and their total bytes. */
  storages: number;
  storageBytes: number;
  /** Inert records made for foreign globals (numpy values, mmengine buffers, ...), counted by name. */
  inertRecords: Map<string, number>;
}

/** A storage as named by a persistent id, before (and after) its bytes are read. */
interface StorageRef {
  key: string;
  typeName: string;
  dtype: DType;
  /** Elements the pickle says the storage holds. */
  numel: number;
  data: Uint8Array | null;
  /** Legacy storage views: this storage is `numel` elements of `base` starting at `elemOffset`. */
  viewOf: { base: StorageRef; elemOffset: number } | null;
}

interface PendingTensor {
  tensor: HostTensor;
  ref: StorageRef;
  offset: number;
  size: number[];
  stride: number[];
}

/** Placeholder until storages are read; replaced before readPth returns. */
const NOT_YET_READ = new Uint8Array(0);

/**
 * Shared persistent-id and tensor handling for both formats. `unpickle` collects storage
 * references and tensors; `resolve` fills in tensor bytes once the storages are loaded.
 */
class TorchObjectBuilder {
  readonly refs = new Map<string, StorageRef>();
  readonly pending: PendingTensor[] = [];

  constructor(private readonly file: string) {}

  options(label: string, opts: PthReadOptions, limits: CheckpointLimits): UnpickleOptions {
    return {
      label,
      opaqueGlobals: opts.opaqueGlobals ?? false,
      foreignGlobals: opts.foreignGlobals,
      limits,
      persistentLoad: (pid) => this.persistentLoad(pid),
      rebuildTensor: (storage, offset, size, stride) => this.rebuildTensor(storage, offset, size, stride),
    };
  }

  private persistentLoad(pid: unknown): StorageRef {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
      const what = Array.isArray(pid)
        ? `a tuple of ${pid.length} starting (${pid.slice(0, 3).map(plain).join(', ')})`
        : plain(pid);
      throw new Error(
        `${this.file}: unsupported persistent id ${what} (expected ('storage', type, key, location, numel))`,
      );
    }
    const [, type, key, location, numelRaw, viewMeta] = pid as unknown[];
    if (!(type instanceof StorageType))
      throw new Error(`${this.file}: storage type in persistent id is not a torch storage class`);
    if (type.dtype === null) {
      throw new Error(
        `${this.file}: storage ${fileText(String(key))} has type ${type.qualname}, whose dtype is not supported ` +
          `(supported: float32, float16, bfloat16, int64, int32, uint8, bool)`,
      );
    }
    const numel = typeof numelRaw === 'bigint' ? Number(numelRaw) : numelRaw;
    if (typeof key !== 'string' || typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
      throw new Error(`${this.file}: malformed storage persistent id (key ${plain(key)}, numel ${plain(numelRaw)})`);
    }
    void location; // device the storage was saved from; everything here is loaded to host memory
    let root = this.refs.get(key);
    if (root === undefined) {
      root = { key, typeName: type.qualname, dtype: type.dtype, numel, data: null, viewOf: null };
      this.refs.set(key, root);
    } else if (root.dtype !== type.dtype) {
      // One storage holds one element type; torch never names a storage with two.
      throw new Error(
        `${this.file}: storage ${fileText(key)} is referenced as both ${root.typeName} and ${type.qualname}`,
      );
    }
    // Legacy (torch < 1.6) storage views: (view_key, offset, view_size).
    if (Array.isArray(viewMeta)) {
      const [viewKey, off, viewSize] = viewMeta as unknown[];
      const viewRef: StorageRef = {
        key: `${key}[view ${String(viewKey)}]`,
        typeName: type.qualname,
        dtype: type.dtype,
        numel: Number(viewSize),
        data: null,
        viewOf: { base: root, elemOffset: Number(off) },
      };
      return viewRef;
    }
    return root;
  }

  private rebuildTensor(storage: unknown, offset: number, size: number[], stride: number[]): HostTensor {
    const ref = storage as StorageRef;
    if (typeof ref !== 'object' || ref === null || !('key' in ref) || !('numel' in ref)) {
      throw new Error(`${this.file}: tensor rebuilt from something that is not a storage`);
    }
    const tensor: HostTensor = { dtype: ref.dtype, shape: size.slice(), data: NOT_YET_READ };
    this.pending.push({ tensor, ref, offset, size, stride });
    return tensor;
  }

  /**
   * Before any storage is read: refuses storages much larger than what the tensors use, and
   * non-contiguous views that would materialise much more than the storages hold.
   * `storageBytes` gives the bytes a root storage would occupy once read.
   */
  checkBudget(storageBytes: (ref: StorageRef) => number, limits: CheckpointLimits): void {
    const rootOf = (ref: StorageRef) => ref.viewOf?.base ?? ref;
    const used = new Map<StorageRef, number>();
    let gathered = 0;
    for (const p of this.pending) {
      if (p.size.some((d) => d < 0) || p.stride.some((d) => d < 0) || p.offset < 0) continue; // refused by viewBytes
      const es = DTYPE_BYTES[p.ref.dtype];
      const root = rootOf(p.ref);
      const extent = (requiredStorageElements(p.offset, p.size, p.stride) + (p.ref.viewOf?.elemOffset ?? 0)) * es;
      used.set(root, Math.max(used.get(root) ?? 0, extent));
      if (!isContiguous(p.size, p.stride)) gathered += p.size.reduce((a, b) => a * b, 1) * es;
    }
    let total = 0;
    let usedTotal = 0;
    for (const ref of this.refs.values()) {
      const bytes = storageBytes(ref);
      total += bytes;
      usedTotal += Math.min(bytes, used.get(ref) ?? 0);
    }
    if (total > limits.storageRatio * usedTotal + limits.slackBytes) {
      throw new CheckpointLimitError(
        `${this.file}: storages hold ${total} bytes (decompressed) but the tensors use only ` +
          `${usedTotal}; ${limitHint('storageRatio', limits)} (plus slackBytes=${limits.slackBytes})`,
      );
    }
    if (gathered > limits.viewRatio * total + limits.slackBytes) {
      throw new CheckpointLimitError(
        `${this.file}: non-contiguous tensor views (e.g. stride-0 expanded) would materialise ` +
          `${gathered} bytes from ${total} bytes of storage; ${limitHint('viewRatio', limits)} (plus ` +
          `slackBytes=${limits.slackBytes})`,
      );
    }
  }

  /** Fills every tensor's bytes; `bytesOf` gives the raw bytes of a root storage. */
  resolve(bytesOf: (ref: StorageRef) => Uint8Array): void {
    const dataOf = (ref: StorageRef): Uint8Array => {
      if (ref.data !== null) return ref.data;
      if (ref.viewOf !== null) {
        const es = DTYPE_BYTES[ref.dtype];
        const base = dataOf(ref.viewOf.base);
        const start = ref.viewOf.elemOffset * es;
        const end = start + ref.numel * es;
        if (end > base.byteLength)
          throw new Error(`${this.file}: storage view ${fileText(ref.key)} runs past its base storage`);
        ref.data = base.subarray(start, end);
        return ref.data;
      }
      const bytes = bytesOf(ref);
      const es = DTYPE_BYTES[ref.dtype];
      if (bytes.byteLength < ref.numel * es) {
        throw new Error(
          `${this.file}: storage ${fileText(ref.key)} has ${bytes.byteLength} bytes but ${ref.typeName} of ` +
            `${ref.numel} elements needs ${ref.numel * es} (truncated?)`,
        );
      }
      ref.data = bytes;
      return bytes;
    };
    for (const p of this.pending) {
      const es = DTYPE_BYTES[p.ref.dtype];
      p.tensor.data = viewBytes(
        dataOf(p.ref),
        es,
        p.offset,
        p.size,
        p.stride,
        `${this.file}: tensor in storage ${fileText(p.ref.key)}`,
      );
    }
  }
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, autoClose: false }, (err, zip) => {
      if (err || !zip)
        reject(
          new Error(
            `${file}: not a valid zip archive (truncated or corrupt?): ${fileText(err?.message ?? 'unknown error')}`,
          ),
        );
      else resolve(zip);
    });
  });
}

function listEntries(zip: yauzl.ZipFile, file: string): Promise<yauzl.Entry[]> {
  return new Promise((resolve, reject) => {
    const entries: yauzl.Entry[] = [];
    zip.on('entry', (e: yauzl.Entry) => {
      entries.push(e);
      zip.readEntry();
    });
    zip.on('end', () => resolve(entries));
    zip.on('error', (err: Error) => reject(new Error(`${file}: corrupt zip archive: ${fileText(err.message)}`)));
    zip.readEntry();
  });
}

/** Reads one entry's bytes: STORED entries with one positioned read, others through yauzl's inflate stream. */
async function readEntry(
  zip: yauzl.ZipFile,
  fd: number,
  entry: yauzl.Entry,
  file: string,
  verifyCrc: boolean,
): Promise<Buffer> {
  const what = `${file}: entry ${fileText(entry.fileName)}`;
  let bytes: Buffer;
  if (entry.compressionMethod === 0) {
    if (entry.compressedSize !== entry.uncompressedSize) {
      throw new Error(
        `${what}: stored (uncompressed) entry with different sizes in the zip directory (${entry.compressedSize} and ` +
          `${entry.uncompressedSize}); corrupt archive`,
      );
    }
    let start: number;
    try {
      ({ fileDataStart: start } = await zip.readLocalFileHeaderPromise(entry, { minimal: true }));
    } catch (err) {
      throw new Error(`${what}: corrupt local header: ${fileText((err as Error).message)}`);
    }
    if (start + entry.compressedSize > zip.fileSize)
      throw new Error(`${what}: data runs past the end of the file (truncated?)`);
    bytes = readExactly(fd, start, entry.uncompressedSize, what);
  } else {
    let stream: Awaited<ReturnType<typeof zip.openReadStreamPromise>>;
    try {
      stream = await zip.openReadStreamPromise(entry);
    } catch (err) {
      throw new Error(`${what}: cannot read (${fileText((err as Error).message)})`);
    }
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of stream) chunks.push(chunk as Buffer);
    } catch (err) {
      throw new Error(`${what}: corrupt compressed data (${fileText((err as Error).message)})`);
    }
    const joined = Buffer.concat(chunks);
    // Own the memory (see file_io.ts) so typed-array views stay aligned.
    bytes = Buffer.allocUnsafeSlow(joined.byteLength);
    joined.copy(bytes);
  }
  if (verifyCrc && zlib.crc32(bytes) >>> 0 !== entry.crc32 >>> 0) {
    throw new Error(`${what}: CRC-32 mismatch (file corrupt)`);
  }
  return bytes;
}

async function readZipPth(file: string, opts: PthReadOptions): Promise<PthContent> {
  const limits = resolveLimits(opts.limits);
  const zip = await openZip(file);
  const fd = openForReading(file);
  try {
    const entries = await listEntries(zip, file);
    const byName = new Map(entries.map((e) => [e.fileName, e]));
    // torch names the top folder after the file stem, but files get renamed: find it from the entries.
    const pkls = entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.fileName));
    if (pkls.length === 0) {
      const torchscript = entries.some((e) => /^[^/]+\/(constants\.pkl|code\/)/.test(e.fileName));
      const names = entries
        .slice(0, 5)
        .map((e) => fileText(e.fileName))
        .join(', ');
      throw new Error(
        torchscript
          ? `${file}: this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; save ` +
              `model.state_dict() with torch.save instead`
          : `${file}: zip archive without <name>/data.pkl, not a PyTorch checkpoint (entries: ` +
              `${names}${entries.length > 5 ? ', ...' : ''})`,
      );
    }
    if (pkls.length > 1)
      throw new Error(
        `${file}: several data.pkl records (${fileList(
          pkls.map((e) => e.fileName),
          4,
        )}); not a single torch.save checkpoint`,
      );
    const prefix = pkls[0]!.fileName.slice(0, -'data.pkl'.length);
    const verifyStorages = opts.verifyCrc ?? false;

    const byteorder = byName.get(`${prefix}byteorder`);
    if (byteorder) {
      const order = (await readEntry(zip, fd, byteorder, file, true)).toString('latin1').trim();
      if (order !== 'little')
        throw new Error(
          `${file}: storages are ${order === 'big' ? 'big' : quoteFileText(order)}-endian; only little-endian ` +
            `checkpoints are supported`,
        );
    }

    const pklEntry = pkls[0]!;
    if (pklEntry.uncompressedSize > limits.maxPickleBytes) {
      throw new CheckpointLimitError(
        `${file}: ${fileText(pklEntry.fileName)} is ${pklEntry.uncompressedSize} bytes ` +
          `(decompressed); ${limitHint('maxPickleBytes', limits)}`,
      );
    }
    const pkl = await readEntry(zip, fd, pklEntry, file, true);
    const builder = new TorchObjectBuilder(file);
    const { value, inertRecords } = unpickleAt(
      pkl,
      0,
      builder.options(`${file}: ${fileText(pklEntry.fileName)}`, opts, limits),
    );

    const entryOf = (ref: StorageRef): yauzl.Entry => {
      const entry = byName.get(`${prefix}data/${ref.key}`);
      if (!entry) {
        throw new Error(
          `${file}: storage ${fileText(ref.key)} is referenced by data.pkl but ` +
            `${fileText(`${prefix}data/${ref.key}`)} is missing from the archive`,
        );
      }
      return entry;
    };
    builder.checkBudget((ref) => entryOf(ref).uncompressedSize, limits);

    // Read every referenced storage exactly once (async), then attach bytes to the tensors (sync).
    const loaded = new Map<string, Uint8Array>();
    let storageBytes = 0;
    for (const ref of builder.refs.values()) {
      const bytes = await readEntry(zip, fd, entryOf(ref), file, verifyStorages);
      loaded.set(ref.key, bytes);
      storageBytes += bytes.byteLength;
    }
    builder.resolve((ref) => loaded.get(ref.key)!);
    return {
      value,
      format: 'pth-zip',
      archiveName: prefix.slice(0, -1),
      storages: loaded.size,
      storageBytes,
      inertRecords,
    };
  } finally {
    zip.close();
    fs.closeSync(fd);
  }
}

function readLegacyPth(file: string, opts: PthReadOptions): PthContent {
  const limits = resolveLimits(opts.limits);
  const buf = readWholeFile(file);
  const builder = new TorchObjectBuilder(file);
  const label = `${file} (legacy torch.save format)`;
  let pos = 0;
  let inertRecords = new Map<string, number>();
  const next = (o: UnpickleOptions = { label, limits }) => {
    const r = unpickleAt(buf, pos, o);
    pos = r.end;
    if (r.inertRecords.size) inertRecords = r.inertRecords;
    return r.value;
  };
  const magic = next();
  if (magic !== 0x1950a86a20f9469cfc6cn) throw new Error(`${label}: bad magic number`);
  const protocol = next();
  if (protocol !== 1001) throw new Error(`${label}: unsupported legacy protocol version ${plain(protocol)}`);
  const sysInfo = next();
  if (sysInfo instanceof Map && sysInfo.get('little_endian') === false) {
    throw new Error(`${label}: saved on a big-endian machine; only little-endian checkpoints are supported`);
  }
  const value = next(builder.options(label, opts, limits));
  const keys = next();
  if (!Array.isArray(keys)) throw new Error(`${label}: storage key list missing`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const loaded = new Map<string, Uint8Array>();
  let storageBytes = 0;
  for (const key of keys) {
    const ref = builder.refs.get(String(key));
    // torch writes only storages the object references, so the element size is always known.
    if (!ref) throw new Error(`${label}: storage ${plain(key)} is stored but never referenced (corrupt file?)`);
    if (pos + 8 > buf.byteLength) throw new Error(`${label}: file truncated before storage ${plain(key)}`);
    const count = Number(view.getBigInt64(pos, true));
    pos += 8;
    const es = DTYPE_BYTES[ref.dtype];
    const nbytes = count * es;
    if (count < 0) throw new Error(`${label}: storage ${plain(key)} has a negative element count ${count}`);
    if (pos + nbytes > buf.byteLength) throw new Error(`${label}: file truncated inside storage ${plain(key)}`);
    loaded.set(String(key), buf.subarray(pos, pos + nbytes));
    storageBytes += nbytes;
    pos += nbytes;
  }
  builder.checkBudget((ref) => loaded.get(ref.key)?.byteLength ?? 0, limits);
  builder.resolve((ref) => {
    const bytes = loaded.get(ref.key);
    if (!bytes) throw new Error(`${label}: storage ${fileText(ref.key)} is referenced but not stored`);
    return bytes;
  });
  return { value, format: 'pth-legacy', archiveName: null, storages: loaded.size, storageBytes, inertRecords };
}

/** A value from the file for a message: text quoted safely, anything else by kind, all short. */
function plain(v: unknown): string {
  if (typeof v === 'string') return quoteFileText(v, "'", 40);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' || v === null)
    return fileText(String(v), 40);
  if (v instanceof StorageType) return v.qualname;
  return Array.isArray(v) ? `a tuple of ${v.length}` : typeof v;
}

/** Reads a torch.save file and returns the unpickled object with format details. */
export async function readPthContent(file: string, opts: PthReadOptions = {}): Promise<PthContent> {
  const format = detectFormat(file);
  if (format === 'safetensors') {
    throw new Error(
      `${file}: this is a safetensors file, not a torch.save (.pth) file; read it with readSafetensors or ` +
        `readCheckpoint`,
    );
  }
  return format === 'pth-zip' ? readZipPth(file, opts) : readLegacyPth(file, opts);
}

/**
 * Reads a torch.save file (zip or legacy format) and returns the unpickled object: Maps for
 * dicts and OrderedDicts, arrays for lists and tuples, HostTensor leaves.
 */
export async function readPth(file: string, opts: PthReadOptions = {}): Promise<unknown> {
  return (await readPthContent(file, opts)).value;
}

export { LEGACY_TORCH_MAGIC };
