/**
 * Image and label file I/O.
 *
 * Images (JPEG/PNG/WebP/...) are decoded with sharp to RGB uint8 HWC, matching
 * what mmseg's LoadImageFromFile gets from cv2.imdecode(..., IMREAD_COLOR)
 * (before its BGR order, which we do not use):
 * - EXIF orientation IS applied: cv2's IMREAD_COLOR rotates/flips by the EXIF
 *   Orientation tag (checked with OpenCV 4.6: a 40x20 JPEG tagged
 *   orientation 6 decodes as 20 wide, 40 high); mmcv only skips it for the
 *   'color_ignore_orientation' flag, which the configs do not use.
 * - alpha is dropped without compositing; grey is replicated to 3 channels;
 *   16-bit samples become round(v / 256) (cv2 converts with scale 1/256).
 * - embedded ICC profiles are ignored (cv2 ignores them), so pixel values are
 *   the file's own.
 * JPEG decoding itself is libjpeg-turbo in both sharp and OpenCV.
 *
 * Labels are read with our own PNG decoder (./png.ts) to get raw index values
 * as pillow does for modes 'P' and 'L'; non-PNG label files fall back to sharp
 * and must be single-channel.
 *
 * Every read first checks the file: a regular file (a FIFO would block forever, /dev/zero never
 * ends, a directory is no image) no larger than the file size limit. Every decode then reads the
 * header and refuses, before any pixel is decoded, an image over the pixel limit or of a
 * degenerate shape (./limits.ts), and any format but the raster ones listed in IMAGE_FORMATS: SVG
 * in particular is a document to render (seconds to minutes of CPU for a few bytes), refused by
 * its content whatever the file's name, unless `allowSvg` is set.
 *
 * Writes are atomic: a temporary file in the same directory, then rename, so a
 * killed process never leaves a half-written image behind.
 */

import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp, { type SharpOptions } from 'sharp';
import { checkPixels, MAX_IMAGE_BYTES_ENV, maxImageBytes, maxPixels } from './limits.js';
import { decodePngLabel, encodePngLabel, isPng } from './png.js';
import { makeImage, makeLabel, type LabelMap, type RgbImage } from './types.js';

/** What sharp's raw output reports (its typings omit `depth`, which it does set). */
interface RawInfo {
  width: number;
  height: number;
  channels: number;
  depth?: string;
}

/** What a path is, in words, when it is not a regular file. */
function kindOf(st: import('node:fs').Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

export interface FileLimitOptions {
  /** Refuse files larger than this many bytes (default: BEITSEG_MAX_IMAGE_BYTES, else 512 MiB). */
  maxBytes?: number;
}

/**
 * Reads a whole regular file of at most `maxBytes`. Opened non-blocking and checked on the open
 * handle (fstat), so a FIFO neither blocks the open nor is read, and a path swapped after a
 * check cannot slip through.
 */
async function readBytes(file: string, what: string, opts: FileLimitOptions = {}): Promise<Buffer> {
  const limit = opts.maxBytes ?? maxImageBytes();
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`${what} file not found: ${file}`);
    throw new Error(`cannot read ${what} file ${file}: ${err.message}`);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new Error(`cannot read ${what} file ${file}: ${kindOf(st)}, not a regular file`);
    if (st.size > limit) {
      throw new Error(
        `cannot read ${what} file ${file}: ${st.size} bytes is over the limit of ${limit} bytes per file ` +
          `(raise it with ${MAX_IMAGE_BYTES_ENV})`,
      );
    }
    // One byte more than the size: a file that grows while it is read is still bounded.
    const buf = Buffer.alloc(st.size + 1);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await handle.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n > st.size) throw new Error(`cannot read ${what} file ${file}: it changed while being read`);
    return buf.subarray(0, n);
  } catch (e) {
    if ((e as Error).message.startsWith('cannot read')) throw e;
    throw new Error(`cannot read ${what} file ${file}: ${(e as Error).message}`);
  } finally {
    await handle.close();
  }
}

/** Raster formats decoded (sharp's names; AVIF reports as heif). */
export const IMAGE_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif'] as const;

/**
 * SVG by content, before libvips sees it: a text document whose first non-blank character is
 * '<' (XML, SVG) or a gzip stream (SVGZ). No raster format starts either way.
 */
function looksLikeSvg(bytes: Uint8Array): boolean {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) return true;
  let i = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) i = 3; // UTF-8 byte order mark
  while (i < bytes.length && i < 4096 && (bytes[i] === 0x20 || (bytes[i] >= 0x09 && bytes[i] <= 0x0d))) i++;
  return bytes[i] === 0x3c;
}

