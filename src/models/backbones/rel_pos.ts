/**
 * BEiT's relative position index and the interpolation of a bias table to another patch
 * grid. Index rule (mmseg/unilm): for patches i=(hi,wi), j=(hj,wj) of a Wh×Ww grid,
 * index[1+i, 1+j] = (hi−hj+Wh−1)(2Ww−1) + (wi−wj+Ww−1); the cls row, column and corner take
 * the table's last three entries T−3, T−2, T−1 with T = (2Wh−1)(2Ww−1)+3.
 */
import { interpolate } from '../../tensor/functional.js';
import { keep, tidy } from '../../tensor/scope.js';
import { cat, fromArray, type Device, type Tensor } from '../../tensor/tensor.js';

export function numRelativeDistance(wh: number, ww: number): number {
  return (2 * wh - 1) * (2 * ww - 1) + 3;
}

export function relativePositionIndexArray(wh: number, ww: number): BigInt64Array {
  const n = wh * ww + 1;
  const t = numRelativeDistance(wh, ww);
  const out = new BigInt64Array(n * n);
  for (let i = 0; i < wh * ww; i++) {
    const hi = Math.floor(i / ww),
      wi = i % ww;
    for (let j = 0; j < wh * ww; j++) {
      const hj = Math.floor(j / ww),
        wj = j % ww;
      out[(1 + i) * n + 1 + j] = BigInt((hi - hj + wh - 1) * (2 * ww - 1) + (wi - wj + ww - 1));
    }
  }
  for (let j = 0; j < n; j++) out[j] = BigInt(t - 3);
  for (let i = 0; i < n; i++) out[i * n] = BigInt(t - 2);
  out[0] = BigInt(t - 1);
  return out;
}

// One index tensor per grid and device, shared by every layer and model (they are identical);
// kept on the device so that a forward pass copies nothing from the host (a CUDA-graph capture
// cannot record such a copy).
const indexCache = new Map<string, Tensor>();

export function relativePositionIndex(wh: number, ww: number, device: Device = 'cpu'): Tensor {
  const key = `${wh}x${ww}@${device}`;
  let t = indexCache.get(key);
  if (!t || t.isDisposed) {
    const n = wh * ww + 1;
    t = keep(tidy(() => fromArray(relativePositionIndexArray(wh, ww), [n, n]).to(device)));
    indexCache.set(key, t);
  }
  return t;
}

/**
 * Resamples a table made for window `from` to window `to` (bilinear, align_corners=false,
 * over the (2Wh−1)×(2Ww−1) grid of relative offsets; the 3 cls entries are kept). This is
 * what lets beitseg run whole-image inference at any size: mmseg raises a size mismatch.
 * Differentiable; identity when the windows match.
 */
export function resizeBiasTable(table: Tensor, from: [number, number], to: [number, number]): Tensor {
  const heads = table.size(1);
  const [sh, sw] = [2 * from[0] - 1, 2 * from[1] - 1];
  const [dh, dw] = [2 * to[0] - 1, 2 * to[1] - 1];
  const grid = table
    .slice(0, 0, sh * sw)
    .reshape(1, sh, sw, heads)
    .permute(0, 3, 1, 2);
  const resized = interpolate(grid, [dh, dw], 'bilinear', false)
    .permute(0, 2, 3, 1)
    .reshape(dh * dw, heads);
  return cat([resized, table.slice(0, sh * sw, sh * sw + 3)], 0);
}
