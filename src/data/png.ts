/**
 * Minimal PNG codec for single-channel label maps.
 *
 * Why not sharp: libvips expands palette PNGs to RGB on load, while mmseg
 * reads annotations with pillow and keeps the raw palette INDICES (mode 'P').
 * Label PNGs are simple (grey or palette, usually 8-bit), so decoding them
 * here is short and exact; it also makes the written files independent of the
 * image library's version.
 *
 * Decoding follows pillow + numpy as mmseg uses them
 * (`np.array(Image.open(f)).astype(np.uint8)`):
 * - palette (colour type 3, 1/2/4/8 bit): the index values;
 * - grey 8-bit: the values; grey 1-bit: 0/1 (pillow mode '1'); grey 2/4-bit:
 *   scaled to 0..255 (pillow unpacks 'L;2'/'L;4' that way);
 * - grey 16-bit: the low byte (uint16 -> uint8 cast wraps, as numpy does);
 * - any colour type with more than one channel: an error (mmseg would end up
 *   with an H x W x C "label" and fail later).
 */

import zlib from 'node:zlib';
import { checkPixels, maxPixels } from './limits.js';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function isPng(buf: Uint8Array): boolean {
  return buf.length >= 8 && SIGNATURE.equals(Buffer.from(buf.buffer, buf.byteOffset, 8));
}

export interface DecodedPngLabel {
  data: Uint8Array;
  height: number;
  width: number;
  /** 'palette' or 'grey', for messages and tests. */
  kind: 'palette' | 'grey';
  bitDepth: number;
  /** RGB palette entries when the file has a PLTE chunk. */
  palette?: Uint8Array;
}

const COLOUR_TYPE_NAMES: Record<number, string> = {
  0: 'grey',
  2: 'RGB',
  3: 'palette',
  4: 'grey+alpha',
  6: 'RGBA',
};

export interface DecodePngOptions {
  /** Refuse images with more pixels than this, from IHDR, before inflating (default: ./limits.ts). */
  maxPixels?: number;
}

/** Decode a single-channel (grey or palette) PNG into raw uint8 values. Throws on anything else. */
export function decodePngLabel(buf: Uint8Array, opts: DecodePngOptions = {}): DecodedPngLabel {
  if (!isPng(buf)) throw new Error('not a PNG file (bad signature)');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 8;
  let width = 0;
  let height = 0;
  let bitDepth = 0;
  let colourType = -1;
  let interlace = 0;
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let sawEnd = false;
  while (pos + 12 <= buf.length) {
    const len = view.getUint32(pos);
    const type = String.fromCharCode(buf[pos + 4], buf[pos + 5], buf[pos + 6], buf[pos + 7]);
    const dataStart = pos + 8;
    const dataEnd = dataStart + len;
    if (dataEnd + 4 > buf.length) throw new Error(`truncated PNG (chunk ${type})`);
    const crc = view.getUint32(dataEnd);
    if (crc32(buf, pos + 4, dataEnd) !== crc) throw new Error(`corrupt PNG (CRC mismatch in chunk ${type})`);
    const data = buf.subarray(dataStart, dataEnd);
    if (type === 'IHDR') {
      width = view.getUint32(dataStart);
      height = view.getUint32(dataStart + 4);
      bitDepth = buf[dataStart + 8];
      colourType = buf[dataStart + 9];
      interlace = buf[dataStart + 12];
    } else if (type === 'PLTE') {
      palette = data.slice();
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      sawEnd = true;
      break;
    }
    pos = dataEnd + 4;
  }
  if (colourType < 0) throw new Error('PNG without IHDR chunk');
  if (!sawEnd && idat.length === 0) throw new Error('truncated PNG (no image data)');
  if (colourType !== 0 && colourType !== 3) {
    throw new Error(
      `label PNG must be single-channel (grey or palette), got colour type ${colourType} ` +
        `(${COLOUR_TYPE_NAMES[colourType] ?? 'unknown'})`,
    );
  }
  const okDepth = colourType === 3 ? [1, 2, 4, 8] : [1, 2, 4, 8, 16];
  if (!okDepth.includes(bitDepth)) throw new Error(`unsupported PNG bit depth ${bitDepth}`);
  if (width === 0 || height === 0) throw new Error(`PNG has an empty size ${width}x${height}`);
  checkPixels(width, height, opts.maxPixels ?? maxPixels());
  if (interlace !== 0 && interlace !== 1) throw new Error(`unknown PNG interlace method ${interlace}`);

  // Inflate no more than the rows IHDR announces (plus slack for trailing bytes some encoders
  // leave), so a stream that inflates far past its header is refused, not held in memory.
  const expected = filteredSize(width, height, bitDepth, interlace);
  let raw: Buffer;
  try {
    raw = zlib.inflateSync(Buffer.concat(idat), { maxOutputLength: expected + INFLATE_SLACK });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new Error(
        `corrupt PNG image data: inflates past the ${expected} bytes ` + `its ${width}x${height} header announces`,
      );
    }
    throw new Error(`corrupt PNG image data: ${(e as Error).message}`);
  }
  const out = new Uint8Array(width * height);
  const bpp = bitDepth === 16 ? 2 : 1; // bytes per complete pixel, at least 1, for filtering
  let rp = 0;
  const decodePass = (pw: number, ph: number, put: (x: number, y: number, v: number) => void): void => {
    if (pw === 0 || ph === 0) return;
    const rowBytes = Math.ceil((pw * bitDepth) / 8);
    let prev = new Uint8Array(rowBytes);
    let cur = new Uint8Array(rowBytes);
    for (let y = 0; y < ph; y++) {
      if (rp + 1 + rowBytes > raw.length) throw new Error('truncated PNG image data');
      const filter = raw[rp++];
      for (let i = 0; i < rowBytes; i++) cur[i] = raw[rp + i];
      rp += rowBytes;
      unfilter(filter, cur, prev, bpp);
      for (let x = 0; x < pw; x++) put(x, y, sampleAt(cur, x, bitDepth, colourType));
      const t = prev;
      prev = cur;
      cur = t;
    }
  };
  if (interlace === 0) {
    decodePass(width, height, (x, y, v) => {
      out[y * width + x] = v;
    });
  } else if (interlace === 1) {
    for (const [x0, y0, dx, dy] of ADAM7) {
      const pw = Math.ceil((width - x0) / dx);
      const ph = Math.ceil((height - y0) / dy);
      decodePass(Math.max(pw, 0), Math.max(ph, 0), (x, y, v) => {
        out[(y0 + y * dy) * width + x0 + x * dx] = v;
      });
    }
  } else {
    throw new Error(`unknown PNG interlace method ${interlace}`);
  }
  return { data: out, height, width, kind: colourType === 3 ? 'palette' : 'grey', bitDepth, palette };
}

