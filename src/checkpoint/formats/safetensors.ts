/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors format):
 * 8-byte little-endian header length N, N bytes of JSON header, then the raw tensor bytes.
 *
 * The reader loads the file with one read and returns tensors as zero-copy views into that
 * buffer. It validates what the reference (Rust) implementation validates, so a file we accept
 * is one the Python library accepts, and every error names the file and, where one is at
 * fault, the tensor key.
 *
 * The writer reproduces the reference layout: tensors ordered by descending dtype (the
 * reference's enum order, which puts wider types first and keeps every tensor aligned), then
 * by name; header JSON compact, `__metadata__` first, padded with spaces to a multiple of 8.
 */
import { DTYPE_BYTES, numel, type DType, type HostTensor } from '../../common/host_tensor.js';
import { readWholeFile, writeAll, writeFileAtomic } from '../file_io.js';
import { fileList, fileText, quoteFileText } from '../../common/safe_text.js';

export interface SafetensorsContent {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

const NAME_OF: Record<DType, string> = {
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  uint8: 'U8',
  bool: 'BOOL',
};
const DTYPE_OF: Record<string, DType> = Object.fromEntries(
  Object.entries(NAME_OF).map(([dtype, name]) => [name, dtype as DType]),
);
/** safetensors dtype names that exist but that HostTensor cannot carry (for a precise error). */
const KNOWN_UNSUPPORTED = new Set([
  'F64',
  'I8',
  'I16',
  'U16',
  'U32',
  'U64',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'C64',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
]);

/** Position of each dtype in the reference implementation's `Dtype` enum (used for write order). */
const DTYPE_RANK: Record<DType, number> = {
  bool: 0,
  uint8: 1,
  float16: 7,
  bfloat16: 8,
  int32: 9,
  float32: 11,
  int64: 13,
};

/** The reference implementation refuses headers above 100 MB; so do we (guards bogus lengths). */
const MAX_HEADER_BYTES = 100_000_000;

export function safetensorsDtypeName(dtype: DType): string {
  return NAME_OF[dtype];
}

/** Reads a .safetensors file; see the module comment for what is validated. */
export function readSafetensors(file: string): SafetensorsContent {
  const buf = readWholeFile(file);
  return parseSafetensors(buf, file);
}

/** Parses safetensors bytes already in memory; `file` only labels error messages. */
export function parseSafetensors(buf: Uint8Array, file = '<buffer>'): SafetensorsContent {
  const fail = (msg: string): never => {
    throw new Error(`${file}: invalid safetensors file: ${msg}`);
  };
  if (buf.byteLength < 8) fail(`file is ${buf.byteLength} bytes, shorter than the 8-byte header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES))
    fail(`header length ${n64} is larger than the 100 MB limit (not a safetensors file?)`);
  const n = Number(n64);
  if (8 + n > buf.byteLength)
    fail(`header length ${n} runs past the end of the ${buf.byteLength}-byte file (truncated?)`);
  let headerText: string;
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n));
  } catch {
    return fail('header is not valid UTF-8');
  }
  if (!headerText.startsWith('{')) fail('header does not start with "{"');
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (err) {
    return fail(`header is not valid JSON (${fileText((err as Error).message)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header JSON is not an object');

  const dataStart = 8 + n;
  const dataLength = buf.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { key: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [key, value] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('"__metadata__" is not an object');
      for (const [mk, mv] of Object.entries(value as Record<string, unknown>)) {
        if (typeof mv !== 'string') fail(`"__metadata__" entry ${quoteFileText(mk, '"')} is not a string`);
        metadata[mk] = mv as string;
      }
      continue;
    }
    const bad = (msg: string): never => fail(`tensor ${quoteFileText(key, '"')}: ${msg}`);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('entry is not an object');
    const info = value as Record<string, unknown>;
    const dtypeName = info.dtype;
    if (typeof dtypeName !== 'string') bad('missing "dtype"');
    const dtype = DTYPE_OF[dtypeName as string];
    if (dtype === undefined) {
      bad(
        KNOWN_UNSUPPORTED.has(dtypeName as string)
          ? `dtype ${dtypeName as string} is not supported (supported: ${Object.keys(DTYPE_OF).join(', ')})`
          : `unknown dtype ${quoteFileText(String(dtypeName), '"')}`,
      );
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      bad(`"shape" must be a list of non-negative integers, got ${shownJson(shape)}`);
    }
    const offsets = info.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
    ) {
      bad(`"data_offsets" must be two non-negative integers, got ${shownJson(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) bad(`data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLength)
      bad(`data_offsets [${begin}, ${end}] run past the ${dataLength} data bytes in the file (truncated?)`);
    const expected = numel(shape as number[]) * DTYPE_BYTES[dtype!];
    if (end - begin !== expected) {
      bad(
        `data_offsets [${begin}, ${end}] hold ${end - begin} bytes but shape [${fileList(shape as number[])}] of ` +
          `${dtypeName as string} needs ${expected}`,
      );
    }
    entries.push({ key, dtype: dtype!, shape: (shape as number[]).slice(), begin, end });
  }

  // As the reference reader: tensors must tile the data section exactly, without gaps or overlap.
  const byOffset = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of byOffset) {
    if (e.begin !== cursor) {
      fail(
        `tensor ${quoteFileText(e.key, '"')}: data_offsets [${e.begin}, ${e.end}] ` +
          `${e.begin < cursor ? 'overlap the previous tensor' : `leave a gap after byte ${cursor}`}`,
      );
    }
    cursor = e.end;
  }
  if (cursor !== dataLength)
    fail(`tensors cover ${cursor} bytes but the file has ${dataLength} data bytes after the header`);

  const tensors = new Map<string, HostTensor>();
  for (const e of entries) {
    tensors.set(e.key, { dtype: e.dtype, shape: e.shape, data: buf.subarray(dataStart + e.begin, dataStart + e.end) });
  }
  return { tensors, metadata };
}

/** A JSON value from the header for a message: printable and short. */
function shownJson(v: unknown): string {
  return fileText(JSON.stringify(v) ?? String(v), 80);
}

/** Byte-wise (UTF-8) comparison, as Rust compares `String`s. */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Tensor order used by the reference writer: wider dtypes first, then by name. */
export function safetensorsOrder(entries: [string, HostTensor][]): [string, HostTensor][] {
  return entries.slice().sort(([ka, a], [kb, b]) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || compareUtf8(ka, kb));
}

/** Builds the padded header bytes for tensors already in write order. */
export function buildSafetensorsHeader(ordered: [string, HostTensor][], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    const meta: Record<string, string> = {};
    // The reference writes a hash map here (arbitrary order); sorted keys keep our output reproducible.
    for (const k of Object.keys(metadata).sort(compareUtf8)) {
      if (typeof metadata[k] !== 'string') throw new Error(`safetensors metadata "${k}" must be a string`);
      meta[k] = metadata[k]!;
    }
    header.__metadata__ = meta;
  }
  let offset = 0;
  for (const [key, t] of ordered) {
    const size = t.data.byteLength;
    header[key] = { dtype: NAME_OF[t.dtype], shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.byteLength / 8) * 8, 0x20);
  json.copy(padded);
  return padded;
}

/**
 * Writes tensors to `file` in safetensors format, atomically (temporary file + rename), streaming
 * each tensor's bytes straight from its buffer (no concatenated copy of the whole file).
 */
export function writeSafetensors(
  file: string,
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata?: Record<string, string>,
): void {
  const entries: [string, HostTensor][] = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [key, t] of entries) {
    if (key === '__metadata__') throw new Error(`${file}: "__metadata__" is reserved and cannot be a tensor name`);
    if (key.length === 0) throw new Error(`${file}: empty tensor name`);
    if (!(t.dtype in NAME_OF)) throw new Error(`${file}: tensor "${key}": unsupported dtype ${String(t.dtype)}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${file}: tensor "${key}": invalid shape [${t.shape.join(', ')}]`);
    }
    const expected = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== expected) {
      throw new Error(
        `${file}: tensor "${key}": ${t.data.byteLength} data bytes but shape [${t.shape.join(', ')}] of ${t.dtype} ` +
          `needs ${expected}`,
      );
    }
  }
  const ordered = safetensorsOrder(entries);
  const header = buildSafetensorsHeader(ordered, metadata);
  const lengthPrefix = Buffer.alloc(8);
  lengthPrefix.writeBigUInt64LE(BigInt(header.byteLength));
  writeFileAtomic(file, (fd) => {
    writeAll(fd, lengthPrefix);
    writeAll(fd, header);
    for (const [, t] of ordered) writeAll(fd, t.data);
  });
}
