/** mmseg's FCNHead: num_convs 3×3 ConvModules (optionally concatenated with the input). */
import { cat, type Tensor } from '../../tensor/tensor.js';
import { Container } from '../../nn/container.js';
import { ConvModule } from '../../nn/conv_module.js';
import { BaseDecodeHead, type DecodeHeadConfig } from './decode_head.js';

export interface FCNHeadConfig extends DecodeHeadConfig {
  num_convs: number;
  kernel_size: number;
  concat_input: boolean;
  dilation: number;
}

export class FCNHead extends BaseDecodeHead {
  readonly convs: Container<ConvModule>;
  readonly convCat: ConvModule | null = null;
  private readonly inIndex: number;

  constructor(readonly fcnCfg: FCNHeadConfig) {
    super(fcnCfg);
    if (fcnCfg.dilation !== 1) throw new Error('FCNHead: only dilation 1 is supported');
    const inCh = fcnCfg.in_channels as number;
    if (Array.isArray(fcnCfg.in_index)) throw new Error('FCNHead: in_index must be a single index');
    this.inIndex = fcnCfg.in_index;
    const pad = Math.floor(fcnCfg.kernel_size / 2);
    this.convs = this.registerModule('convs', new Container());
    for (let i = 0; i < fcnCfg.num_convs; i++) {
      this.convs.add(
        new ConvModule(i === 0 ? inCh : fcnCfg.channels, fcnCfg.channels, fcnCfg.kernel_size, {
          padding: pad,
          bnEps: fcnCfg.bn_eps,
          bnSync: fcnCfg.bn_sync,
        }),
      );
    }
    if (fcnCfg.concat_input) {
      this.convCat = this.registerModule(
        'conv_cat',
        new ConvModule(inCh + fcnCfg.channels, fcnCfg.channels, fcnCfg.kernel_size, {
          padding: pad,
          bnEps: fcnCfg.bn_eps,
          bnSync: fcnCfg.bn_sync,
        }),
      );
    }
  }

  protected sameArchitecture(): FCNHead {
    return new FCNHead(this.fcnCfg);
  }

  forward(features: Tensor[]): Tensor {
    const x = features[this.inIndex];
    let y = x;
    for (const conv of this.convs) y = conv.forward(y);
    if (this.convCat) y = this.convCat.forward(cat([x, y], 1));
    return this.clsSeg(y);
  }
}
