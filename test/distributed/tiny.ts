/** The tiny config for the distributed tests: no randomness in the model (drop path and dropout off). */
import type { Dict } from '../../src/config/schema.js';
import { tinyConfig } from '../engine/fixtures.js';

export function deterministicTinyConfig(dataRoot: string, edit?: (cfg: Dict) => void): Dict {
  return tinyConfig(dataRoot, (cfg) => {
    const model = cfg.model as Dict;
    (model.backbone as Dict).drop_path_rate = 0;
    (model.decode_head as Dict).dropout_ratio = 0;
    (model.auxiliary_head as Dict).dropout_ratio = 0;
    edit?.(cfg);
  });
}

/** Every parameter's gradient, then every BN running statistic, as one float32 array. */
export function flatGradsAndStats(
  named: [string, { grad: { toFloat32Array(): Float32Array; dispose(): void } | null }][],
  buffers: [string, { toFloat32Array(): Float32Array }][],
): Float32Array {
  const parts: Float32Array[] = [];
  for (const [name, p] of named) {
    const g = p.grad;
    if (!g) throw new Error(`no gradient for ${name}`);
    parts.push(g.toFloat32Array());
    g.dispose();
  }
  for (const [name, b] of buffers)
    if (name.endsWith('running_mean') || name.endsWith('running_var')) parts.push(b.toFloat32Array());
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
