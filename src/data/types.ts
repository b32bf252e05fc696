/**
 * Plain-array image and label types shared by the data pipeline, the metric
 * and the visualiser. No tensors here: the training loop and inference convert
 * these buffers to tensors themselves.
 */

/** RGB uint8 image, row-major HWC (pixel (y, x) channel c at (y*width + x)*3 + c). */
export interface RgbImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: 3;
}

/** Single-channel uint8 label map, row-major HW. 255 = ignore. */
export interface LabelMap {
  data: Uint8Array;
  height: number;
  width: number;
}

/** Value used for "ignore" pixels in labels throughout (mmseg's ignore_index). */
export const IGNORE_INDEX = 255;

export function makeImage(height: number, width: number, data?: Uint8Array): RgbImage {
  const n = height * width * 3;
  if (data && data.length !== n) {
    throw new Error(`image buffer has ${data.length} bytes, expected ${height}x${width}x3 = ${n}`);
  }
  return { data: data ?? new Uint8Array(n), height, width, channels: 3 };
}

export function makeLabel(height: number, width: number, data?: Uint8Array): LabelMap {
  const n = height * width;
  if (data && data.length !== n) {
    throw new Error(`label buffer has ${data.length} bytes, expected ${height}x${width} = ${n}`);
  }
  return { data: data ?? new Uint8Array(n), height, width };
}
