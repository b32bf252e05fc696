/**
 * Validation during training: the val split evaluated exactly as `beitseg eval` does
 * (src/evaluation/evaluate.ts: test Resize, whole or slide inference per the model's test_cfg,
 * logits back at the original size, argmax, mmseg's IoUMetric), on the live model.
 */
import { buildDataset, type DatasetConfig } from '../data/datasets.js';
import { evaluateDataset, type EvaluateOptions } from '../evaluation/evaluate.js';
import type { IoUResults } from '../evaluation/iou_metric.js';
import type { SegModel } from '../inference/api.js';
import { datasetMeta } from '../inference/metainfo.js';
import { preprocessFromConfig } from '../inference/preprocess.js';
import type { Dict } from '../config/schema.js';
import type { EncoderDecoder } from '../models/segmentors/encoder_decoder.js';
import type { AutocastDType } from '../tensor/runtime.js';
import type { Device } from '../tensor/tensor.js';

/** mmseg's IoUMetric results (aAcc, mIoU, mAcc in percent, 2 decimals; per class; image count). */
export type SegMetrics = IoUResults;

export interface ValidateOptions {
  /** The whole config (data preprocessor, metainfo). */
  config: Dict;
  dataset: Record<string, unknown>;
  /** The val dataloader's test pipeline (its Resize decides the input size). */
  pipeline: Record<string, unknown>[];
  device: Device;
  amp?: AutocastDType | null;
  /** Evaluate only the first n images. */
  limit?: number;
  /** Distributed validation: this rank's shard, areas summed over ranks (evaluateDataset's `shard`). */
  shard?: EvaluateOptions['shard'];
}

/** Runs the validation split and returns mmseg's metrics. The model is left in its previous mode. */
export async function validate(model: EncoderDecoder, o: ValidateOptions): Promise<SegMetrics> {
  const dataset = await buildDataset(o.dataset as DatasetConfig);
  const meta =
    dataset.metainfo.classes.length === model.numClasses ? dataset.metainfo : datasetMeta(o.config, model.numClasses);
  const seg: SegModel = {
    model,
    config: o.config,
    preprocess: preprocessFromConfig(o.config, o.pipeline),
    device: o.device,
    meta,
    weights: null,
  };
  const wasTraining = model.training;
  model.eval();
  try {
    return await evaluateDataset(seg, dataset, { amp: o.amp ?? null, limit: o.limit, shard: o.shard });
  } finally {
    model.train(wasTraining);
  }
}
