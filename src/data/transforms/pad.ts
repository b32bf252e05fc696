/**
 * Pad bottom/right to a fixed size (mmseg 0.x `Pad(size=crop_size,
 * pad_val=0, seg_pad_val=255)`; in 1.x the same happens in the data
 * preprocessor). `size` is (h, w) as mmseg's crop_size.
 *
 * mmseg pads AFTER normalisation, so the image padding value is in
 * normalised space (0 = the mean colour). Here the uint8 image is padded with
 * its raw pad value for display purposes, and `imgPadVal` records the
 * normalised value so that normalizeImage writes it over the padded region:
 * the tensor the model sees is the same as mmseg's.
 */

import { IGNORE_INDEX, makeImage, makeLabel, type LabelMap, type RgbImage } from '../types.js';
import {
  checkKeys,
  numberIn,
  pairOf,
  requireImage,
  type Sample,
  type Transform,
  type TransformConfig,
} from './sample.js';

export function padImage(img: RgbImage, height: number, width: number, value = 0): RgbImage {
  if (height < img.height || width < img.width) {
    throw new Error(`padImage: target ${height}x${width} is smaller than the image ${img.height}x${img.width}`);
  }
  const out = new Uint8Array(height * width * 3);
  if (value !== 0) out.fill(value);
  for (let y = 0; y < img.height; y++) {
    out.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), y * width * 3);
  }
  return makeImage(height, width, out);
}

export function padLabel(label: LabelMap, height: number, width: number, value = IGNORE_INDEX): LabelMap {
  if (height < label.height || width < label.width) {
    throw new Error(`padLabel: target ${height}x${width} is smaller than the label ${label.height}x${label.width}`);
  }
  const out = new Uint8Array(height * width).fill(value);
  for (let y = 0; y < label.height; y++) {
    out.set(label.data.subarray(y * label.width, (y + 1) * label.width), y * width);
  }
  return makeLabel(height, width, out);
}

export class Pad implements Transform {
  readonly type = 'Pad';
  readonly size: [number, number] | undefined;
  readonly sizeDivisor: number | undefined;
  readonly padVal: number;
  readonly segPadVal: number;

  constructor(cfg: TransformConfig) {
    checkKeys(cfg, ['size', 'size_divisor', 'pad_val', 'seg_pad_val']);
    if ((cfg.size == null) === (cfg.size_divisor == null))
      throw new Error('Pad: give exactly one of size (h, w) or size_divisor');
    this.size = cfg.size == null ? undefined : pairOf(cfg.size, 'Pad.size (h, w)');
    this.sizeDivisor = cfg.size_divisor == null ? undefined : pairOf(cfg.size_divisor, 'Pad.size_divisor')[0];
    this.padVal = cfg.pad_val == null ? 0 : numberIn(cfg.pad_val, 'Pad.pad_val', -1e6, 1e6);
    this.segPadVal = cfg.seg_pad_val == null ? IGNORE_INDEX : numberIn(cfg.seg_pad_val, 'Pad.seg_pad_val', 0, 255);
  }

  apply(s: Sample): Sample {
    const img = requireImage(s, 'Pad');
    let h: number;
    let w: number;
    if (this.size) {
      [h, w] = this.size;
      // mmcv impad refuses to shrink; a larger image keeps its size.
      h = Math.max(h, img.height);
      w = Math.max(w, img.width);
    } else {
      const d = this.sizeDivisor!;
      h = Math.ceil(img.height / d) * d;
      w = Math.ceil(img.width / d) * d;
    }
    const raw = Math.min(Math.max(Math.round(this.padVal), 0), 255);
    s.imgShape = [img.height, img.width];
    s.img = padImage(img, h, w, raw);
    if (s.gtSeg) s.gtSeg = padLabel(s.gtSeg, h, w, this.segPadVal);
    s.padShape = [h, w];
    s.imgPadVal = this.padVal;
    return s;
  }
}
