/**
 * mmseg's EncoderDecoder: backbone -> neck -> decode head (+ auxiliary head in training),
 * with whole-image and sliding-window inference exactly as mmseg windows and averages.
 */
import { interpolate } from '../../tensor/functional.js';
import { tidy } from '../../tensor/scope.js';
import { autocast, deviceTypeOf } from '../../tensor/runtime.js';
import type { Tensor } from '../../tensor/tensor.js';
import { Module } from '../../nn/module.js';
import type { BEiT, LinearKernel } from '../backbones/beit.js';
import type { Feature2Pyramid } from '../necks/feature2pyramid.js';
import type { BaseDecodeHead } from '../decode_heads/decode_head.js';
import { runSlideJob, SlideJob } from './slide_job.js';

export { slideWindows, type Window } from './slide_windows.js';

export interface TestConfig {
  mode: 'whole' | 'slide';
  crop_size?: [number, number];
  stride?: [number, number];
}

/**
 * How one inference computes, chosen by the caller and passed down through inference /
 * slideInference / encodeDecode (nothing is stored on the model): the backbone's linear
 * layers through another kernel (int8 with weights packed once), the decode head as a copy in
 * a lower dtype. The default ({}) is the model as it is, under whatever autocast is in force.
 * src/inference/precision.ts builds these once per model and policy.
 */
export interface ForwardPrecision {
  backboneLinear?: LinearKernel | null;
  /** A bf16 copy of the decode head: it runs outside autocast on bf16 copies of the features. */
  lowPrecisionHead?: BaseDecodeHead | null;
}

/**
 * The low-precision head on bf16 copies of `feats`, which it consumes: each fp32 map is freed
 * once cast, so the fp32 features never sit beside the head's peak.
 */
function lowPrecisionDecode(head: BaseDecodeHead, feats: Tensor[], device: string): Tensor {
  const low = feats.map((f) => {
    const cast = f.to('bfloat16');
    f.dispose();
    return cast;
  });
  return autocast(deviceTypeOf(device), null, () => head.forward(low)).float();
}

export interface SlideInferenceOptions {
  /** Windows per forward pass (default 1). */
  windowBatch?: number;
  /** Called after each forward pass with the windows done and their total. */
  onWindow?: (done: number, total: number) => void;
  precision?: ForwardPrecision;
  /** Runs a batch of slide windows in place of encodeDecode (a replayed CUDA graph of it). */
  windowForward?: (crops: Tensor) => Tensor;
}

export interface LossOutput {
  'decode.loss_ce': Tensor;
  'decode.acc_seg': Tensor;
  'aux.loss_ce'?: Tensor;
  'aux.acc_seg'?: Tensor;
  loss: Tensor;
}

export class EncoderDecoder extends Module {
  constructor(
    readonly backbone: BEiT,
    readonly neck: Feature2Pyramid | null,
    readonly decodeHead: BaseDecodeHead,
    readonly auxiliaryHead: BaseDecodeHead | null,
    readonly testCfg: TestConfig,
  ) {
    super();
    this.registerModule('backbone', backbone);
    if (neck) this.registerModule('neck', neck);
    this.registerModule('decode_head', decodeHead);
    if (auxiliaryHead) this.registerModule('auxiliary_head', auxiliaryHead);
  }

  get numClasses(): number {
    return this.decodeHead.cfg.num_classes;
  }

  extractFeat(img: Tensor, precision: ForwardPrecision = {}): Tensor[] {
    const feats = this.backbone.forward(img, { linear: precision.backboneLinear ?? undefined });
    return this.neck ? this.neck.forward(feats) : feats;
  }

  /** Decode-head logits resized to the input's size (mmseg's encode_decode). */
  encodeDecode(img: Tensor, precision: ForwardPrecision = {}): Tensor {
    return tidy(() => {
      const feats = this.extractFeat(img, precision);
      const lowHead = this.training ? null : precision.lowPrecisionHead;
      const logits = lowHead ? lowPrecisionDecode(lowHead, feats, img.device) : this.decodeHead.forward(feats);
      const [, , h, w] = img.shape;
      return interpolate(logits, [h, w], 'bilinear', this.decodeHead.cfg.align_corners);
    });
  }

  /** Logits [B, C, H, W] for normalised images [B, 3, H, W] by the configured test mode. */
  inference(
    img: Tensor,
    opts: {
      mode?: 'whole' | 'slide';
      windowBatch?: number;
      precision?: ForwardPrecision;
      /** Runs a batch of slide windows in place of encodeDecode (a replayed CUDA graph of it). */
      windowForward?: (crops: Tensor) => Tensor;
      /** Progress of slide mode: windows done and in all, after each batch. */
      onWindow?: (done: number, total: number) => void;
    } = {},
  ): Tensor {
    const mode = opts.mode ?? this.testCfg.mode;
    return mode === 'slide' ? this.slideInference(img, opts) : this.encodeDecode(img, opts.precision);
  }

  /**
   * mmseg's slide_inference: each window's logits (resized to the crop) are summed into a
   * full-size map and divided by how many windows cover each pixel (one SlideJob run to the end).
   * `windowBatch` windows go through the network together (same numbers, better throughput).
   * `windowForward`, where given, computes a batch of windows in place of encodeDecode with
   * `precision`; `onWindow` reports progress after each batch.
   */
  slideInference(img: Tensor, opts: SlideInferenceOptions = {}): Tensor {
    const crop = this.testCfg.crop_size,
      stride = this.testCfg.stride;
    if (!crop || !stride) throw new Error('slide inference needs model.test_cfg.crop_size and stride');
    const precision = opts.precision ?? {};
    const forward = opts.windowForward ?? ((crops: Tensor) => this.encodeDecode(crops, precision));
    const job = new SlideJob(img, { numClasses: this.numClasses, crop, stride });
    return runSlideJob(job, forward, { windowBatch: opts.windowBatch, onWindow: opts.onWindow });
  }

  /** Training losses for normalised images [B, 3, H, W] and labels [B, H, W] (int64, 255 ignored). */
  loss(img: Tensor, label: Tensor): LossOutput {
    const feats = this.extractFeat(img);
    const decode = this.decodeHead.loss(this.decodeHead.forward(feats), label);
    const out: LossOutput = { 'decode.loss_ce': decode.loss, 'decode.acc_seg': decode.acc, loss: decode.loss };
    if (this.auxiliaryHead) {
      const aux = this.auxiliaryHead.loss(this.auxiliaryHead.forward(feats), label);
      out['aux.loss_ce'] = aux.loss;
      out['aux.acc_seg'] = aux.acc;
      out.loss = decode.loss.add(aux.loss);
    }
    return out;
  }
}
