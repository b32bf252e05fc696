/**
 * LoadImageFromFile and LoadAnnotations (mmcv / mmseg 1.x), plus
 * reduce_zero_label.
 */

import { readImage, readLabel } from '../image_io.js';
import { IGNORE_INDEX, type LabelMap } from '../types.js';
import { boolOf, checkKeys, type Sample, type Transform, type TransformConfig } from './sample.js';

/**
 * mmseg's reduce_zero_label, in place: 0 -> 255 (ignore), k -> k - 1 for
 * 1..254, and 255 stays 255 (mmseg: x[x==0]=255; x-=1; x[x==254]=255).
 */
export function reduceZeroLabel(label: LabelMap): LabelMap {
  const d = label.data;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    d[i] = v === 0 || v === IGNORE_INDEX ? IGNORE_INDEX : v - 1;
  }
  return label;
}

export class LoadImageFromFile implements Transform {
  readonly type = 'LoadImageFromFile';
  private readonly autoOrient: boolean;

  constructor(cfg: TransformConfig = { type: 'LoadImageFromFile' }) {
    checkKeys(cfg, ['color_type', 'imdecode_backend', 'backend_args', 'to_float32']);
    const colorType = cfg.color_type ?? 'color';
    if (colorType !== 'color' && colorType !== 'color_ignore_orientation') {
      throw new Error(
        `LoadImageFromFile: color_type must be 'color' or 'color_ignore_orientation', got ${JSON.stringify(colorType)}`,
      );
    }
    this.autoOrient = colorType === 'color';
    const backend = cfg.imdecode_backend ?? 'cv2';
    if (backend !== 'cv2' && backend !== 'pillow') {
      throw new Error(
        `LoadImageFromFile: imdecode_backend must be 'cv2' or 'pillow' (both decode the same here), got ` +
          `${JSON.stringify(backend)}`,
      );
    }
    if (cfg.backend_args != null)
      throw new Error('LoadImageFromFile: backend_args is not supported (local files only)');
    if (cfg.to_float32 != null && cfg.to_float32 !== false) {
      throw new Error('LoadImageFromFile: to_float32 is not supported (images stay uint8 until normalisation)');
    }
  }

  async apply(s: Sample): Promise<Sample> {
    if (!s.imgPath) throw new Error('LoadImageFromFile: sample has no imgPath');
    const img = await readImage(s.imgPath, { autoOrient: this.autoOrient });
    s.img = img;
    s.oriShape = [img.height, img.width];
    s.imgShape = [img.height, img.width];
    return s;
  }
}

export class LoadAnnotations implements Transform {
  readonly type = 'LoadAnnotations';
  private readonly reduceZero: boolean | undefined;

  constructor(cfg: TransformConfig = { type: 'LoadAnnotations' }) {
    checkKeys(cfg, ['reduce_zero_label', 'imdecode_backend', 'backend_args']);
    this.reduceZero =
      cfg.reduce_zero_label == null ? undefined : boolOf(cfg.reduce_zero_label, 'LoadAnnotations.reduce_zero_label');
    const backend = cfg.imdecode_backend ?? 'pillow';
    if (backend !== 'pillow' && backend !== 'cv2') {
      throw new Error(`LoadAnnotations: imdecode_backend must be 'pillow' or 'cv2', got ${JSON.stringify(backend)}`);
    }
    if (cfg.backend_args != null) throw new Error('LoadAnnotations: backend_args is not supported (local files only)');
  }

  async apply(s: Sample): Promise<Sample> {
    if (!s.segMapPath) throw new Error(`LoadAnnotations: sample ${s.imgPath ?? ''} has no segMapPath`);
    const label = await readLabel(s.segMapPath);
    if (s.oriShape && (label.height !== s.oriShape[0] || label.width !== s.oriShape[1])) {
      throw new Error(
        `label ${s.segMapPath} is ${label.height}x${label.width} but image ${s.imgPath ?? ''} is ` +
          `${s.oriShape[0]}x${s.oriShape[1]} (height x width)`,
      );
    }
    // As mmseg: the transform's own setting wins, else the dataset's.
    const reduce = this.reduceZero ?? s.reduceZeroLabel ?? false;
    if (reduce) reduceZeroLabel(label);
    s.reduceZeroLabel = reduce;
    s.gtSeg = label;
    return s;
  }
}
