/** The `inspect` command's work: list a checkpoint's tensors and totals, for .pth and .safetensors. */
import { numel, type DType } from '../common/host_tensor.js';
import { readCheckpoint, type CheckpointDescription } from './read_checkpoint.js';
import { detectLayout, type CheckpointLayout } from './convert/beit2mmseg.js';
import { isBufferKey, stateDictStats, type StateDictStats } from './param_stats.js';
import type { PthReadOptions } from './formats/pth.js';

export interface InspectedTensor {
  key: string;
  dtype: DType;
  shape: number[];
  numel: number;
  buffer: boolean;
}

export interface InspectReport {
  description: CheckpointDescription;
  /** BEiT layout if recognisable, else null (the file may be some other model). */
  layout: CheckpointLayout | null;
  tensors: InspectedTensor[];
  stats: StateDictStats;
}

export async function inspectFile(file: string, opts: PthReadOptions = {}): Promise<InspectReport> {
  const { stateDict, description } = await readCheckpoint(file, opts);
  let layout: CheckpointLayout | null = null;
  try {
    layout = detectLayout(stateDict);
  } catch {
    layout = null;
  }
  const tensors = [...stateDict].map(([key, t]) => ({
    key,
    dtype: t.dtype,
    shape: t.shape.slice(),
    numel: numel(t.shape),
    buffer: isBufferKey(key),
  }));
  return { description, layout, tensors, stats: stateDictStats(stateDict) };
}
