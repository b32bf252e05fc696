/**
 * Parameter initialisers (fresh tensors, drawn from the seeded default generator). Only
 * needed for training from scratch: checkpoints overwrite them.
 */
import { rand, randn, zeros, ones, full, type Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';

/** PyTorch's default Linear/Conv init: kaiming_uniform(a=√5) = U(±1/√fan_in). */
export function defaultUniform(shape: number[], fanIn: number): Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  return rand(shape, -bound, bound);
}

/** trunc_normal(std) with mmcv's absolute bounds ±2 (no effect for small std). */
export function truncNormal(shape: number[], std: number): Tensor {
  return tidy(() => randn(shape).mul(std).clamp(-2, 2));
}

export function normal(shape: number[], std: number): Tensor {
  return tidy(() => randn(shape).mul(std));
}

export { zeros, ones, full };
