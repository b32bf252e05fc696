/**
 * A tensor held in plain host memory, independent of libtorch: what checkpoint readers
 * produce and writers consume, and what tensor/host.ts converts to and from libtorch tensors.
 * `data` holds the elements contiguously in row-major order, little-endian, exactly as
 * safetensors stores them (it is usually a view into a file buffer, not a copy).
 */
import { DTYPE_BYTES, DTYPES, type DType } from './dtype.js';

export { DTYPE_BYTES, DTYPES, type DType };

export interface HostTensor {
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Float32 view of a float32 HostTensor's bytes (copies only if the bytes are misaligned). */
export function asFloat32(t: HostTensor): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`expected a float32 tensor, got ${t.dtype} [${t.shape.join(', ')}]`);
  if (t.data.byteOffset % 4 === 0) return new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4);
  return new Float32Array(t.data.slice().buffer);
}

export function fromFloat32(values: Float32Array, shape: number[]): HostTensor {
  return { dtype: 'float32', shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/** True for a value shaped like a HostTensor (readers return them mixed with plain JS values). */
export function isHostTensor(value: unknown): value is HostTensor {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<HostTensor>;
  return (
    typeof v.dtype === 'string' &&
    (DTYPES as readonly string[]).includes(v.dtype) &&
    Array.isArray(v.shape) &&
    v.data instanceof Uint8Array
  );
}

/** Number of bytes the tensor's elements occupy (numel * element size). */
export function byteLength(t: Pick<HostTensor, 'dtype' | 'shape'>): number {
  return numel(t.shape) * DTYPE_BYTES[t.dtype];
}
