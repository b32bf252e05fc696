/**
 * Validation during training: the val split through its test pipeline (Resize, then
 * LoadAnnotations so the ground truth stays at the original size), whole or slide inference
 * per the model's test_cfg, logits resized back to the original size, argmax, and mmseg's
 * IoUMetric from src/evaluation (aAcc, mIoU, mAcc in percent, 2 decimals).
 */
import { buildDataset, type DatasetConfig } from '../data/datasets.js';
import { IoUMetric, type IoUResults } from '../evaluation/iou_metric.js';
import { Rng } from '../data/rng.js';
import { normalizeImage } from '../data/transforms/normalize.js';
import { buildPipeline } from '../data/transforms/pipeline.js';
import type { Sample, TransformConfig } from '../data/transforms/sample.js';
import type { EncoderDecoder } from '../models/segmentors/encoder_decoder.js';
import { interpolate } from '../tensor/functional.js';
import { autocast, noGrad, type AutocastDType } from '../tensor/runtime.js';
import { tidy } from '../tensor/scope.js';
import { fromArray, type Device } from '../tensor/tensor.js';

/** mmseg's IoUMetric results (aAcc, mIoU, mAcc in percent, 2 decimals; per class; image count). */
export type SegMetrics = IoUResults;

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
  const classNames = dataset.metainfo.classes.length === model.numClasses ? dataset.metainfo.classes : undefined;
  const acc = new IoUMetric(model.numClasses, { ignoreIndex: model.decodeHead.cfg.ignore_index, classNames });
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
