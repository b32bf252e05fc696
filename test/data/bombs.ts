/**
 * Image bombs for the limit tests: small files whose headers claim huge images. They are made
 * without ever holding the pixels: the PNG's zlib stream repeats one deflated segment of zeros
 * (each segment is compressed on its own and ends on a byte boundary, so the copies chain into
 * one valid stream) and its checksum is computed for all-zero data.
 */
import zlib from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function pngChunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  out.set(data, 8);
  out.writeUInt32BE(zlib.crc32(out.subarray(4, 8 + data.length)) >>> 0, 8 + data.length);
  return out;
}

/** A zlib stream of `n` zero bytes without materialising them. */
function zlibZeros(n: number): Buffer {
  const segment = 1 << 24;
  const sync = { finishFlush: zlib.constants.Z_SYNC_FLUSH, level: 9 };
  const full = zlib.deflateRawSync(Buffer.alloc(Math.min(segment, n)), sync);
  const parts: Buffer[] = [Buffer.from([0x78, 0xda])];
  for (let i = 0; i + segment <= n; i += segment) parts.push(full);
  if (n % segment) parts.push(zlib.deflateRawSync(Buffer.alloc(n % segment), sync));
  parts.push(Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff])); // empty final stored block
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((n % 65521) << 16) | 1) >>> 0);
  parts.push(adler);
  return Buffer.concat(parts);
}

/** A valid, all-black PNG of the given size: 8-bit grey (colour type 0) or RGB (2). */
export function zeroPng(width: number, height: number, colourType: 0 | 2 = 0): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = colourType;
  const rowBytes = width * (colourType === 2 ? 3 : 1);
  return Buffer.concat([
    SIGNATURE,
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlibZeros(height * (rowBytes + 1))),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

/** A copy of a baseline JPEG whose frame header (SOF0) claims `width` x `height`. */
export function jpegClaiming(jpeg: Uint8Array, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i + 9 < out.length; i++) {
    if (out[i] === 0xff && out[i + 1] === 0xc0) {
      out.writeUInt16BE(height, i + 5);
      out.writeUInt16BE(width, i + 7);
      return out;
    }
  }
  throw new Error('no SOF0 marker in the JPEG');
}
