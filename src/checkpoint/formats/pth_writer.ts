/**
 * Writes a checkpoint in torch.save's zip format: `archive/data.pkl` (protocol-2 pickle),
 * `archive/byteorder`, one `archive/data/<key>` per tensor storage, `archive/version`; every
 * entry STORED (uncompressed) with its data 64-byte aligned, as torch's PyTorchStreamWriter
 * aligns it (a local-header extra field 'FB' padded with 'Z'), so torch.load can also mmap it.
 *
 * The zip container is written by hand: yazl (the usual writer) cannot add the local-header
 * extra field that aligns entry data, and the format needed here (STORED entries, sizes known
 * up front, no zip64) is a few fixed-size headers. The file goes to a temporary name and is
 * renamed into place once complete.
 */
import * as zlib from 'node:zlib';
import type { HostTensor } from '../../common/host_tensor.js';
import { writeAll, writeFileAtomic } from '../file_io.js';
import { pickleCheckpoint, type PickleValue } from './pickle_writer.js';

/** torch's kFieldAlignment. */
const ALIGNMENT = 64;
const LOCAL_HEADER = 30;
const CENTRAL_HEADER = 46;
const END_RECORD = 22;
const U32_LIMIT = 0xffffffff;
/** torch 1.13 writes version 3 for these records. */
const ARCHIVE_VERSION = '3\n';

interface Entry {
  name: string;
  data: Uint8Array;
}

interface Written {
  name: Buffer;
  crc: number;
  size: number;
  offset: number;
}

/** The local header (with the alignment extra field) for an entry starting at `offset`. */
function localHeader(name: Buffer, crc: number, size: number, offset: number): Buffer {
  const start = offset + LOCAL_HEADER + name.length + 4;
  const padding = (ALIGNMENT - (start % ALIGNMENT)) % ALIGNMENT;
  const h = Buffer.alloc(LOCAL_HEADER + name.length + 4 + padding, 'Z'.charCodeAt(0));
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(20, 4); // version needed: 2.0
  h.writeUInt16LE(0, 6); // flags
  h.writeUInt16LE(0, 8); // STORED
  h.writeUInt32LE(0, 10); // DOS time and date: none, as torch writes
  h.writeUInt32LE(crc, 14);
  h.writeUInt32LE(size, 18);
  h.writeUInt32LE(size, 22);
  h.writeUInt16LE(name.length, 26);
  h.writeUInt16LE(4 + padding, 28);
  name.copy(h, LOCAL_HEADER);
  const extra = LOCAL_HEADER + name.length;
  h.write('FB', extra, 'latin1');
  h.writeUInt16LE(padding, extra + 2);
  return h;
}

function centralHeader(w: Written): Buffer {
  const h = Buffer.alloc(CENTRAL_HEADER + w.name.length);
  h.writeUInt32LE(0x02014b50, 0);
  h.writeUInt16LE(20, 4); // made by
  h.writeUInt16LE(20, 6); // needed
  h.writeUInt16LE(0, 8);
  h.writeUInt16LE(0, 10);
  h.writeUInt32LE(0, 12);
  h.writeUInt32LE(w.crc, 16);
  h.writeUInt32LE(w.size, 20);
  h.writeUInt32LE(w.size, 24);
  h.writeUInt16LE(w.name.length, 28);
  h.writeUInt32LE(w.offset, 42);
  w.name.copy(h, CENTRAL_HEADER);
  return h;
}

function endRecord(count: number, cdSize: number, cdOffset: number): Buffer {
  const h = Buffer.alloc(END_RECORD);
  h.writeUInt32LE(0x06054b50, 0);
  h.writeUInt16LE(count, 8);
  h.writeUInt16LE(count, 10);
  h.writeUInt32LE(cdSize, 12);
  h.writeUInt32LE(cdOffset, 16);
  return h;
}

/** Writes the STORED, aligned zip of `entries` to the open file. */
function writeZip(fd: number, entries: Entry[], file: string): void {
  const written: Written[] = [];
  let offset = 0;
  for (const e of entries) {
    if (e.data.byteLength >= U32_LIMIT || offset >= U32_LIMIT) {
      throw new Error(`${file}: the checkpoint passes 4 GiB, which needs zip64 records this writer does not produce`);
    }
    const name = Buffer.from(e.name, 'utf8');
    const crc = zlib.crc32(e.data) >>> 0;
    const header = localHeader(name, crc, e.data.byteLength, offset);
    writeAll(fd, header);
    writeAll(fd, e.data);
    written.push({ name, crc, size: e.data.byteLength, offset });
    offset += header.length + e.data.byteLength;
  }
  const central = Buffer.concat(written.map(centralHeader));
  if (offset + central.length >= U32_LIMIT || written.length > 0xffff) {
    throw new Error(`${file}: the checkpoint passes the plain zip limits (4 GiB, 65535 entries); zip64 is not written`);
  }
  writeAll(fd, central);
  writeAll(fd, endRecord(written.length, central.length, offset));
}

/**
 * Saves `{'meta': meta, 'state_dict': OrderedDict(stateDict)}` as torch.save does (mmseg's
 * checkpoint layout), atomically. `meta` holds plain values (strings, numbers, lists, dicts).
 */
export function writeTorchCheckpoint(
  file: string,
  stateDict: Map<string, HostTensor>,
  meta: { [key: string]: PickleValue },
): void {
  writeTorchSave(file, { meta, state_dict: stateDict });
}

/** torch.save(obj, file) for any picklable `obj` (a bare state dict is a Map, as HF's pytorch_model.bin). */
export function writeTorchSave(file: string, obj: PickleValue): void {
  const { pickle, storages } = pickleCheckpoint(obj);
  const entries: Entry[] = [
    { name: 'archive/data.pkl', data: pickle },
    { name: 'archive/byteorder', data: Buffer.from('little') },
    ...storages.map((t, i) => ({ name: `archive/data/${i}`, data: t.data })),
    { name: 'archive/version', data: Buffer.from(ARCHIVE_VERSION) },
  ];
  writeFileAtomic(file, (fd) => writeZip(fd, entries, file));
}
