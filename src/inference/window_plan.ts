/**
 * How many forward passes one inference takes, from the image's size alone (before decoding it):
 * the views (one, or each TTA scale and flip) at the sizes the test pipeline gives them, and the
 * slide windows of each. A large image under a config without a test Resize can need thousands
 * of windows (minutes to hours); callers print the count and refuse over a limit (issue 25.9).
 */
import { rescaleSize } from '../data/transforms/resize.js';
import type { Dict } from '../config/schema.js';
import type { TestConfig } from '../models/segmentors/encoder_decoder.js';
import { slideWindows } from '../models/segmentors/slide_job.js';
import { scaledTestSize } from './preprocess.js';
import { imageScaledSize, ttaFromConfig } from './tta_config.js';

export { DEFAULT_MAX_WINDOWS } from '../data/limits.js';

export interface ViewOptions {
  mode?: 'whole' | 'slide';
  noResize?: boolean;
  tta?: boolean | { scales?: number[]; flip?: boolean; minSize?: number };
}

/** What a plan needs of a model: its test config, test Resize scale and whole config (TTA). */
export interface Plannable {
  model: { testCfg: TestConfig };
  preprocess: { scale: [number, number] | null };
  config: Dict;
}

/**
 * The TTA views of a w x h image: each scale's [h, w] and the flips applied to each, as
 * SegTTAModel runs them (the config's tta_pipeline unless scales or minSize are given).
 */
export function ttaViews(
  m: Plannable,
  width: number,
  height: number,
  noResize: boolean,
  tta: { scales?: number[]; flip?: boolean; minSize?: number },
  defaultScales: readonly number[],
): { sizes: [number, number][]; flips: boolean[] } {
  const fromCfg = tta.scales === undefined && tta.minSize === undefined ? ttaFromConfig(m.config) : null;
  const scales = tta.scales ?? fromCfg?.scales ?? defaultScales;
  const flips = tta.flip === false || fromCfg?.flip === false ? [false] : [false, true];
  const sizes = scales.map((ratio) =>
    fromCfg
      ? imageScaledSize(width, height, ratio)
      : scaledTestSize({ width, height }, noResize ? null : m.preprocess.scale, ratio, tta.minSize ?? 0),
  );
  return { sizes, flips };
}

export interface WindowPlan {
  mode: 'whole' | 'slide';
  /** Forward inputs: 1, or TTA scales x flips. */
  views: number;
  /** Forward passes of one window (slide) or one whole view in all. */
  windows: number;
  /** The slide crop [h, w], null in whole mode. */
  crop: [number, number] | null;
  /** The largest view's [h, w] as the model sees it. */
  largest: [number, number];
}

export function planWindows(
  m: Plannable,
  width: number,
  height: number,
  opts: ViewOptions,
  defaultTtaScales: readonly number[],
): WindowPlan {
  const noResize = opts.noResize ?? false;
  let sizes: [number, number][];
  let flips = 1;
  if (opts.tta) {
    const v = ttaViews(m, width, height, noResize, opts.tta === true ? {} : opts.tta, defaultTtaScales);
    sizes = v.sizes;
    flips = v.flips.length;
  } else {
    const [w, h] = noResize || !m.preprocess.scale ? [width, height] : rescaleSize(width, height, m.preprocess.scale);
    sizes = [[h, w]];
  }
  const mode = opts.mode ?? m.model.testCfg.mode;
  const crop = mode === 'slide' ? (m.model.testCfg.crop_size ?? null) : null;
  const stride = m.model.testCfg.stride;
  let windows = 0;
  for (const [h, w] of sizes) {
    windows += flips * (crop && stride ? slideWindows(h, w, crop, stride).length : 1);
  }
  const largest = sizes.reduce((a, b) => (b[0] * b[1] > a[0] * a[1] ? b : a));
  return { mode, views: sizes.length * flips, windows, crop, largest };
}

/** One line describing a plan, e.g. "8649 slide windows of 64x64 over 4000x4000". */
export function describePlan(p: WindowPlan): string {
  const over = `${p.largest[1]}x${p.largest[0]}${p.views > 1 ? ` (largest of ${p.views} TTA views)` : ''}`;
  return p.crop
    ? `${p.windows} slide windows of ${p.crop[1]}x${p.crop[0]} over ${over}`
    : `${p.windows} whole-image pass${p.windows > 1 ? 'es' : ''} of ${over}`;
}
