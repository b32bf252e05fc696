/** Small helpers shared by the benchmarks. */
import type { Dict } from '../src/models/config.js';

export function argValue(flag: string, fallback: string): string {
  const i = process.argv.indexOf(flag);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The config with the model's window (img_size) and slide crop set to `size`. */
export function configFor(cfg: Dict, size: number): Dict {
  const c = structuredClone(cfg);
  const model = c.model as Dict;
  (model.backbone as Dict).img_size = [size, size];
  const stride = Math.round((size * 426) / 640);
  model.test_cfg = { mode: 'slide', crop_size: [size, size], stride: [stride, stride] };
  return c;
}
