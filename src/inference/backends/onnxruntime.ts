/**
 * The ONNX Runtime backend in Node: an exported .onnx on onnxruntime-node's CPU provider.
 * Loading it never loads beitseg's libtorch addon (nothing here imports src/tensor), so
 * `predict --weights model.onnx` works where the addon was never built.
 */
import fs from 'node:fs/promises';
import ort from 'onnxruntime-node';
import type { HostModel } from '../host_segment.js';
import { hostModel, readModelMeta, sessionRunner } from './onnx_model.js';

export interface OrtLoadOptions {
  /** Intra-op threads (default: ONNX Runtime's, one per physical core). */
  threads?: number;
}

export async function loadOnnxModel(file: string, opts: OrtLoadOptions = {}): Promise<HostModel> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(file);
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const meta = readModelMeta(bytes, file);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, {
      graphOptimizationLevel: 'all',
      executionProviders: ['cpu'],
      ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
    });
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    throw new Error(`${file}: ONNX Runtime cannot load the model: ${msg}`);
  }
  return hostModel(meta, sessionRunner(session, ort.Tensor, file), file);
}
