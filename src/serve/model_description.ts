/**
 * What the HTTP side needs to know about a model without holding it: the classes and palette
 * (JSON answers, overlays), the test mode and window grid (policy checks, window budget) and a
 * summary for /v1/model. Plain data, so the model worker can send it to the main thread.
 */
import type { SegModel } from '../inference/api.js';
import type { DatasetMeta } from '../inference/metainfo.js';
import { isDict, type Dict } from '../config/schema.js';

export interface WeightsFile {
  /** The file's base name (the path is the operator's business, not the client's). */
  file: string;
  bytes: number;
  /** Hex SHA-256 of the file; null for a folder (Hugging Face layout). */
  sha256: string | null;
}

export interface ModelDescription {
  meta: DatasetMeta;
  device: string;
  testCfg: { mode: 'slide' | 'whole'; crop_size?: [number, number]; stride?: [number, number] };
  /** The test pipeline's Resize scale (null: images are not resized). */
  testScale: [number, number] | null;
  config: Dict;
  weights: WeightsFile | null;
}

export function describeModel(m: SegModel, weights: WeightsFile | null = null): ModelDescription {
  const model = isDict(m.config.model) ? m.config.model : {};
  const pick = (d: unknown, keys: string[]): Dict =>
    Object.fromEntries(keys.filter((k) => isDict(d) && d[k] !== undefined).map((k) => [k, (d as Dict)[k]]));
  const t = m.model.testCfg;
  return {
    meta: { classes: [...m.meta.classes], palette: m.meta.palette.map((c) => [...c] as [number, number, number]) },
    device: m.device,
    testCfg: { mode: t.mode, crop_size: t.crop_size, stride: t.stride },
    testScale: m.preprocess.scale,
    config: {
      backbone: pick(model.backbone, ['type', 'img_size', 'patch_size', 'embed_dims', 'num_layers', 'num_heads']),
      decodeHead: pick(model.decode_head, ['type', 'channels', 'num_classes', 'align_corners']),
      testCfg: model.test_cfg ?? null,
      testResize: m.preprocess.scale,
    },
    weights,
  };
}
