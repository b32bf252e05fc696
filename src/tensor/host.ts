/** Bridges between HostTensors (plain bytes) and libtorch Tensors. */
import type { HostTensor } from '../common/host_tensor.js';
import { fromArray, type Tensor } from './tensor.js';

/** A CPU tensor over the HostTensor's bytes (no copy unless they are misaligned). */
export function toTensor(h: HostTensor): Tensor {
  return fromArray(h.data, h.shape, { dtype: h.dtype });
}

export function toHost(t: Tensor): HostTensor {
  const dtype = t.dtype;
  if (dtype === 'float64') throw new Error('float64 tensors have no HostTensor dtype; cast to float32 first');
  return { dtype, shape: t.shape, data: t.toBytes() };
}

export function mapToTensors(m: Map<string, HostTensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, v] of m) out.set(k, toTensor(v));
  return out;
}
