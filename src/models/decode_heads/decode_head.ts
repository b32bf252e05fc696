/**
 * What mmseg's BaseDecodeHead gives every head: input selection, Dropout2d before the 1×1
 * classifier `conv_seg`, and the segmentation loss (cross-entropy, ignore 255, averaged
 * over ALL pixels as mmseg's avg_non_ignore=False does) with the accuracy it logs.
 */
import { crossEntropy, dropout2d, interpolate } from '../../tensor/functional.js';
import { noGrad } from '../../tensor/runtime.js';
import type { Tensor, TensorDType } from '../../tensor/tensor.js';
import { Conv2d } from '../../nn/conv.js';
import { Module } from '../../nn/module.js';

export interface DecodeHeadConfig {
  in_channels: number | number[];
  in_index: number | number[];
  channels: number;
  num_classes: number;
  dropout_ratio: number;
  align_corners: boolean;
  loss_weight: number;
  ignore_index: number;
  bn_eps: number;
  /** BN statistics over the global batch in a distributed run (norm_cfg SyncBN), or per rank (BN). */
  bn_sync?: boolean;
}

export abstract class BaseDecodeHead extends Module {
  readonly convSeg: Conv2d;

  constructor(readonly cfg: DecodeHeadConfig) {
    super();
    this.convSeg = this.registerModule('conv_seg', new Conv2d(cfg.channels, cfg.num_classes, 1));
  }

  abstract forward(inputs: Tensor[]): Tensor;

  /** A new head of the same type and config (random weights). */
  protected abstract sameArchitecture(): BaseDecodeHead;

  /**
   * A copy of this head with its weights, in eval mode, cast to `dtype` on this head's device:
   * the low-precision variant that bf16 inference builds once and passes down.
   */
  castCopy(dtype: TensorDType): BaseDecodeHead {
    const copy = this.sameArchitecture();
    copy.loadStateDict(this.stateDict(), { strict: true });
    return copy.eval().to(this.device).to(dtype);
  }

  protected clsSeg(feat: Tensor): Tensor {
    return this.convSeg.forward(dropout2d(feat, this.cfg.dropout_ratio, this.training));
  }

  /** Loss and accuracy (a 0-d float64 tensor, read only when logged) against labels [B, H, W] (int64, 255 = ignore). */
  loss(logits: Tensor, label: Tensor): { loss: Tensor; acc: Tensor } {
    const [, h, w] = label.shape;
    const resized = interpolate(logits, [h, w], 'bilinear', this.cfg.align_corners);
    const perPixel = crossEntropy(resized, label, { reduction: 'none', ignoreIndex: this.cfg.ignore_index });
    const loss = perPixel.sum().div(perPixel.numel).mul(this.cfg.loss_weight);
    const acc = noGrad(() => accuracy(resized, label, this.cfg.ignore_index));
    return { loss, acc };
  }
}

/**
 * Percentage of non-ignored pixels whose argmax equals the label (mmseg's accuracy()), 0 where
 * every pixel is ignored. Computed on the device in float64 (the same number as counting on the
 * host) so that a training step never waits for it: a CUDA-graphed step cannot.
 */
export function accuracy(logits: Tensor, label: Tensor, ignoreIndex: number): Tensor {
  const valid = label.ne(ignoreIndex);
  const total = valid.sum().to('float64');
  const correct = logits.argmax(1).eq(label).logicalAnd(valid).sum().to('float64');
  return correct.mul(100).div(total.clamp(1));
}
