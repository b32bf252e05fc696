/**
 * Validation during training: the val split through its test pipeline (Resize, then
 * LoadAnnotations so the ground truth stays at the original size), whole or slide inference
 * per the model's test_cfg, logits resized back to the original size, argmax, and mmseg's
 * IoUMetric (aAcc, mIoU, mAcc in percent, 2 decimals).
 *
 * `IoUAccumulator` is a small stand-in for src/evaluation's metric (not available when this
 * was written): the same per-class intersection / union / prediction / label areas, summed
 * over images.
 */
import { buildDataset, type DatasetConfig } from '../data/datasets.js';
import { Rng } from '../data/rng.js';
import { normalizeImage } from '../data/transforms/normalize.js';
import { buildPipeline } from '../data/transforms/pipeline.js';
import type { Sample, TransformConfig } from '../data/transforms/sample.js';
import type { EncoderDecoder } from '../models/segmentors/encoder_decoder.js';
import { interpolate } from '../tensor/functional.js';
import { autocast, noGrad, type AutocastDType } from '../tensor/runtime.js';
import { tidy } from '../tensor/scope.js';
import { fromArray, type Device } from '../tensor/tensor.js';

export interface SegMetrics {
  aAcc: number;
  mIoU: number;
  mAcc: number;
  /** Per-class IoU and accuracy in percent (NaN for classes absent from both GT and prediction). */
  iou: number[];
  acc: number[];
  images: number;
}

/** mmseg IoUMetric areas, accumulated image by image. */
export class IoUAccumulator {
  readonly intersect: Float64Array;
  readonly union: Float64Array;
  readonly predArea: Float64Array;
  readonly labelArea: Float64Array;
  images = 0;

  constructor(readonly numClasses: number, readonly ignoreIndex = 255) {
    this.intersect = new Float64Array(numClasses);
    this.union = new Float64Array(numClasses);
    this.predArea = new Float64Array(numClasses);
    this.labelArea = new Float64Array(numClasses);
  }

  /** One image: predictions and labels of the same length (row-major H×W). */
  add(pred: ArrayLike<number>, label: ArrayLike<number>): void {
    if (pred.length !== label.length) throw new Error(`IoU: prediction has ${pred.length} pixels, label ${label.length}`);
    const C = this.numClasses;
    const inter = new Float64Array(C), p = new Float64Array(C), l = new Float64Array(C);
    for (let i = 0; i < label.length; i++) {
      const y = label[i]!;
      if (y === this.ignoreIndex) continue;
      const x = pred[i]!;
      // histc over [0, C-1]: values outside are not counted
      if (x >= 0 && x < C) p[x]++;
      if (y >= 0 && y < C) {
        l[y]++;
        if (x === y) inter[y]++;
      }
    }
    for (let c = 0; c < C; c++) {
      this.intersect[c] += inter[c]!;
      this.predArea[c] += p[c]!;
      this.labelArea[c] += l[c]!;
      this.union[c] += p[c]! + l[c]! - inter[c]!;
    }
    this.images++;
  }

  compute(): SegMetrics {
    const C = this.numClasses;
    let si = 0, sl = 0;
    const iou: number[] = [], acc: number[] = [];
    for (let c = 0; c < C; c++) {
      si += this.intersect[c]!;
      sl += this.labelArea[c]!;
      iou.push((this.intersect[c]! / this.union[c]!) * 100);
      acc.push((this.intersect[c]! / this.labelArea[c]!) * 100);
    }
    const nanmean = (v: number[]) => {
      const ok = v.filter((x) => !Number.isNaN(x));
      return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : NaN;
    };
    const r2 = (x: number) => Math.round(x * 100) / 100;
    return { aAcc: r2((si / sl) * 100), mIoU: r2(nanmean(iou)), mAcc: r2(nanmean(acc)), iou, acc, images: this.images };
  }
}

export interface ValidateOptions {
  dataset: Record<string, unknown>;
  pipeline: Record<string, unknown>[];
  mean: readonly number[];
  std: readonly number[];
  device: Device;
  amp?: AutocastDType | null;
  /** Evaluate only the first n images. */
  limit?: number;
}

/** Runs the validation split and returns mmseg's metrics. The model is left in its previous mode. */
export async function validate(model: EncoderDecoder, o: ValidateOptions): Promise<SegMetrics> {
  const dataset = await buildDataset({ ...o.dataset, pipeline: o.pipeline } as DatasetConfig);
  const pipeline = buildPipeline(o.pipeline as TransformConfig[]);
  const n = Math.min(dataset.length, o.limit ?? Infinity);
  const acc = new IoUAccumulator(model.numClasses, model.decodeHead.cfg.ignore_index);
  const wasTraining = model.training;
  model.eval();
  const deviceType = o.device.startsWith('cuda') ? 'cuda' : 'cpu';
  const load = (i: number): Promise<Sample> => pipeline.run(dataset.sample(i), new Rng(0));
  try {
    let next = n > 0 ? load(0) : null;
    for (let i = 0; i < n; i++) {
      const s = await next!;
      next = i + 1 < n ? load(i + 1) : null;
      if (!s.img || !s.gtSeg) throw new Error(`validation sample ${s.imgPath ?? i} has no image or no label`);
      const img = s.img, gt = s.gtSeg;
      const pred = noGrad(() => tidy(() => {
        const x = fromArray(normalizeImage(img, { mean: o.mean, std: o.std }), [1, 3, img.height, img.width]).to(o.device);
        const logits = autocast(deviceType, o.amp ?? null, () => model.inference(x));
        const full = interpolate(logits.float(), [gt.height, gt.width], 'bilinear', model.decodeHead.cfg.align_corners);
        return full.argmax(1).to('int32').to('cpu').toTypedArray() as Int32Array;
      }));
      acc.add(pred, gt.data);
    }
  } finally {
    model.train(wasTraining);
  }
  return acc.compute();
}
