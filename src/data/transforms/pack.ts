/**
 * PackSegInputs: marks the end of the pipeline and checks that an image is
 * present. The packed sample keeps uint8 HWC data; the loader (or inference)
 * normalises to float32 CHW with normalizeImage, as mmseg 1.x does in its
 * data preprocessor. `metaOf` gives mmseg's metainfo keys.
 */

import { checkKeys, requireImage, type Sample, type Transform, type TransformConfig } from './sample.js';

export const DEFAULT_META_KEYS = [
  'img_path',
  'seg_map_path',
  'ori_shape',
  'img_shape',
  'pad_shape',
  'scale_factor',
  'flip',
  'flip_direction',
  'reduce_zero_label',
] as const;

export interface SampleMeta {
  img_path?: string;
  seg_map_path?: string;
  ori_shape?: [number, number];
  img_shape?: [number, number];
  pad_shape?: [number, number];
  scale_factor?: [number, number];
  flip?: boolean;
  flip_direction?: string | null;
  reduce_zero_label?: boolean;
}

/** mmseg-style metainfo of a sample (snake_case keys; pad_shape defaults to img_shape). */
export function metaOf(s: Sample): SampleMeta {
  return {
    img_path: s.imgPath,
    seg_map_path: s.segMapPath,
    ori_shape: s.oriShape,
    img_shape: s.imgShape,
    pad_shape: s.padShape ?? s.imgShape,
    scale_factor: s.scaleFactor,
    flip: s.flip ?? false,
    flip_direction: s.flipDirection ?? null,
    reduce_zero_label: s.reduceZeroLabel,
  };
}

export class PackSegInputs implements Transform {
  readonly type = 'PackSegInputs';

  constructor(cfg: TransformConfig = { type: 'PackSegInputs' }) {
    checkKeys(cfg, ['meta_keys']);
    if (cfg.meta_keys != null) {
      if (!Array.isArray(cfg.meta_keys)) throw new Error('PackSegInputs.meta_keys must be a list');
      for (const k of cfg.meta_keys) {
        if (!(DEFAULT_META_KEYS as readonly unknown[]).includes(k)) {
          throw new Error(
            `PackSegInputs: unknown meta key ${JSON.stringify(k)}; supported: ${DEFAULT_META_KEYS.join(', ')}`,
          );
        }
      }
    }
  }

  apply(s: Sample): Sample {
    requireImage(s, 'PackSegInputs');
    s.packed = true;
    return s;
  }
}
