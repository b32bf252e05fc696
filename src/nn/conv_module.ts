import { relu } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { Conv2d } from './conv.js';
import { Module } from './module.js';
import { BatchNorm2d } from './norm.js';

/** mmcv's ConvModule as mmseg's heads use it: Conv2d (no bias: a norm follows) -> BN -> ReLU. */
export class ConvModule extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;

  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    o: { padding?: number; bnEps?: number; bnSync?: boolean } = {},
  ) {
    super();
    this.conv = this.registerModule(
      'conv',
      new Conv2d(inChannels, outChannels, kernelSize, { padding: o.padding ?? 0, bias: false }),
    );
    this.bn = this.registerModule('bn', new BatchNorm2d(outChannels, o.bnEps ?? 1e-5, 0.1, o.bnSync ?? true));
  }

  forward(x: Tensor): Tensor {
    // the conv and BN outputs are freed as soon as ReLU has run (large maps in the heads)
    return tidy(() => relu(this.bn.forward(this.conv.forward(x))));
  }
}