export interface PixelLimitOptions {
  /** Refuse images with more pixels than this, from the header (default: the process-wide limit, ./limits.ts). */
  maxPixels?: number;
}

export interface DecodeImageOptions extends PixelLimitOptions {
  /** Apply the EXIF Orientation tag (default true, like cv2 IMREAD_COLOR). */
  autoOrient?: boolean;
  /** Render SVG documents (default false: refused, whatever the file is named). */
  allowSvg?: boolean;
}

/**
 * The header's checks: not SVG (unless allowed), a raster format, a size within the pixel limit
 * and of a sane shape. Returns the size as decoded (after EXIF orientation where `autoOrient`).
 */
async function probe(
  bytes: Uint8Array,
  limit: number,
  opts: SharpOptions,
  allowSvg = false,
): Promise<{ width: number; height: number }> {
  if (!allowSvg && looksLikeSvg(bytes)) {
    throw new Error('SVG (or other XML/compressed text) is refused: it is a document to render, not an image');
  }
  // metadata() only parses the header; sharp's limit is off there so the size can be reported.
  const header = await sharp(bytes, { ...opts, limitInputPixels: false }).metadata();
  const format = header.format ?? 'unknown';
  const allowed: readonly string[] = allowSvg ? [...IMAGE_FORMATS, 'svg'] : IMAGE_FORMATS;
  if (!allowed.includes(format)) {
    throw new Error(`unsupported image format '${format}' (supported: ${IMAGE_FORMATS.join(', ')})`);
  }
  if (header.width === undefined || header.height === undefined) throw new Error('no image size in the header');
  checkPixels(header.width, header.height, limit);
  return opts.autoOrient && header.autoOrient ? header.autoOrient : { width: header.width, height: header.height };
}

/**
 * Decodes with sharp after checking the header (probe). sharp's own limit stays on as a second
 * guard (it also reads it from the header).
 */
async function decodeRaw(
  bytes: Uint8Array,
  limit: number,
  opts: SharpOptions,
  allowSvg = false,
): Promise<{ data: Buffer; info: RawInfo }> {
  await probe(bytes, limit, opts, allowSvg);
  return sharp(bytes, { ...opts, limitInputPixels: limit })
    .raw()
    .toBuffer({ resolveWithObject: true });
}

/**
 * An image file's size as `readImage` would decode it (EXIF orientation applied), from its header
 * alone, after the same checks (regular file, file size, format, pixel limit, shape): for planning
 * work on many images before decoding any.
 */
export async function readImageSize(
  file: string,
  opts: DecodeImageOptions & FileLimitOptions = {},
): Promise<{ width: number; height: number }> {
  const bytes = await readBytes(file, 'image', opts);
  try {
    const sharpOpts: SharpOptions = { autoOrient: opts.autoOrient ?? true, failOn: 'error' };
    return await probe(bytes, opts.maxPixels ?? maxPixels(), sharpOpts, opts.allowSvg);
  } catch (e) {
    throw new Error(`cannot decode image ${file}: ${(e as Error).message}`);
  }
}

/** Decode encoded image bytes (any format sharp reads) to RGB uint8 HWC. `name` is used in errors. */
export async function decodeImage(
  bytes: Uint8Array,
  name = '<buffer>',
  opts: DecodeImageOptions = {},
): Promise<RgbImage> {
  let raw: { data: Buffer; info: RawInfo };
  try {
    const autoOrient = opts.autoOrient ?? true;
    const sharpOpts: SharpOptions = { autoOrient, ignoreIcc: true, failOn: 'error' };
    raw = await decodeRaw(bytes, opts.maxPixels ?? maxPixels(), sharpOpts, opts.allowSvg);
  } catch (e) {
    throw new Error(`cannot decode image ${name}: ${(e as Error).message}`);
  }
  const { width, height, channels, depth } = raw.info;
  const n = width * height;
  let src: ArrayLike<number>;
  if (depth === 'uchar') {
    src = raw.data;
  } else if (depth === 'ushort') {
    const u16 = new Uint16Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength / 2);
    const u8 = new Uint8Array(u16.length);
    for (let i = 0; i < u16.length; i++) {
      // cv2 convertTo(CV_8U, 1/256): round half to even, saturate.
      const q = u16[i] / 256;
      let r = Math.round(q);
      if (r - q === 0.5 && r % 2 !== 0) r -= 1;
      u8[i] = Math.min(r, 255);
    }
    src = u8;
  } else {
    throw new Error(`cannot decode image ${name}: unsupported sample format ${depth}`);
  }
  const out = new Uint8Array(n * 3);
  if (channels === 3) {
    (out as Uint8Array).set(src as Uint8Array);
  } else if (channels === 4) {
    for (let i = 0; i < n; i++) {
      out[3 * i] = src[4 * i];
      out[3 * i + 1] = src[4 * i + 1];
      out[3 * i + 2] = src[4 * i + 2];
    }
  } else if (channels === 1 || channels === 2) {
    for (let i = 0; i < n; i++) {
      const v = src[channels * i];
      out[3 * i] = v;
      out[3 * i + 1] = v;
      out[3 * i + 2] = v;
    }
  } else {
    throw new Error(`cannot decode image ${name}: ${channels} channels not supported`);
  }
  return makeImage(height, width, out);
}

