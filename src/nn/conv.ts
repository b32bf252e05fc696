import { conv2d, convTranspose2d } from '../tensor/functional.js';
import type { Tensor } from '../tensor/tensor.js';
import { defaultUniform } from './init.js';
import { Module } from './module.js';

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
  bias?: boolean;
}

/** nn.Conv2d, weight [out, in / groups, k, k]. */
export class Conv2d extends Module {
  readonly stride: number;
  readonly padding: number;
  readonly dilation: number;
  readonly groups: number;
  private readonly hasBias: boolean;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    o: Conv2dOptions = {},
  ) {
    super();
    this.stride = o.stride ?? 1;
    this.padding = o.padding ?? 0;
    this.dilation = o.dilation ?? 1;
    this.groups = o.groups ?? 1;
    this.hasBias = o.bias ?? true;
    const fanIn = (inChannels / this.groups) * kernelSize * kernelSize;
    this.registerParameter(
      'weight',
      defaultUniform([outChannels, inChannels / this.groups, kernelSize, kernelSize], fanIn),
    );
    if (this.hasBias) this.registerParameter('bias', defaultUniform([outChannels], fanIn));
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.parameter('weight'), this.hasBias ? this.parameter('bias') : null, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }
}

/** nn.ConvTranspose2d, weight [in, out, k, k]. */
export class ConvTranspose2d extends Module {
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly stride: number,
  ) {
    super();
    // PyTorch computes fan_in from weight.size(1) * k * k for transposed convs.
    const fanIn = outChannels * kernelSize * kernelSize;
    this.registerParameter('weight', defaultUniform([inChannels, outChannels, kernelSize, kernelSize], fanIn));
    this.registerParameter('bias', defaultUniform([outChannels], fanIn));
  }

  forward(x: Tensor): Tensor {
    return convTranspose2d(x, this.parameter('weight'), this.parameter('bias'), { stride: this.stride });
  }
}
