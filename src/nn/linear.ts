import { linear } from '../tensor/functional.js';
import type { Tensor } from '../tensor/tensor.js';
import { defaultUniform } from './init.js';
import { Module } from './module.js';

/** nn.Linear: y = x Wᵀ + b, weight [out, in]. */
export class Linear extends Module {
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    bias = true,
  ) {
    super();
    this.registerParameter('weight', defaultUniform([outFeatures, inFeatures], inFeatures));
    if (bias) this.registerParameter('bias', defaultUniform([outFeatures], inFeatures));
    this.hasBias = bias;
  }
  private readonly hasBias: boolean;

  forward(x: Tensor): Tensor {
    return linear(x, this.parameter('weight'), this.hasBias ? this.parameter('bias') : null);
  }
}
