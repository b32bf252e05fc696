/**
 * mmseg's UPerHead: a pyramid pooling module (PPM) on the coarsest level, a top-down FPN
 * over the laterals, then all levels upsampled to the finest and fused.
 */
import { adaptiveAvgPool2d, interpolate } from '../../tensor/functional.js';
import { consume, tidy } from '../../tensor/scope.js';
import { cat, type Tensor } from '../../tensor/tensor.js';
import { Container, Stateless } from '../../nn/container.js';
import { ConvModule } from '../../nn/conv_module.js';
import { BaseDecodeHead, type DecodeHeadConfig } from './decode_head.js';

export interface UPerHeadConfig extends DecodeHeadConfig {
  pool_scales: number[];
}

export class UPerHead extends BaseDecodeHead {
  private readonly ppm: ConvModule[] = [];
  readonly bottleneck: ConvModule;
  readonly lateralConvs: Container<ConvModule>;
  readonly fpnConvs: Container<ConvModule>;
  readonly fpnBottleneck: ConvModule;
  private readonly inChannels: number[];
  private readonly inIndex: number[];

  constructor(readonly upCfg: UPerHeadConfig) {
    super(upCfg);
    const ch = upCfg.channels;
    const eps = upCfg.bn_eps;
    this.inChannels = Array.isArray(upCfg.in_channels) ? upCfg.in_channels : [upCfg.in_channels];
    this.inIndex = Array.isArray(upCfg.in_index) ? upCfg.in_index : [upCfg.in_index];
    const last = this.inChannels[this.inChannels.length - 1];
    const psp = this.registerModule('psp_modules', new Container());
    for (const _scale of upCfg.pool_scales) {
      const branch = psp.add(new Container());
      branch.add(new Stateless()); // index 0 is the AdaptiveAvgPool2d
      this.ppm.push(branch.add(new ConvModule(last, ch, 1, { bnEps: eps, bnSync: upCfg.bn_sync })));
    }
    this.bottleneck = this.registerModule(
      'bottleneck',
      new ConvModule(last + upCfg.pool_scales.length * ch, ch, 3, { padding: 1, bnEps: eps, bnSync: upCfg.bn_sync }),
    );
    this.lateralConvs = this.registerModule('lateral_convs', new Container());
    this.fpnConvs = this.registerModule('fpn_convs', new Container());
    for (const c of this.inChannels.slice(0, -1)) {
      this.lateralConvs.add(new ConvModule(c, ch, 1, { bnEps: eps, bnSync: upCfg.bn_sync }));
      this.fpnConvs.add(new ConvModule(ch, ch, 3, { padding: 1, bnEps: eps, bnSync: upCfg.bn_sync }));
    }
    this.fpnBottleneck = this.registerModule(
      'fpn_bottleneck',
      new ConvModule(this.inChannels.length * ch, ch, 3, { padding: 1, bnEps: eps, bnSync: upCfg.bn_sync }),
    );
  }

  protected sameArchitecture(): UPerHead {
    return new UPerHead(this.upCfg);
  }

  private resize(x: Tensor, like: Tensor): Tensor {
    const [, , h, w] = like.shape;
    return interpolate(x, [h, w], 'bilinear', this.cfg.align_corners);
  }

  private pspForward(x: Tensor): Tensor {
    return tidy(() => {
      const pooled = this.upCfg.pool_scales.map((s, i) => this.resize(this.ppm[i].forward(adaptiveAvgPool2d(x, s)), x));
      return this.bottleneck.forward(cat([x, ...pooled], 1));
    });
  }

  /**
   * mmseg's UPerHead forward. Each `consume` frees the maps a step has used up (a lateral once
   * summed, the FPN outputs once concatenated): at 640×640 they are the largest tensors of the
   * head, and holding them to the end of the pass would set its peak memory.
   */
  forward(features: Tensor[]): Tensor {
    const inputs = this.inIndex.map((i) => features[i]);
    const laterals = [...this.lateralConvs].map((conv, i) => conv.forward(inputs[i]));
    laterals.push(this.pspForward(inputs[inputs.length - 1]));
    // top-down path: laterals[i - 1] += resize(laterals[i])
    for (let i = laterals.length - 1; i > 0; i--) {
      laterals[i - 1] = consume(laterals[i - 1], (prev) => prev.add(this.resize(laterals[i], prev)));
    }
    const last = laterals.length - 1;
    const fpnOuts = laterals.map((l, i) => (i === last ? l : consume(l, (x) => this.fpnConvs.at(i).forward(x))));
    const fused = consume(fpnOuts, (outs) =>
      cat(
        outs.map((o, i) => (i === 0 ? o : this.resize(o, outs[0]))),
        1,
      ),
    );
    const feats = consume(fused, (x) => this.fpnBottleneck.forward(x));
    return consume(feats, (x) => this.clsSeg(x));
  }
}
