/**
 * mmseg's Feature2Pyramid: turns the four same-scale ViT maps into a pyramid. Rescale 4:
 * ConvT(2,2) -> BN -> GELU -> ConvT(2,2) (keys upsample_4x.{0,1,3}); 2: one ConvT
 * (upsample_2x.0); 1: identity; 0.5: max-pool 2; 0.25: max-pool 4.
 */
import { gelu, maxPool2d } from '../../tensor/functional.js';
import { tidy } from '../../tensor/scope.js';
import type { Tensor } from '../../tensor/tensor.js';
import { Container, Stateless } from '../../nn/container.js';
import { ConvTranspose2d } from '../../nn/conv.js';
import { Module } from '../../nn/module.js';
import { BatchNorm2d } from '../../nn/norm.js';

export interface Feature2PyramidConfig {
  embed_dim: number;
  rescales: number[];
  bn_eps?: number;
  /** norm_cfg SyncBN (true, the default) or BN (false): see BatchNorm2d. */
  bn_sync?: boolean;
}

export class Feature2Pyramid extends Module {
  readonly rescales: number[];
  private readonly up4?: { first: ConvTranspose2d; bn: BatchNorm2d; second: ConvTranspose2d };
  private readonly up2?: ConvTranspose2d;

  constructor(cfg: Feature2PyramidConfig) {
    super();
    const c = cfg.embed_dim;
    this.rescales = cfg.rescales;
    for (const r of cfg.rescales) {
      if (r === 4) {
        // mmseg's Sequential(ConvT, BN, GELU, ConvT): the indices 0, 1, 3 are the state-dict keys
        const seq = this.registerModule('upsample_4x', new Container());
        const first = seq.add(new ConvTranspose2d(c, c, 2, 2));
        const bn = seq.add(new BatchNorm2d(c, cfg.bn_eps ?? 1e-5, 0.1, cfg.bn_sync ?? true));
        seq.add(new Stateless());
        this.up4 = { first, bn, second: seq.add(new ConvTranspose2d(c, c, 2, 2)) };
      } else if (r === 2) {
        this.up2 = this.registerModule('upsample_2x', new Container()).add(new ConvTranspose2d(c, c, 2, 2));
      } else if (![1, 0.5, 0.25].includes(r)) {
        throw new Error(`Feature2Pyramid: invalid rescale ${r} (supported: 4, 2, 1, 0.5, 0.25)`);
      }
    }
  }

  forward(inputs: Tensor[]): Tensor[] {
    if (inputs.length !== this.rescales.length) {
      throw new Error(`Feature2Pyramid expects ${this.rescales.length} inputs, got ${inputs.length}`);
    }
    return inputs.map((x, i) => {
      switch (this.rescales[i]) {
        case 4: {
          const u = this.up4!;
          // a scope per branch: the three intermediate 4x maps go as soon as the branch is done
          return tidy(() => u.second.forward(gelu(u.bn.forward(u.first.forward(x)))));
        }
        case 2:
          return this.up2!.forward(x);
        case 1:
          return x;
        case 0.5:
          return maxPool2d(x, 2);
        default:
          return maxPool2d(x, 4);
      }
    });
  }
}
