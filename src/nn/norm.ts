import { distributedGroup } from '../distributed/context.js';
import { syncBatchNorm } from '../distributed/sync_batch_norm.js';
import { batchNorm, layerNorm } from '../tensor/functional.js';
import { noGrad } from '../tensor/runtime.js';
import { ones, tensor, zeros, type Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';

/** nn.LayerNorm over the last dimension. */
export class LayerNorm extends Module {
  constructor(
    readonly dim: number,
    readonly eps: number,
  ) {
    super();
    this.registerParameter('weight', ones([dim]));
    this.registerParameter('bias', zeros([dim]));
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, [this.dim], this.parameter('weight'), this.parameter('bias'), this.eps);
  }
}

/**
 * nn.BatchNorm2d / SyncBatchNorm (mmseg's norm_cfg SyncBN): batch statistics and running-stat
 * updates in training, running statistics in eval. In a distributed run (a default process
 * group of more than one rank) training statistics are those of the global batch, as torch's
 * SyncBatchNorm, unless `sync` is false (mmseg's norm_cfg BN: per-rank statistics); with one
 * process it is plain BatchNorm.
 */
export class BatchNorm2d extends Module {
  constructor(
    readonly numFeatures: number,
    readonly eps = 1e-5,
    readonly momentum = 0.1,
    readonly sync = true,
  ) {
    super();
    this.registerParameter('weight', ones([numFeatures]));
    this.registerParameter('bias', zeros([numFeatures]));
    this.registerBuffer('running_mean', zeros([numFeatures]));
    this.registerBuffer('running_var', ones([numFeatures]));
    this.registerBuffer('num_batches_tracked', tensor([0], [], 'int64'));
  }

  forward(x: Tensor): Tensor {
    if (this.training) {
      // int64 arithmetic: add_(1) passes a double scalar (and a double alpha), which libtorch
      // refuses for the int64 counter
      noGrad(() => {
        const counter = this.buffer('num_batches_tracked');
        const one = tensor([1], [], 'int64');
        const next = counter.add(one);
        counter.copy_(next);
        one.dispose();
        next.dispose();
      });
    }
    const group = this.training && this.sync ? distributedGroup() : null;
    if (group) {
      return syncBatchNorm(
        x,
        this.buffer('running_mean'),
        this.buffer('running_var'),
        this.parameter('weight'),
        this.parameter('bias'),
        this.momentum,
        this.eps,
        group,
      );
    }
    return batchNorm(
      x,
      this.buffer('running_mean'),
      this.buffer('running_var'),
      this.parameter('weight'),
      this.parameter('bias'),
      this.training,
      this.momentum,
      this.eps,
    );
  }
}
