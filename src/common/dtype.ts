/**
 * Element types shared by the compute core (tensor/) and the file formats (checkpoint/).
 * This module sits below both so that neither imports the other.
 */
export type DType = 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'uint8' | 'bool';

/** Every dtype a HostTensor can carry, in a fixed order (used for validation and listings). */
export const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16', 'int64', 'int32', 'uint8', 'bool'];

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  uint8: 1,
  bool: 1,
};
