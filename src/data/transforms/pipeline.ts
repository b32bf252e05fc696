/**
 * buildPipeline: turn mmseg-style config dicts into a runnable pipeline.
 *
 *   const p = buildPipeline([
 *     { type: 'LoadImageFromFile' },
 *     { type: 'LoadAnnotations', reduce_zero_label: true },
 *     { type: 'RandomResize', scale: [2560, 640], ratio_range: [0.5, 2.0], keep_ratio: true },
 *     { type: 'RandomCrop', crop_size: [640, 640], cat_max_ratio: 0.75 },
 *     { type: 'RandomFlip', prob: 0.5 },
 *     { type: 'PhotoMetricDistortion' },
 *     { type: 'PackSegInputs' },
 *   ]);
 *   const sample = await p.run({ imgPath, segMapPath }, rng);
 *
 * Config dicts are plain JSON, so a pipeline can be rebuilt inside a worker
 * thread from the same list.
 */

import type { Rng } from '../rng.js';
import { RandomCrop } from './crop.js';
import { RandomFlip } from './flip.js';
import { LoadAnnotations, LoadImageFromFile } from './loading.js';
import { PackSegInputs } from './pack.js';
import { Pad } from './pad.js';
import { PhotoMetricDistortion } from './photometric.js';
import { RandomResize, Resize } from './resize.js';
import type { Sample, Transform, TransformConfig } from './sample.js';

const REGISTRY: Record<string, (cfg: TransformConfig) => Transform> = {
  LoadImageFromFile: (c) => new LoadImageFromFile(c),
  LoadAnnotations: (c) => new LoadAnnotations(c),
  Resize: (c) => new Resize(c),
  RandomResize: (c) => new RandomResize(c),
  RandomCrop: (c) => new RandomCrop(c),
  RandomFlip: (c) => new RandomFlip(c),
  PhotoMetricDistortion: (c) => new PhotoMetricDistortion(c),
  Pad: (c) => new Pad(c),
  PackSegInputs: (c) => new PackSegInputs(c),
};

export const SUPPORTED_TRANSFORMS: readonly string[] = Object.keys(REGISTRY);

export function buildTransform(cfg: TransformConfig): Transform {
  if (cfg == null || typeof cfg !== 'object' || typeof cfg.type !== 'string') {
    throw new Error(`pipeline entry must be an object with a string 'type', got ${JSON.stringify(cfg)}`);
  }
  const make = REGISTRY[cfg.type];
  if (!make) {
    throw new Error(`unknown transform type '${cfg.type}'; supported: ${SUPPORTED_TRANSFORMS.join(', ')}`);
  }
  return make(cfg);
}

export class Pipeline {
  constructor(readonly transforms: readonly Transform[]) {}

  /** Run every transform in order. Random transforms draw from `rng`. */
  async run(sample: Sample, rng: Rng): Promise<Sample> {
    let s = sample;
    for (const t of this.transforms) s = await t.apply(s, rng);
    return s;
  }
}

export function buildPipeline(cfgs: readonly TransformConfig[]): Pipeline {
  if (!Array.isArray(cfgs)) throw new Error('buildPipeline expects a list of transform configs');
  return new Pipeline(
    cfgs.map((c, i) => {
      try {
        return buildTransform(c);
      } catch (e) {
        throw new Error(`pipeline[${i}]: ${(e as Error).message}`);
      }
    }),
  );
}

/** The ADE20K 640x640 training pipeline of mmseg 1.x (configs/_base_/datasets/ade20k_640x640.py). */
export function ade20kTrainPipeline(cropSize: [number, number] = [640, 640]): TransformConfig[] {
  return [
    { type: 'LoadImageFromFile' },
    { type: 'LoadAnnotations', reduce_zero_label: true },
    { type: 'RandomResize', scale: [2560, 640], ratio_range: [0.5, 2.0], keep_ratio: true },
    { type: 'RandomCrop', crop_size: cropSize, cat_max_ratio: 0.75 },
    { type: 'RandomFlip', prob: 0.5 },
    { type: 'PhotoMetricDistortion' },
    { type: 'PackSegInputs' },
  ];
}

/** The ADE20K single-scale test pipeline of mmseg 1.x. */
export function ade20kTestPipeline(): TransformConfig[] {
  return [
    { type: 'LoadImageFromFile' },
    { type: 'Resize', scale: [2560, 640], keep_ratio: true },
    { type: 'LoadAnnotations', reduce_zero_label: true },
    { type: 'PackSegInputs' },
  ];
}
