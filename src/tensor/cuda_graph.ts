/**
 * CUDA graphs (native/src/cuda_graph.cc): the kernels a function launches on the GPU, captured
 * once and launched again as one graph, which saves the per-kernel launch cost that dominates
 * small batches on fast GPUs. Replays read the tensors the capture read and write the tensors
 * it wrote, at the same addresses: callers copy new inputs into the captured input and copy the
 * output out (src/inference/graphed_forward.ts does both).
 */
import { withoutHostReads } from './host_reads.js';
import { native } from './native.js';
import type { Tensor } from './tensor.js';

/** A captured function: its output tensor (rewritten by every replay), replay and release. */
export interface GraphCapture {
  readonly output: Tensor;
  /**
   * Whether making the capture also ran the function once (a CPU stand-in does; a CUDA capture
   * only records, so its output is written by the first replay). Callers whose function has
   * effects (a training step) replay after capturing only where this is false.
   */
  readonly executed?: boolean;
  replay(): void;
  dispose(): void;
}

/** Captures `fn` for `device`; a CUDA graph here, a stand-in in the orchestration tests. */
export type CaptureFn = (fn: () => Tensor, device: string) => GraphCapture;

/** Whether this build of the addon can capture CUDA graphs (a CUDA device is needed too). */
export function cudaGraphsSupported(): boolean {
  return native.cudaGraphsSupported();
}

/** A clear error where this build of the addon cannot capture CUDA graphs. */
export function assertCudaGraphBuild(): void {
  if (!native.cudaGraphsSupported()) {
    throw new Error(
      'CUDA graphs need a CUDA build of libtorch with CUDA runtime headers (LIBTORCH=..., CUDA_HOME; README "GPU")',
    );
  }
}

function cudaDeviceIndex(device: string): number {
  const m = /^cuda(?::(\d+))?$/.exec(device);
  if (!m) throw new Error(`CUDA graphs need a CUDA device, got '${device}'`);
  return m[1] === undefined ? 0 : Number(m[1]);
}

/**
 * Captures the kernels `fn` launches (nothing runs on the GPU during the capture) into a CUDA
 * graph. `fn` must not synchronise with the host (no .item(), no reads to the CPU) and must
 * free its intermediates itself; the tensor it returns stays allocated for the graph's life.
 */
export const captureCudaGraph: CaptureFn = (fn, device) => {
  const index = cudaDeviceIndex(device);
  assertCudaGraphBuild();
  const id = native.cudaGraphBegin(index);
  let output: Tensor;
  try {
    output = withoutHostReads('a CUDA graph capture', fn);
  } catch (e) {
    native.cudaGraphEnd(id, false);
    throw e;
  }
  native.cudaGraphEnd(id, true);
  return {
    output,
    replay: () => native.cudaGraphReplay(id),
    dispose: () => {
      output.dispose();
      native.cudaGraphDestroy(id);
    },
  };
};
