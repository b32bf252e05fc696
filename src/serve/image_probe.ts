/**
 * Checks an uploaded image BEFORE decoding it: sharp's metadata reads only the header, so a
 * decompression bomb (a tiny PNG declaring 60000x60000 pixels) is refused by its declared size
 * without allocating its pixels. Then decodes it with the same decoder `beitseg predict` uses.
 */
import sharp, { type Metadata } from 'sharp';
import { decodeImage } from '../data/image_io.js';
import type { RgbImage } from '../data/types.js';
import { HttpError } from './errors.js';

/** Formats accepted (sharp's names). SVG and PDF are refused: they are programs to render, not images. */
export const ACCEPTED_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'tiff'] as const;

export interface ImageHeader {
  format: string;
  width: number;
  height: number;
}

/** Reads and checks the header: 400 empty, 415 not an image / unsupported / CMYK, 413 over `maxPixels`. */
export async function probeImage(bytes: Buffer, maxPixels: number): Promise<ImageHeader> {
  if (bytes.length === 0) throw new HttpError(400, 'empty body: send the image bytes (raw body or a multipart file)');
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new HttpError(415, `not a readable image: ${(e as Error).message}`);
  }
  const format = meta.format ?? 'unknown';
  if (!(ACCEPTED_FORMATS as readonly string[]).includes(format)) {
    throw new HttpError(415, `unsupported image format '${format}': send ${ACCEPTED_FORMATS.join(', ')}`);
  }
  if (meta.space === 'cmyk') throw new HttpError(415, 'CMYK images are not supported: convert the image to RGB');
  const { width, height } = meta;
  if (!width || !height) throw new HttpError(415, `${format} image without a width and height`);
  if (width * height > maxPixels) {
    throw new HttpError(
      413,
      `image is ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels} (--max-pixels)`,
    );
  }
  return { format, width, height };
}

/**
 * Probe, run `check` on the header (the serving policy's budgets: it throws to refuse), then
 * decode to RGB (400 when the pixel data is truncated or corrupt).
 */
export async function decodeUpload(
  bytes: Buffer,
  maxPixels: number,
  check?: (header: ImageHeader) => void,
): Promise<RgbImage> {
  check?.(await probeImage(bytes, maxPixels));
  try {
    return await decodeImage(bytes, 'upload');
  } catch (e) {
    throw new HttpError(400, (e as Error).message);
  }
}
