/**
 * Slide inference batched ACROSS requests: each request becomes a WindowJob (its normalised
 * input and a SlideJob: mmseg's window grid with the running sum / count maps), and
 * `runWindowBatch` sends windows of several jobs through the network in one forward pass.
 *
 * Per job the arithmetic is exactly `inferenceModel`'s single-scale slide path (testResize,
 * toInputTensor, the SlideJob that EncoderDecoder.slideInference runs to completion, then the
 * bilinear resize to the original size): only which windows share a forward pass differs.
 */
import type { SegModel } from '../inference/api.js';
import { resolvePolicy } from '../inference/precision.js';
import { windowForward } from '../inference/window_forward.js';
import { testResize, toInputTensor } from '../inference/preprocess.js';
import { SlideJob } from '../models/segmentors/slide_job.js';
import type { RgbImage } from '../data/types.js';
import { interpolate } from '../tensor/functional.js';
import { autocast, deviceTypeOf, noGrad, type AutocastDType } from '../tensor/runtime.js';
import { tidy } from '../tensor/scope.js';
import { cat } from '../tensor/tensor.js';

export interface WindowJob {
  /** The original image's size (the answer is resized back to it). */
  height: number;
  width: number;
  slide: SlideJob;
}

/** Prepares one image for windowed slide inference (allocates its tensors; call disposeWindowJob when done). */
export function createWindowJob(m: SegModel, img: RgbImage): WindowJob {
  const crop = m.model.testCfg.crop_size,
    stride = m.model.testCfg.stride;
  if (!crop || !stride) throw new Error('slide inference needs model.test_cfg.crop_size and stride');
  const input = toInputTensor(testResize(img, m.preprocess.scale), m.preprocess, m.device);
  try {
    return {
      height: img.height,
      width: img.width,
      slide: new SlideJob(input, { numClasses: m.model.numClasses, crop, stride }),
    };
  } catch (e) {
    input.dispose();
    throw e;
  }
}

export function windowsLeft(job: WindowJob): number {
  return job.slide.windowsLeft;
}

/** The [rows, cols] of a job's next window: only windows of one shape can share a forward pass. */
export function nextWindowShape(job: WindowJob): string {
  return job.slide.nextShape();
}

export interface BatchEntry {
  job: WindowJob;
  /** How many of the job's next windows go into this batch. */
  take: number;
}

/** One forward pass over the next windows of the given jobs (all of one shape), accumulated into each job. */
export function runWindowBatch(m: SegModel, entries: BatchEntry[], amp: AutocastDType | null): void {
  // the model's precision policy (initModel's, e.g. int8) with this engine's amp: what inferenceModel would run
  const policy = resolvePolicy(m.precision, { amp });
  const forward = windowForward(m.model, policy, m.cudaGraphs ?? false);
  noGrad(() =>
    autocast(deviceTypeOf(m.device), policy.amp, () =>
      tidy(() => {
        const taken = entries.map(({ job, take }) => ({ job, ...job.slide.take(take) }));
        const logits = forward(
          cat(
            taken.flatMap((t) => t.crops),
            0,
          ),
        ).float();
        let offset = 0;
        for (const t of taken) {
          t.job.slide.accumulate(t.windows, logits, offset);
          offset += t.windows.length;
        }
      }),
    ),
  );
}

/** The class map of a finished job at the image's original size (frees the job's tensors). */
export function finishWindowJob(m: SegModel, job: WindowJob): Int32Array {
  try {
    return noGrad(() =>
      tidy(() => {
        const logits = interpolate(
          job.slide.finish(),
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
  job.slide.dispose();
  if (!job.slide.input.isDisposed) job.slide.input.dispose();
}
