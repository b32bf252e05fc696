/**
 * The operator's serving policy, applied per request before the image is decoded: which test
 * modes and TTA a client may ask for, and how much work one request may cost (pixels in
 * whole-image mode, windows in slide mode). A request outside it gets 400 with the reason.
 */
import { rescaleSize } from '../data/transforms/resize.js';
import { slideWindows } from '../models/segmentors/slide_job.js';
import { HttpError } from './errors.js';
import type { ModelDescription } from './model_description.js';

export interface ServePolicy {
  allowModes: ('slide' | 'whole')[];
  allowTta: boolean;
  /** Most pixels a whole-image request computes on (after the model's test Resize). */
  maxPixelsWhole: number;
  /** Most slide windows of one request (after the test Resize). */
  maxWindows: number;
}

export const DEFAULT_POLICY: ServePolicy = {
  allowModes: ['slide', 'whole'],
  allowTta: true,
  maxPixelsWhole: 1_048_576,
  maxWindows: 256,
};

/** Refuses a mode or TTA the policy does not allow (before the body is read). */
export function checkOptions(policy: ServePolicy, mode: 'slide' | 'whole', tta: boolean): void {
  if (!policy.allowModes.includes(mode)) {
    throw new HttpError(
      400,
      `mode=${mode} is not allowed on this server (--allow-modes ${policy.allowModes.join(',')})`,
    );
  }
  if (tta && !policy.allowTta) throw new HttpError(400, 'tta is not allowed on this server (--no-allow-tta)');
}

/** The size an image of width x height is computed at (the model's test Resize). */
export function computedSize(d: ModelDescription, width: number, height: number): [number, number] {
  if (!d.testScale) return [width, height];
  const [w, h] = rescaleSize(width, height, d.testScale);
  return [w, h];
}

/** Slide windows an image of width x height costs on this model (after its test Resize). */
export function windowCount(d: ModelDescription, width: number, height: number): number {
  const { crop_size: crop, stride } = d.testCfg;
  if (!crop || !stride) return 1;
  const [w, h] = computedSize(d, width, height);
  return slideWindows(h, w, crop, stride).length;
}

/** Refuses an image over the budget of its mode (called with the header, before decoding). */
export function checkBudget(
  policy: ServePolicy,
  d: ModelDescription,
  mode: 'slide' | 'whole',
  tta: boolean,
  width: number,
  height: number,
): void {
  const [cw, ch] = computedSize(d, width, height);
  if (mode === 'whole' && cw * ch > policy.maxPixelsWhole) {
    throw new HttpError(
      400,
      `image ${width}x${height} is computed at ${cw}x${ch} = ${cw * ch} pixels, over the mode=whole budget of ` +
        `${policy.maxPixelsWhole} (--max-pixels-whole): use mode=slide or a smaller image`,
    );
  }
  if (mode === 'slide') {
    // TTA runs every window once per scale and flip: count them all against the budget
    const n = windowCount(d, width, height) * (tta ? 2 : 1);
    if (n > policy.maxWindows) {
      throw new HttpError(
        400,
        `image ${width}x${height} needs ${n} slide windows${tta ? ' (with TTA)' : ''}, over the budget of ` +
          `${policy.maxWindows} (--max-windows)`,
      );
    }
  }
}
