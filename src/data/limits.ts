/**
 * Size limits on decoded images and labels, checked from the file's header before any pixel is
 * decoded, so a small file that claims a huge size (an "image bomb") is refused instead of
 * exhausting memory.
 *
 * The default is sharp's own default limit (0x3FFF x 0x3FFF pixels). It can be raised or lowered
 * process-wide with the BEITSEG_MAX_PIXELS environment variable or `setMaxPixels` (the CLI's
 * `--max-pixels`), and per call with the readers' `maxPixels` option.
 */

/** sharp's default `limitInputPixels` (0x3FFF squared). */
export const DEFAULT_MAX_PIXELS = 0x3fff * 0x3fff;

export const MAX_PIXELS_ENV = 'BEITSEG_MAX_PIXELS';

function fromEnv(): number {
  const raw = process.env[MAX_PIXELS_ENV];
  if (raw === undefined || raw === '') return DEFAULT_MAX_PIXELS;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new Error(`${MAX_PIXELS_ENV}=${raw}: must be a positive integer (pixels per image)`);
  }
  return n;
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
  if (pixels > limit) {
    throw new Error(
      `${width}x${height} = ${pixels} pixels is over the limit of ${limit} pixels per image ` +
        `(raise it with --max-pixels or ${MAX_PIXELS_ENV})`,
    );
  }
}
