/**
 * BEiT backbone as mmseg's `BEiT` (mmseg/models/backbones/beit.py): 16×16 patch embedding,
 * a cls token, pre-norm transformer layers with per-layer relative position bias, q/v bias
 * and layer scale (gamma), features tapped after `out_indices` as NCHW maps.
 * State-dict keys are mmseg's: patch_embed.projection, cls_token, layers.{i}.{ln1, attn.*,
 * ln2, ffn.layers.0.0, ffn.layers.1, gamma_1, gamma_2}.
 */
import { gatheredBiasAttention, gelu } from '../../tensor/functional.js';
import { tidy } from '../../tensor/scope.js';
import { bernoulli, cat, zeros, type Tensor } from '../../tensor/tensor.js';
import { Container } from '../../nn/container.js';
import { Conv2d } from '../../nn/conv.js';
import { full, truncNormal } from '../../nn/init.js';
import { Linear } from '../../nn/linear.js';
import { Module } from '../../nn/module.js';
import { LayerNorm } from '../../nn/norm.js';
import { numRelativeDistance, relativePositionIndex, resizeBiasTable } from './rel_pos.js';

export interface BEiTConfig {
  img_size: number | [number, number];
  patch_size: number;
  in_channels: number;
  embed_dims: number;
  num_layers: number;
  num_heads: number;
  mlp_ratio: number;
  out_indices: number[];
  qv_bias: boolean;
  attn_drop_rate: number;
  drop_path_rate: number;
  init_values: number;
  final_norm: boolean;
  norm_eps: number;
}

export const BEIT_DEFAULTS: BEiTConfig = {
  img_size: 224,
  patch_size: 16,
  in_channels: 3,
  embed_dims: 768,
  num_layers: 12,
  num_heads: 12,
  mlp_ratio: 4,
  out_indices: [3, 5, 7, 11],
  qv_bias: true,
  attn_drop_rate: 0,
  drop_path_rate: 0.1,
  init_values: 0.1,
  final_norm: false,
  norm_eps: 1e-6,
};

type Grid = [number, number];

/**
 * How a backbone Linear computes, passed down by the caller (ForwardPrecision): the layer's
 * own fp32 matmul (under any autocast) when absent, or e.g. an int8 kernel whose packed
 * weights were made once (src/inference/precision.ts).
 */
export type LinearKernel = (layer: Linear, x: Tensor) => Tensor;

/** Options of one backbone forward pass. */
export interface BEiTForwardOptions {
  linear?: LinearKernel;
}

function applyLinear(layer: Linear, x: Tensor, kernel?: LinearKernel): Tensor {
  return kernel ? kernel(layer, x) : layer.forward(x);
}

class PatchEmbed extends Module {
  readonly projection: Conv2d;
  constructor(inChannels: number, embedDims: number, patch: number) {
    super();
    this.projection = this.registerModule('projection', new Conv2d(inChannels, embedDims, patch, { stride: patch }));
  }
  /** [B, 3, H, W] -> tokens [B, h·w, C] (h-major) and the patch grid. Trailing pixels are dropped. */
  forward(x: Tensor): { tokens: Tensor; grid: Grid } {
    const y = this.projection.forward(x);
    const [, , h, w] = y.shape;
    return { tokens: y.flatten(2).transpose(1, 2), grid: [h, w] };
  }
}

export class BEiTAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly headDim: number;
  readonly scale: number;

  constructor(
    readonly embedDims: number,
    readonly numHeads: number,
    readonly window: Grid,
    readonly qvBias: boolean,
  ) {
    super();
    this.headDim = embedDims / numHeads;
    this.scale = this.headDim ** -0.5;
    this.qkv = this.registerModule('qkv', new Linear(embedDims, embedDims * 3, false));
    if (qvBias) {
      this.registerParameter('q_bias', zeros([embedDims]));
      this.registerParameter('v_bias', zeros([embedDims]));
    }
    this.registerParameter(
      'relative_position_bias_table',
      truncNormal([numRelativeDistance(window[0], window[1]), numHeads], 0.02),
    );
    this.registerBuffer('relative_position_index', relativePositionIndex(window[0], window[1]), { derived: true });
    this.proj = this.registerModule('proj', new Linear(embedDims, embedDims));
  }

  /**
   * The bias of a patch grid as a transposed table [heads, T] and an index [N, N]:
   * bias[h, i, j] = tableT[h, index[i, j]], mmseg's table[index].view(N, N, heads).permute(2, 0, 1).
   * The table is interpolated when the grid is not the window. Attention gathers from it (whole,
   * or one query block at a time), so the [heads, N, N] bias need not exist.
   */
  relativePositionTable(grid: Grid): { tableT: Tensor; index: Tensor } {
    let table = this.parameter('relative_position_bias_table');
    let index = this.buffer('relative_position_index');
    if (grid[0] !== this.window[0] || grid[1] !== this.window[1]) {
      table = resizeBiasTable(table, this.window, grid);
      index = relativePositionIndex(grid[0], grid[1], table.device);
    }
    return { tableT: table.transpose(0, 1).contiguous(), index };
  }

  /** Bias [heads, N, N] for a patch grid, gathered whole (what mmseg's attention adds). */
  relativePositionBias(grid: Grid): Tensor {
    const { tableT, index } = this.relativePositionTable(grid);
    const n = grid[0] * grid[1] + 1;
    // gathered from the transposed (tiny) table straight into a contiguous [heads, N, N]
    return tableT.indexSelect(1, index.view(-1)).view(this.numHeads, n, n);
  }

  forward(x: Tensor, grid: Grid, linear?: LinearKernel): Tensor {
    const [b, n, c] = x.shape;
    let bias: Tensor | null = null;
    if (this.qvBias) {
      const q = this.parameter('q_bias');
      bias = cat([q, zeros([c], q.dtype, q.device), this.parameter('v_bias')]);
    }
    const qkv = applyLinear(this.qkv, x, linear);
    const withBias = bias ? qkv.add(bias) : qkv;
    const parts = withBias.reshape(b, n, 3, this.numHeads, this.headDim).permute(2, 0, 3, 1, 4);
    const { tableT, index } = this.relativePositionTable(grid);
    const out = gatheredBiasAttention(
      parts.select(0, 0),
      parts.select(0, 1),
      parts.select(0, 2),
      tableT,
      index,
      this.scale,
    );
    return applyLinear(this.proj, out.transpose(1, 2).reshape(b, n, c), linear);
  }
}

