/**
 * The record that flows through a data pipeline (mmseg's `results` dict) and
 * the transform interface. Field names are camelCase versions of mmseg's keys.
 */

import type { Rng } from '../rng.js';
import type { LabelMap, RgbImage } from '../types.js';

export type HW = [height: number, width: number];

export interface Sample {
  imgPath?: string;
  segMapPath?: string;
  /** Set by the dataset; LoadAnnotations uses it unless its own option overrides. */
  reduceZeroLabel?: boolean;
  img?: RgbImage;
  gtSeg?: LabelMap;
  /** Image size as loaded. */
  oriShape?: HW;
  /** Image size after resizing/cropping (before padding). */
  imgShape?: HW;
  /** Size after Pad; the image region [0, imgShape) holds pixels, the rest is padding. */
  padShape?: HW;
  /** Target scale (w, h) the last Resize used (mmcv `scale`). */
  scale?: [number, number];
  /** (w_scale, h_scale) of the last resize. */
  scaleFactor?: [number, number];
  keepRatio?: boolean;
  flip?: boolean;
  flipDirection?: 'horizontal' | 'vertical' | null;
  /**
   * Image padding value in NORMALISED space for the padded region (mmseg pads
   * after Normalize in 0.x and in the data preprocessor in 1.x, so padding is
   * the mean colour: 0 after normalisation). Read by normalizeImage.
   */
  imgPadVal?: number;
  /** Set by PackSegInputs: the pipeline output is complete. */
  packed?: boolean;
  /** Free-form extras (dataset index etc.). */
  extra?: Record<string, unknown>;
}

export interface Transform {
  /** The config `type` this transform was built from. */
  readonly type: string;
  apply(sample: Sample, rng: Rng): Sample | Promise<Sample>;
}

/** A config dict as in mmseg configs: {type: 'RandomCrop', crop_size: [640, 640], ...}. */
export type TransformConfig = { type: string } & Record<string, unknown>;

/** Reject keys a transform does not know, naming the ones it does. */
export function checkKeys(cfg: TransformConfig, allowed: readonly string[]): void {
  for (const k of Object.keys(cfg)) {
    if (k === 'type') continue;
    if (!allowed.includes(k)) {
      const list = allowed.length ? allowed.join(', ') : '(none)';
      throw new Error(`${cfg.type}: unknown field '${k}'; supported fields: ${list}`);
    }
  }
}

export function requireImage(sample: Sample, who: string): RgbImage {
  if (!sample.img) throw new Error(`${who}: no image in the sample (put LoadImageFromFile first)`);
  return sample.img;
}

/** Parse a pair [a, b] (or a single number meaning [n, n]) of positive numbers. */
export function pairOf(v: unknown, what: string, integer = true): [number, number] {
  const ok = (x: unknown): x is number =>
    typeof x === 'number' && Number.isFinite(x) && x > 0 && (!integer || Number.isInteger(x));
  if (ok(v)) return [v, v];
  if (Array.isArray(v) && v.length === 2 && ok(v[0]) && ok(v[1])) return [v[0], v[1]];
  throw new Error(
    `${what} must be a positive ${integer ? 'integer' : 'number'} or a pair of them, got ${JSON.stringify(v)}`,
  );
}

export function numberIn(v: unknown, what: string, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) {
    throw new Error(`${what} must be a number in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
  }
  return v;
}

export function boolOf(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw new Error(`${what} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}
