/** beitseg's public API. */
export { initModel, inferenceModel, DEFAULT_TTA_SCALES } from './inference/api.js';
export type { SegModel, InitOptions, InferenceOptions, InferenceResult, TtaOptions } from './inference/api.js';
export { loadWeights } from './inference/weights.js';
export { evaluateDataset } from './evaluation/evaluate.js';
export { IoUMetric } from './evaluation/iou_metric.js';
export { buildSegmentor } from './models/builder.js';
export { loadConfig } from './config/schema.js';
export { applyCfgOptions, parseCfgOptions } from './config/cfg_options.js';
export { EncoderDecoder } from './models/segmentors/encoder_decoder.js';
export { slideWindows } from './models/segmentors/slide_job.js';
export { BEiT } from './models/backbones/beit.js';
export * as tensor from './tensor/index.js';
export * as nn from './nn/index.js';
export * as checkpoint from './checkpoint/index.js';
export { buildDataset } from './data/datasets.js';
export {
  decodeImage,
  decodeLabel,
  encodeImage,
  readImage,
  readImageSize,
  readLabel,
  writeImage,
  writeLabelPng,
} from './data/image_io.js';
export type { DecodeImageOptions, FileLimitOptions, PixelLimitOptions, WriteImageOptions } from './data/image_io.js';
export { DEFAULT_MAX_PIXELS, maxPixels, setMaxPixels } from './data/limits.js';
export { DEFAULT_MAX_WINDOWS, planWindows, type WindowPlan } from './inference/window_plan.js';
export { makeImage, makeLabel, type LabelMap, type RgbImage } from './data/types.js';
export { ADE20K_CLASSES, ADE20K_PALETTE, generatePalette } from './data/metainfo.js';
export { writePrediction } from './inference/outputs.js';
export type { DatasetMeta } from './inference/metainfo.js';
export { colorize, overlay, classShares } from './visualization/overlay.js';
