/**
 * mmseg's slide-window placement, apart from the tensors so that every backend (libtorch,
 * ONNX Runtime in Node and in the browser) windows an image the same way.
 */
/** One slide window: rows [y1, y2), columns [x1, x2). */
export interface Window {
  y1: number;
  y2: number;
  x1: number;
  x2: number;
}

/** mmseg's window placement: a regular grid whose last row/column is shifted back inside. */
export function slideWindows(h: number, w: number, crop: [number, number], stride: [number, number]): Window[] {
  const [ch, cw] = crop;
  const [sh, sw] = stride;
  const gridsH = Math.floor(Math.max(h - ch + sh - 1, 0) / sh) + 1;
  const gridsW = Math.floor(Math.max(w - cw + sw - 1, 0) / sw) + 1;
  const out: Window[] = [];
  for (let hi = 0; hi < gridsH; hi++) {
    for (let wi = 0; wi < gridsW; wi++) {
      const y2 = Math.min(hi * sh + ch, h),
        x2 = Math.min(wi * sw + cw, w);
      out.push({ y1: Math.max(y2 - ch, 0), y2, x1: Math.max(x2 - cw, 0), x2 });
    }
  }
  return out;
}
