/**
 * One training/validation sample from a dataset item to model-ready arrays:
 * pipeline (decode + augment, random draws from the sample's own RNG), then
 * normalisation to float32 CHW and padding (mmseg's data preprocessor). Shared
 * by the loader's worker threads and its in-thread mode so both give the same
 * bytes.
 */

import type { DataItem } from './datasets.js';
import { Rng } from './rng.js';
import { normalizeImage, IMAGENET_MEAN, IMAGENET_STD } from './transforms/normalize.js';
import { metaOf, type SampleMeta } from './transforms/pack.js';
import type { Pipeline } from './transforms/pipeline.js';
import type { TransformConfig } from './transforms/sample.js';
import { IGNORE_INDEX } from './types.js';

export interface ProcessorConfig {
  pipeline: readonly TransformConfig[];
  mean?: readonly number[];
  std?: readonly number[];
  /** Pad every sample to at least (h, w) (mmseg data_preprocessor `size`, e.g. the crop size). */
  padTo?: [number, number] | null;
  /** Normalised-space image padding (mmseg pad_val, default 0). */
  padVal?: number;
  /** Label padding (mmseg seg_pad_val, default 255). */
  segPadVal?: number;
}

export interface ProcessedSample {
  /** float32 CHW, 3 x height x width. */
  img: Float32Array;
  /** uint8 HW, 255 = ignore (also where there is no label). */
  label: Uint8Array;
  height: number;
  width: number;
  meta: SampleMeta;
}

export async function processSample(
  pipeline: Pipeline,
  cfg: ProcessorConfig,
  item: DataItem,
  index: number,
  seed: number,
): Promise<ProcessedSample> {
  const rng = new Rng(seed);
  const s = await pipeline.run(
    { imgPath: item.imgPath, segMapPath: item.segMapPath, reduceZeroLabel: item.reduceZeroLabel, extra: { index } },
    rng,
  );
  if (!s.img) throw new Error(`pipeline produced no image for ${item.imgPath}`);
  const img = s.img;
  const H = Math.max(cfg.padTo?.[0] ?? 0, img.height);
  const W = Math.max(cfg.padTo?.[1] ?? 0, img.width);
  const padded = s.padShape !== undefined;
  const out = normalizeImage(img, {
    mean: cfg.mean ?? IMAGENET_MEAN,
    std: cfg.std ?? IMAGENET_STD,
    padTo: [H, W],
    validHeight: padded ? s.imgShape![0] : img.height,
    validWidth: padded ? s.imgShape![1] : img.width,
    padVal: s.imgPadVal ?? cfg.padVal ?? 0,
  });
  const segPad = cfg.segPadVal ?? IGNORE_INDEX;
  const label = new Uint8Array(H * W).fill(segPad);
  if (s.gtSeg) {
    const g = s.gtSeg;
    if (g.height !== img.height || g.width !== img.width) {
      // Happens in test pipelines (label stays at the original size): keep it unpadded there.
      throw new Error(
        `label of ${item.imgPath} is ${g.height}x${g.width} after the pipeline but the image is ` +
          `${img.height}x${img.width}; ` +
          'the loader needs them aligned (load annotations before resizing)',
      );
    }
    for (let y = 0; y < g.height; y++) label.set(g.data.subarray(y * g.width, (y + 1) * g.width), y * W);
  }
  const meta = metaOf(s);
  meta.pad_shape = [H, W];
  return { img: out, label, height: H, width: W, meta };
}
