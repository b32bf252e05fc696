/**
 * Segmentation around a network that maps normalised windows to logits on host arrays (ONNX
 * Runtime in Node or in the browser): the test Resize, normalisation, whole or slide windows
 * with mmseg's averaging, the resize to the original size, TTA and argmax. It follows
 * api.ts's libtorch path step by step, on Float32Arrays, and imports no tensors: the browser
 * bundle runs this very file.
 */
import type { RgbImage } from '../data/types.js';
import { normalizeImage } from '../data/transforms/normalize.js';
import { flipImage } from '../data/transforms/flip.js';
import { resizeImage } from '../data/transforms/resize.js';
import { slideWindows } from '../models/segmentors/slide_windows.js';
import type { TtaOptions } from './api.js';
import { argmaxClasses, flipWidth, resizeBilinear, softmaxClasses } from './host_ops.js';
import type { ModelMeta } from './model_meta.js';
import { DEFAULT_TTA_SCALES, imageScaledSize, scaledTestSize, testResize } from './resize_plan.js';

/** A network on host arrays: logits [n, C, h, w] for normalised images [n, 3, h, w]. */
export interface WindowRunner {
  run(input: Float32Array, n: number, h: number, w: number): Promise<Float32Array>;
}

export interface HostModel {
  meta: ModelMeta;
  runner: WindowRunner;
  /** Where the model came from, for messages. */
  source: string;
}

export interface HostInferenceOptions {
  mode?: 'whole' | 'slide';
  noResize?: boolean;
  windowBatch?: number;
  tta?: boolean | TtaOptions;
  /** Called after each batch of slide windows. */
  onWindow?: (done: number, total: number) => void;
}

export interface HostResult {
  pred: Int32Array;
  height: number;
  width: number;
  /** [C, H, W] at the original size: logits, or averaged probabilities with TTA. */
  logits: Float32Array;
  kind: 'logits' | 'probs';
}

function checkWindow(m: HostModel, h: number, w: number, what: string): void {
  const win = m.meta.window;
  if (win && (win[0] !== h || win[1] !== w)) {
    throw new Error(
      `${m.source} runs ${win[0]}x${win[1]} windows only, but ${what} is ${h}x${w}; ` +
        'export with --dynamic for other sizes',
    );
  }
}

/** Logits [C, h, w] of a normalised [3, h, w] image by the test mode (mmseg's inference()). */
async function networkLogits(m: HostModel, x: Float32Array, h: number, w: number, o: HostInferenceOptions) {
  const c = m.meta.numClasses;
  const mode = o.mode ?? m.meta.testCfg.mode;
  if (mode === 'whole') {
    checkWindow(m, h, w, 'the image in whole mode');
    return m.runner.run(x, 1, h, w);
  }
  const { crop_size: crop, stride } = m.meta.testCfg;
  if (!crop || !stride) throw new Error(`${m.source}: slide inference needs test_cfg.crop_size and stride`);
  const windows = slideWindows(h, w, crop, stride);
  const sum = new Float32Array(c * h * w);
  const count = new Float32Array(h * w);
  const batch = Math.max(1, o.windowBatch ?? 1);
  for (let start = 0; start < windows.length; start += batch) {
    const group = windows.slice(start, start + batch);
    const wh = group[0].y2 - group[0].y1;
    const ww = group[0].x2 - group[0].x1;
    checkWindow(m, wh, ww, 'a slide window');
    const crops = new Float32Array(group.length * 3 * wh * ww);
    group.forEach((win, k) => {
      for (let ch = 0; ch < 3; ch++) {
        for (let y = 0; y < wh; y++) {
          const from = ch * h * w + (win.y1 + y) * w + win.x1;
          crops.set(x.subarray(from, from + ww), ((k * 3 + ch) * wh + y) * ww);
        }
      }
    });
    const logits = await m.runner.run(crops, group.length, wh, ww);
    group.forEach((win, k) => {
      for (let ch = 0; ch < c; ch++) {
        for (let y = 0; y < wh; y++) {
          const src = ((k * c + ch) * wh + y) * ww;
          const dst = ch * h * w + (win.y1 + y) * w + win.x1;
          for (let i = 0; i < ww; i++) sum[dst + i] += logits[src + i];
        }
      }
      for (let y = win.y1; y < win.y2; y++) for (let i = win.x1; i < win.x2; i++) count[y * w + i] += 1;
    });
    o.onWindow?.(Math.min(start + batch, windows.length), windows.length);
  }
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) sum[ch * h * w + p] /= count[p];
  return sum;
}

/** Logits of one view at the original image's size. */
async function viewLogits(m: HostModel, view: RgbImage, img: RgbImage, o: HostInferenceOptions) {
  const x = normalizeImage(view, { mean: m.meta.mean, std: m.meta.std });
  const logits = await networkLogits(m, x, view.height, view.width, o);
  const c = m.meta.numClasses;
  return resizeBilinear(logits, c, view.height, view.width, img.height, img.width, m.meta.alignCorners);
}

/** Segments one decoded RGB image as api.ts's inferenceModel does. */
export async function segmentHost(m: HostModel, img: RgbImage, o: HostInferenceOptions = {}): Promise<HostResult> {
  const c = m.meta.numClasses;
  const plane = img.height * img.width;
  let out: Float32Array;
  if (!o.tta) {
    out = await viewLogits(m, o.noResize ? img : testResize(img, m.meta.scale), img, o);
  } else {
    const tta = o.tta === true ? {} : o.tta;
    const fromCfg = tta.scales === undefined && tta.minSize === undefined ? m.meta.tta : null;
    const scales = tta.scales ?? fromCfg?.scales ?? DEFAULT_TTA_SCALES;
    const flips = tta.flip === false || fromCfg?.flip === false ? [false] : [false, true];
    out = new Float32Array(c * plane);
    for (const ratio of scales) {
      const [h, w] = fromCfg
        ? imageScaledSize(img.width, img.height, ratio)
        : scaledTestSize(img, o.noResize ? null : m.meta.scale, ratio, tta.minSize ?? 0);
      const resized = h === img.height && w === img.width ? img : resizeImage(img, h, w);
      for (const flip of flips) {
        const view = flip ? flipImage(resized, 'horizontal') : resized;
        const probs = softmaxClasses(await viewLogits(m, view, img, o), c, plane);
        if (flip) flipWidth(probs, c, img.height, img.width);
        for (let i = 0; i < out.length; i++) out[i] += probs[i];
      }
    }
    const total = scales.length * flips.length;
    for (let i = 0; i < out.length; i++) out[i] /= total;
  }
  const pred = argmaxClasses(out, c, plane);
  return { pred, height: img.height, width: img.width, logits: out, kind: o.tta ? 'probs' : 'logits' };
}
