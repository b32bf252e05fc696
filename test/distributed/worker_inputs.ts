/** A fixed batch for the distributed tests, identical in every process (no RNG state involved). */
import { fromArray, type Tensor } from '../../src/tensor/tensor.js';

/** Samples start .. start+n-1 of a fixed set: 3x64x64 images and labels over 6 classes with some 255. */
export function fixedBatch(start: number, n: number): { img: Tensor; label: Tensor } {
  const hw = 64 * 64;
  const img = new Float32Array(n * 3 * hw),
    label = new BigInt64Array(n * hw);
  for (let s = 0; s < n; s++) {
    const k = start + s;
    for (let i = 0; i < 3 * hw; i++)
      img[s * 3 * hw + i] = Math.sin(0.37 * i + 1.3 * k) + 0.25 * Math.cos(0.011 * i * (k + 1));
    for (let i = 0; i < hw; i++) {
      const y = Math.floor(i / 64),
        x = i % 64;
      label[s * hw + i] = BigInt(
        (x + y * (k + 2)) % 17 === 0 ? 255 : (Math.floor(x / 16) + Math.floor(y / 22) + k) % 6,
      );
    }
  }
  return { img: fromArray(img, [n, 3, 64, 64]), label: fromArray(label, [n, 64, 64], { dtype: 'int64' }) };
}