const INFLATE_SLACK = 1 << 20;

/** Adam7 passes: (x0, y0, dx, dy). */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/** Bytes of filtered scanlines (a filter byte per row) for a single-channel image. */
function filteredSize(width: number, height: number, bitDepth: number, interlace: number): number {
  const passBytes = (pw: number, ph: number): number =>
    pw > 0 && ph > 0 ? ph * (1 + Math.ceil((pw * bitDepth) / 8)) : 0;
  if (interlace === 0) return passBytes(width, height);
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7) total += passBytes(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy));
  return total;
}

function sampleAt(row: Uint8Array, x: number, bitDepth: number, colourType: number): number {
  switch (bitDepth) {
    case 8:
      return row[x];
    case 16:
      return row[2 * x + 1]; // big-endian: low byte second
    default: {
      const perByte = 8 / bitDepth;
      const byte = row[Math.floor(x / perByte)];
      const shift = 8 - bitDepth * ((x % perByte) + 1);
      const v = (byte >> shift) & ((1 << bitDepth) - 1);
      if (colourType === 3 || bitDepth === 1) return v;
      return bitDepth === 2 ? v * 85 : v * 17;
    }
  }
}

function unfilter(filter: number, cur: Uint8Array, prev: Uint8Array, bpp: number): void {
  const n = cur.length;
  switch (filter) {
    case 0:
      return;
    case 1:
      for (let i = bpp; i < n; i++) cur[i] = (cur[i] + cur[i - bpp]) & 0xff;
      return;
    case 2:
      for (let i = 0; i < n; i++) cur[i] = (cur[i] + prev[i]) & 0xff;
      return;
    case 3:
      for (let i = 0; i < n; i++) {
        const left = i >= bpp ? cur[i - bpp] : 0;
        cur[i] = (cur[i] + ((left + prev[i]) >> 1)) & 0xff;
      }
      return;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? cur[i - bpp] : 0;
        const b = prev[i];
        const c = i >= bpp ? prev[i - bpp] : 0;
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        const pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        cur[i] = (cur[i] + pred) & 0xff;
      }
      return;
    default:
      throw new Error(`corrupt PNG (unknown row filter ${filter})`);
  }
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out, 4, 8 + data.length), 8 + data.length);
  return out;
}

/**
 * Encode an 8-bit single-channel PNG. With `palette` (RGB triples, up to 256
 * entries) the file is a palette PNG whose indices are the values (pillow
 * mode 'P', how VOC-style labels are stored); without it a grey PNG (mode 'L',
 * how ADE20K annotations are stored).
 */
export function encodePngLabel(data: Uint8Array, height: number, width: number, palette?: Uint8Array): Buffer {
  if (data.length !== height * width) throw new Error(`encodePngLabel: ${data.length} bytes for ${height}x${width}`);
  if (palette && (palette.length % 3 !== 0 || palette.length === 0 || palette.length > 768)) {
    throw new Error('encodePngLabel: palette must hold 1..256 RGB triples');
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = palette ? 3 : 0;
  // compression 0, filter method 0, no interlace
  // Filter "Up" on every row: label maps are mostly vertical runs, so it
  // compresses well and costs nothing to pick.
  const raw = Buffer.alloc(height * (width + 1));
  for (let y = 0; y < height; y++) {
    const o = y * (width + 1);
    raw[o] = 2;
    const row = y * width;
    for (let x = 0; x < width; x++) {
      raw[o + 1 + x] = (data[row + x] - (y > 0 ? data[row - width + x] : 0)) & 0xff;
    }
  }
  const parts = [SIGNATURE, chunk('IHDR', ihdr)];
  if (palette) parts.push(chunk('PLTE', palette));
  parts.push(chunk('IDAT', zlib.deflateSync(raw, { level: 6 })));
  parts.push(chunk('IEND', new Uint8Array(0)));
  return Buffer.concat(parts);
}
