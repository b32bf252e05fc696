/**
 * `beitseg export --format onnx`: builds the model from its config and weights (any format
 * initModel reads), encodes the graph and writes it atomically (temp file, then rename).
 */
import fs from 'node:fs';
import type { Dict } from '../../config/schema.js';
import { initModel } from '../../inference/api.js';
import { writeFileAtomic } from '../../data/image_io.js';
import type { ModelMeta } from '../../inference/model_meta.js';
import { exportSegmentorOnnx, type OnnxExportOptions } from './segmentor.js';

export interface ExportSummary {
  out: string;
  bytes: number;
  meta: ModelMeta;
  seconds: number;
}

export async function exportOnnxFile(
  config: string | Dict,
  weights: string | null,
  out: string,
  opts: OnnxExportOptions & { verbose?: boolean } = {},
): Promise<ExportSummary> {
  const t0 = performance.now();
  if (weights && /\.onnx$/i.test(weights)) throw new Error(`${weights}: already an ONNX model`);
  if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new Error(`--out ${out} is a directory`);
  const seg = await initModel(config, weights, { device: 'cpu', verbose: opts.verbose });
  const { bytes, meta } = exportSegmentorOnnx(seg, opts);
  await writeFileAtomic(out, bytes);
  return { out, bytes: bytes.byteLength, meta, seconds: (performance.now() - t0) / 1000 };
}
