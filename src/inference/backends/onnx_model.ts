/**
 * What both ONNX Runtime builds share (onnxruntime-node in Node, onnxruntime-web in the page):
 * reading beitseg's metadata from the file's metadata_props (with onnx-proto's decoder) and
 * running batches of windows through a session. Imports neither runtime: each caller passes
 * its own, so this file is in the browser bundle as it is in Node.
 */
import onnxProto from 'onnx-proto';
import type { HostModel, WindowRunner } from '../host_segment.js';
import { META_KEY, parseModelMeta, type ModelMeta } from '../model_meta.js';

/** The metadata of an .onnx file's bytes; a damaged file is a one-line error naming it. */
export function readModelMeta(bytes: Uint8Array, source: string): ModelMeta {
  if (bytes.byteLength === 0) throw new Error(`${source}: empty file, not an ONNX model`);
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnxProto.onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${source}: not a readable ONNX model (truncated or corrupt: ${(e as Error).message})`);
  }
  if (!model.graph?.node?.length) throw new Error(`${source}: not an ONNX model (no graph)`);
  const entry = model.metadataProps.find((p) => p.key === META_KEY);
  return parseModelMeta(entry?.value ?? undefined, source);
}

/** The parts of an ONNX Runtime session and Tensor class that a window runner uses. */
export interface OrtTensorLike {
  readonly data: unknown;
  dispose?(): void;
}
export interface OrtSessionLike {
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
}
export type OrtTensorCtor = new (type: 'float32', data: Float32Array, dims: number[]) => OrtTensorLike;

export function sessionRunner(session: OrtSessionLike, Tensor: OrtTensorCtor, source: string): WindowRunner {
  return {
    async run(input, n, h, w) {
      const x = new Tensor('float32', input, [n, 3, h, w]);
      let out: Record<string, OrtTensorLike>;
      try {
        out = await session.run({ input: x });
      } catch (e) {
        throw new Error(`${source}: ONNX Runtime failed on a ${n}x3x${h}x${w} input: ${(e as Error).message}`);
      } finally {
        x.dispose?.();
      }
      const logits = out.logits;
      if (!logits || !(logits.data instanceof Float32Array)) throw new Error(`${source}: no float32 "logits" output`);
      const data = logits.data.slice();
      logits.dispose?.();
      return data;
    },
  };
}

export function hostModel(meta: ModelMeta, runner: WindowRunner, source: string): HostModel {
  return { meta, runner, source };
}
