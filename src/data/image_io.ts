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
 * Every decode first reads the header and refuses an image over the pixel limit (./limits.ts)
 * before any pixel is decoded.
 *
 * Writes are atomic: a temporary file in the same directory, then rename, so a
 * killed process never leaves a half-written image behind.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import sharp, { type SharpOptions } from 'sharp';
import { checkPixels, maxPixels } from './limits.js';
import { decodePngLabel, encodePngLabel, isPng } from './png.js';
import { makeImage, makeLabel, type LabelMap, type RgbImage } from './types.js';

/** What sharp's raw output reports (its typings omit `depth`, which it does set). */
interface RawInfo {
  width: number;
  height: number;
  channels: number;
  depth?: string;
}

async function readBytes(file: string, what: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`${what} file not found: ${file}`);
    throw new Error(`cannot read ${what} file ${file}: ${err.message}`);
  }
}

export interface PixelLimitOptions {
  /** Refuse images with more pixels than this, from the header (default: the process-wide limit, ./limits.ts). */
  maxPixels?: number;
}

export interface DecodeImageOptions extends PixelLimitOptions {
  /** Apply the EXIF Orientation tag (default true, like cv2 IMREAD_COLOR). */
  autoOrient?: boolean;
}

/**
 * Decodes with sharp after checking the header's size against the limit. sharp's own limit stays
 * on as a second guard (it also reads it from the header).
 */
async function decodeRaw(
  bytes: Uint8Array,
  limit: number,
  opts: SharpOptions,
): Promise<{ data: Buffer; info: RawInfo }> {
  // metadata() only parses the header; sharp's limit is off there so the size can be reported.
  const header = await sharp(bytes, { ...opts, limitInputPixels: false }).metadata();
  if (header.width === undefined || header.height === undefined) throw new Error('no image size in the header');
  checkPixels(header.width, header.height, limit);
  return sharp(bytes, { ...opts, limitInputPixels: limit })
    .raw()
    .toBuffer({ resolveWithObject: true });
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
    raw = await decodeRaw(bytes, opts.maxPixels ?? maxPixels(), { autoOrient, ignoreIcc: true, failOn: 'error' });
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
export async function readImage(file: string, opts: DecodeImageOptions = {}): Promise<RgbImage> {
  const bytes = await readBytes(file, 'image');
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
export async function readLabel(file: string, opts: PixelLimitOptions = {}): Promise<LabelMap> {
  const bytes = await readBytes(file, 'label');
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