/** Read an image file as RGB uint8 HWC. Missing/unreadable files throw an Error naming the file. */
export async function readImage(file: string, opts: DecodeImageOptions & FileLimitOptions = {}): Promise<RgbImage> {
  const bytes = await readBytes(file, 'image', opts);
  return decodeImage(bytes, file, opts);
}

/** Decode label bytes to raw uint8 values (palette indices or grey levels). */
export async function decodeLabel(
  bytes: Uint8Array,
  name = '<buffer>',
  opts: PixelLimitOptions = {},
): Promise<LabelMap> {
  const limit = opts.maxPixels ?? maxPixels();
  if (isPng(bytes)) {
    try {
      const d = decodePngLabel(bytes, { maxPixels: limit });
      return makeLabel(d.height, d.width, d.data);
    } catch (e) {
      throw new Error(`cannot decode label ${name}: ${(e as Error).message}`);
    }
  }
  let raw: { data: Buffer; info: RawInfo };
  try {
    raw = await decodeRaw(bytes, limit, { failOn: 'error' });
  } catch (e) {
    throw new Error(`cannot decode label ${name}: ${(e as Error).message}`);
  }
  if (raw.info.channels !== 1 || raw.info.depth !== 'uchar') {
    throw new Error(
      `cannot decode label ${name}: labels must be single-channel 8-bit, got ${raw.info.channels} channel(s) of ` +
        `${raw.info.depth}`,
    );
  }
  return makeLabel(raw.info.height, raw.info.width, new Uint8Array(raw.data));
}

/** Read a label map file (8-bit grey or palette PNG, raw values). */
export async function readLabel(file: string, opts: PixelLimitOptions & FileLimitOptions = {}): Promise<LabelMap> {
  const bytes = await readBytes(file, 'label', opts);
  return decodeLabel(bytes, file, opts);
}

/** Write bytes to `file` atomically (temp file in the same directory + rename). */
export async function writeFileAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    await fs.writeFile(tmp, bytes);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw new Error(`cannot write ${file}: ${(e as Error).message}`);
  }
}

/** Write an 8-bit label PNG (grey, or palette when `palette` RGB triples are given). */
export async function writeLabelPng(file: string, label: LabelMap, palette?: Uint8Array): Promise<void> {
  await writeFileAtomic(file, encodePngLabel(label.data, label.height, label.width, palette));
}

export interface WriteImageOptions {
  /** JPEG quality 1..100 (default 90). */
  quality?: number;
}

/** Encode an RGB image as PNG or JPEG bytes. */
export async function encodeImage(
  img: RgbImage,
  format: 'png' | 'jpeg',
  opts: WriteImageOptions = {},
): Promise<Uint8Array> {
  // typed Uint8Array (a Buffer at run time) so the published typings need no @types/node
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  if (format === 'png') return s.png().toBuffer();
  return s.jpeg({ quality: opts.quality ?? 90 }).toBuffer();
}

/** Write an RGB image; format from the extension (.png, .jpg/.jpeg). */
export async function writeImage(file: string, img: RgbImage, opts: WriteImageOptions = {}): Promise<void> {
  const ext = path.extname(file).toLowerCase();
  let format: 'png' | 'jpeg';
  if (ext === '.png') format = 'png';
  else if (ext === '.jpg' || ext === '.jpeg') format = 'jpeg';
  else throw new Error(`cannot write ${file}: unsupported extension '${ext}' (use .png, .jpg or .jpeg)`);
  await writeFileAtomic(file, await encodeImage(img, format, opts));
}

/** An image given as a path, an image file's bytes (JPEG, PNG, WebP, ...) or decoded RGB, as decoded RGB. */
export async function toRgbImage(image: string | Uint8Array | RgbImage): Promise<RgbImage> {
  if (typeof image === 'string') return readImage(image);
  return image instanceof Uint8Array ? decodeImage(image, '<buffer>') : image;
}
