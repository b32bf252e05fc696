/**
 * Counting what a state dict holds. "Parameters" follows the convention of published model
 * sizes (unilm's 163M / 441M, mmseg's tables): trainable tensors only, so buffers that a model
 * recomputes or only tracks (relative_position_index, BatchNorm running statistics and
 * num_batches_tracked) are counted separately.
 */
import { DTYPE_BYTES, numel, type DType, type HostTensor } from '../common/host_tensor.js';

/** True for state-dict keys that are buffers, not trainable parameters. */
export function isBufferKey(key: string): boolean {
  return /(^|\.)(relative_position_index|running_mean|running_var|num_batches_tracked)$/.test(key);
}

export interface StateDictStats {
  tensors: number;
  /** Elements of non-buffer tensors. */
  parameters: number;
  /** Elements of buffer tensors. */
  bufferElements: number;
  bytes: number;
  byDtype: Partial<Record<DType, { tensors: number; elements: number }>>;
  /** Parameters per top-level key prefix (backbone, neck, decode_head, ... or the first key segment). */
  byGroup: [group: string, parameters: number][];
}

export function stateDictStats(sd: Map<string, HostTensor>): StateDictStats {
  const stats: StateDictStats = { tensors: 0, parameters: 0, bufferElements: 0, bytes: 0, byDtype: {}, byGroup: [] };
  const groups = new Map<string, number>();
  for (const [k, t] of sd) {
    const n = numel(t.shape);
    stats.tensors++;
    stats.bytes += n * DTYPE_BYTES[t.dtype];
    const d = (stats.byDtype[t.dtype] ??= { tensors: 0, elements: 0 });
    d.tensors++;
    d.elements += n;
    if (isBufferKey(k)) {
      stats.bufferElements += n;
      continue;
    }
    stats.parameters += n;
    const group = k.split('.')[0]!;
    groups.set(group, (groups.get(group) ?? 0) + n);
  }
  stats.byGroup = [...groups.entries()];
  return stats;
}