class FFN extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(dims: number, hidden: number) {
    super();
    // mmcv FFN keys: layers.0.0 (Linear inside a Sequential with the activation), layers.1
    const layers = this.registerModule('layers', new Container());
    const first = layers.add(new Container<Linear>());
    this.fc1 = first.add(new Linear(dims, hidden));
    this.fc2 = layers.add(new Linear(hidden, dims));
  }
  forward(x: Tensor, linear?: LinearKernel): Tensor {
    return applyLinear(this.fc2, gelu(applyLinear(this.fc1, x, linear)), linear);
  }
}

/** Stochastic depth: drops a sample's whole residual branch with probability p in training. */
export function dropPath(x: Tensor, p: number, training: boolean): Tensor {
  if (!training || p === 0) return x;
  const keepProb = 1 - p;
  const mask = bernoulli([x.size(0), ...Array(x.ndim - 1).fill(1)], keepProb, x.dtype, x.device);
  return x.div(keepProb).mul(mask);
}

export class BEiTTransformerEncoderLayer extends Module {
  readonly ln1: LayerNorm;
  readonly attn: BEiTAttention;
  readonly ln2: LayerNorm;
  readonly ffn: FFN;

  constructor(
    cfg: BEiTConfig,
    window: Grid,
    readonly dropPathRate: number,
  ) {
    super();
    this.ln1 = this.registerModule('ln1', new LayerNorm(cfg.embed_dims, cfg.norm_eps));
    this.attn = this.registerModule('attn', new BEiTAttention(cfg.embed_dims, cfg.num_heads, window, cfg.qv_bias));
    this.ln2 = this.registerModule('ln2', new LayerNorm(cfg.embed_dims, cfg.norm_eps));
    this.ffn = this.registerModule('ffn', new FFN(cfg.embed_dims, cfg.embed_dims * cfg.mlp_ratio));
    this.registerParameter('gamma_1', full([cfg.embed_dims], cfg.init_values));
    this.registerParameter('gamma_2', full([cfg.embed_dims], cfg.init_values));
  }

  forward(x: Tensor, grid: Grid, linear?: LinearKernel): Tensor {
    const a = this.attn.forward(this.ln1.forward(x), grid, linear).mul(this.parameter('gamma_1'));
    const y = x.add(dropPath(a, this.dropPathRate, this.training));
    const f = this.ffn.forward(this.ln2.forward(y), linear).mul(this.parameter('gamma_2'));
    return y.add(dropPath(f, this.dropPathRate, this.training));
  }
}

export class BEiT extends Module {
  readonly cfg: BEiTConfig;
  readonly window: Grid;
  readonly patchEmbed: PatchEmbed;
  readonly layers: Container<BEiTTransformerEncoderLayer>;
  readonly finalNorm: LayerNorm | null = null;

  constructor(config: Partial<BEiTConfig>) {
    super();
    const cfg = { ...BEIT_DEFAULTS, ...config };
    this.cfg = cfg;
    const img = typeof cfg.img_size === 'number' ? [cfg.img_size, cfg.img_size] : cfg.img_size;
    this.window = [Math.floor(img[0] / cfg.patch_size), Math.floor(img[1] / cfg.patch_size)];
    this.patchEmbed = this.registerModule(
      'patch_embed',
      new PatchEmbed(cfg.in_channels, cfg.embed_dims, cfg.patch_size),
    );
    this.registerParameter('cls_token', truncNormal([1, 1, cfg.embed_dims], 0.02));
    this.layers = this.registerModule('layers', new Container());
    for (let i = 0; i < cfg.num_layers; i++) {
      // stochastic depth rate grows linearly over depth (torch.linspace(0, rate, L))
      const rate = cfg.num_layers > 1 ? (cfg.drop_path_rate * i) / (cfg.num_layers - 1) : 0;
      this.layers.add(new BEiTTransformerEncoderLayer(cfg, this.window, rate));
    }
    if (cfg.final_norm) this.finalNorm = this.registerModule('ln1', new LayerNorm(cfg.embed_dims, cfg.norm_eps));
  }

  /** [B, 3, H, W] -> one NCHW map [B, C, H/16, W/16] per out index. */
  forward(img: Tensor, opts: BEiTForwardOptions = {}): Tensor[] {
    const { tokens, grid } = this.patchEmbed.forward(img);
    const [b, , c] = tokens.shape;
    const cls = this.parameter('cls_token').expand(b, -1, -1);
    let x = cat([cls, tokens], 1);
    const outs: Tensor[] = [];
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers.at(i);
      x = tidy(() => layer.forward(x, grid, opts.linear));
      if (i === this.layers.length - 1 && this.finalNorm) x = this.finalNorm.forward(x);
      if (this.cfg.out_indices.includes(i)) {
        outs.push(x.slice(1, 1, x.size(1)).reshape(b, grid[0], grid[1], c).permute(0, 3, 1, 2).contiguous());
      }
    }
    return outs;
  }
}
