/**
 * What computes a batch of slide windows for a model and precision policy: its encode_decode
 * with the policy's low-precision parts, or, with CUDA graphs on, that same forward replayed
 * from a graph per window-batch shape. The graphs are kept per model and policy (a WeakMap
 * beside the model, as the precision variants are), so every call and serve's batches share them.
 */
import type { EncoderDecoder } from '../models/segmentors/encoder_decoder.js';
import { assertCudaGraphBuild } from '../tensor/cuda_graph.js';
import type { Tensor } from '../tensor/tensor.js';
import { GraphedForward } from './graphed_forward.js';
import { forwardPrecision, type PrecisionPolicy } from './precision.js';

const graphed = new WeakMap<EncoderDecoder, Map<string, GraphedForward>>();

export function windowForward(
  model: EncoderDecoder,
  policy: Required<PrecisionPolicy>,
  cudaGraphs = false,
): (crops: Tensor) => Tensor {
  const precision = forwardPrecision(model, policy);
  const eager = (crops: Tensor): Tensor => model.encodeDecode(crops, precision);
  if (!cudaGraphs) return eager;
  let byPolicy = graphed.get(model);
  if (!byPolicy) graphed.set(model, (byPolicy = new Map()));
  const key = `amp=${policy.amp};quantize=${policy.quantize}`;
  let g = byPolicy.get(key);
  if (!g) byPolicy.set(key, (g = new GraphedForward(eager)));
  const graph = g;
  return (crops) => graph.run(crops);
}

/** Frees the CUDA graphs captured for `model` (they hold activation memory on the GPU). */
export function releaseWindowGraphs(model: EncoderDecoder): void {
  for (const g of graphed.get(model)?.values() ?? []) g.dispose();
  graphed.delete(model);
}

/** A clear error where CUDA graphs cannot run. */
export function checkCudaGraphs(device: string): void {
  if (!device.startsWith('cuda')) throw new Error(`CUDA graphs need a CUDA device, not ${device}`);
  assertCudaGraphBuild();
}
