/**
 * Size limits on decoded images and labels, checked from the file's header before any pixel is
 * decoded, so a small file that claims a huge size (an "image bomb") is refused instead of
 * exhausting memory.
 *
 * The default, 40 million pixels (serve's default too), is far above any dataset's images yet
 * keeps one image's decode and its float32 copy under 1 GB; sharp's own default (0x3FFF squared,
 * 268 million) let a 691-byte JPEG claiming 16000x16000 be decoded (10.8 GB). It can be raised or
 * lowered process-wide with the BEITSEG_MAX_PIXELS environment variable or `setMaxPixels` (the
 * CLI's `--max-pixels`), and per call with the readers' `maxPixels` option.
 */

/** The default limit on slide windows per image (`beitseg predict --max-windows`), before any is run. */
export const DEFAULT_MAX_WINDOWS = 1000;

/** The default pixel limit per image. */
export const DEFAULT_MAX_PIXELS = 40_000_000;

/**
 * Longest side over shortest side beyond which an image is refused as degenerate (a 1 x 100000000
 * strip): no segmentation model sees anything in it, and resizing it costs minutes.
 */
export const MAX_ASPECT_RATIO = 1000;

/** Files larger than this are refused before they are read (BEITSEG_MAX_IMAGE_BYTES changes it). */
export const DEFAULT_MAX_IMAGE_BYTES = 512 * 1024 * 1024;

export const MAX_IMAGE_BYTES_ENV = 'BEITSEG_MAX_IMAGE_BYTES';

/** A positive integer from the environment variable `name`, else `fallback`; `what` names its unit in the error. */
function positiveIntFromEnv(name: string, fallback: number, what: string): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name}=${raw}: must be a positive integer (${what})`);
  return n;
}

/** The file size limit for image and label files (from BEITSEG_MAX_IMAGE_BYTES, else the default). */
export function maxImageBytes(): number {
  return positiveIntFromEnv(MAX_IMAGE_BYTES_ENV, DEFAULT_MAX_IMAGE_BYTES, 'bytes per file');
}

export const MAX_PIXELS_ENV = 'BEITSEG_MAX_PIXELS';

function fromEnv(): number {
  return positiveIntFromEnv(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS, 'pixels per image');
}

let processMaxPixels = fromEnv();

/** The process-wide pixel limit per image (input or label). */
export function maxPixels(): number {
  return processMaxPixels;
}

/** Sets the process-wide pixel limit per image; returns the previous one. */
export function setMaxPixels(n: number): number {
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`max pixels must be a positive integer, got ${n}`);
  const previous = processMaxPixels;
  processMaxPixels = n;
  return previous;
}

/**
 * Throws when `width` x `height` is over the limit. The message names the size and the limit;
 * callers prefix it with the file's name (one line in all).
 */
export function checkPixels(width: number, height: number, limit = maxPixels()): void {
  const pixels = width * height;
  if (width > 0 && height > 0 && Math.max(width, height) / Math.min(width, height) > MAX_ASPECT_RATIO) {
    throw new Error(`${width}x${height} is a degenerate image (one side over ${MAX_ASPECT_RATIO} times the other)`);
  }
  if (pixels > limit) {
    throw new Error(
      `${width}x${height} = ${pixels} pixels is over the limit of ${limit} pixels per image ` +
        `(raise it with --max-pixels or ${MAX_PIXELS_ENV})`,
    );
  }
}
