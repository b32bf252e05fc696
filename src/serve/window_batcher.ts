/**
 * Slide inference split into windows that can be batched ACROSS requests: each request becomes
 * a WindowJob (its normalised input, mmseg's window grid and the running sum / count maps), and
 * `runWindowBatch` sends windows of several jobs through the network in one forward pass.
 *
 * Per job the arithmetic is exactly `inferenceModel`'s single-scale slide path (testResize,
 * toInputTensor, EncoderDecoder.slideInference's sum / count, then the bilinear resize to the
 * original size): only which windows share a forward pass differs. The model's own
 * slideInference batches windows of one image; batching windows of different images needs the
 * per-job state below, which the inference layer does not expose.
 */
import type { SegModel } from '../inference/api.js';
import { resolvePolicy } from '../inference/precision.js';
import { windowForward } from '../inference/window_forward.js';
import { testResize, toInputTensor } from '../inference/preprocess.js';
import { addWindow, slideWindows, type Window } from '../models/segmentors/encoder_decoder.js';
import type { RgbImage } from '../data/types.js';
import { interpolate } from '../tensor/functional.js';
import { autocast, deviceTypeOf, noGrad, type AutocastDType } from '../tensor/runtime.js';
import { tidy } from '../tensor/scope.js';
import { cat, zeros, type Tensor } from '../tensor/tensor.js';

export interface WindowJob {
  height: number;
  width: number;
  input: Tensor;
  windows: Window[];
  /** Index of the next window to compute. */
  next: number;
  sum: Tensor;
  count: Tensor;
}

/** Prepares one image for windowed slide inference (allocates its tensors; call disposeWindowJob when done). */
export function createWindowJob(m: SegModel, img: RgbImage): WindowJob {
  const crop = m.model.testCfg.crop_size,
    stride = m.model.testCfg.stride;
  if (!crop || !stride) throw new Error('slide inference needs model.test_cfg.crop_size and stride');
  const input = toInputTensor(testResize(img, m.preprocess.scale), m.preprocess, m.device);
  const [, , h, w] = input.shape;
  return {
    height: img.height,
    width: img.width,
    input,
    windows: slideWindows(h, w, crop, stride),
    next: 0,
    sum: zeros([1, m.model.numClasses, h, w], 'float32', m.device),
    count: zeros([1, 1, h, w], 'float32', m.device),
  };
}

export function windowsLeft(job: WindowJob): number {
  return job.windows.length - job.next;
}

/** The [rows, cols] of a job's next window: only windows of one shape can share a forward pass. */
export function nextWindowShape(job: WindowJob): string {
  const win = job.windows[job.next];
  return `${win.y2 - win.y1}x${win.x2 - win.x1}`;
}

export interface BatchEntry {
  job: WindowJob;
  /** How many of the job's next windows go into this batch. */
  take: number;
}

/** One forward pass over the next windows of the given jobs (all of one shape), accumulated into each job. */
export function runWindowBatch(m: SegModel, entries: BatchEntry[], amp: AutocastDType | null): void {
  const picked: { job: WindowJob; win: Window }[] = [];
  for (const { job, take } of entries) {
    for (let k = 0; k < take; k++) picked.push({ job, win: job.windows[job.next + k] });
    job.next += take;
  }
  // the model's precision policy (initModel's, e.g. int8) with this engine's amp: what inferenceModel would run
  const policy = resolvePolicy(m.precision, { amp });
  const forward = windowForward(m.model, policy, m.cudaGraphs ?? false);
  noGrad(() =>
    autocast(deviceTypeOf(m.device), policy.amp, () =>
      tidy(() => {
        const crops = picked.map(({ job, win }) => job.input.slice(2, win.y1, win.y2).slice(3, win.x1, win.x2));
        const logits = forward(cat(crops, 0)).float();
        picked.forEach(({ job, win }, k) => addWindow(job.sum, job.count, win, logits.slice(0, k, k + 1)));
      }),
    ),
  );
}

/** The class map of a finished job at the image's original size (frees the job's tensors). */
export function finishWindowJob(m: SegModel, job: WindowJob): Int32Array {
  if (windowsLeft(job) !== 0) throw new Error(`window job finished with ${windowsLeft(job)} windows left`);
  try {
    return noGrad(() =>
      tidy(() => {
        const logits = interpolate(
          job.sum.div(job.count),
          [job.height, job.width],
          'bilinear',
          m.model.decodeHead.cfg.align_corners,
        );
        return logits.argmax(1).to('int32').toTypedArray() as Int32Array;
      }),
    );
  } finally {
    disposeWindowJob(job);
  }
}

export function disposeWindowJob(job: WindowJob): void {
  for (const t of [job.input, job.sum, job.count]) if (!t.isDisposed) t.dispose();
}
