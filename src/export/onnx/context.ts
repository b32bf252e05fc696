/**
 * What every module exporter shares: the graph being built and the model's weights by
 * state-dict key (fp32 host copies), with helpers for the layers beitseg's nn/ defines.
 * Each helper emits the standard ONNX ops that compute what the module's forward() computes.
 */
import { Conv2d } from '../../nn/conv.js';
import type { Module } from '../../nn/module.js';
import { BatchNorm2d, LayerNorm } from '../../nn/norm.js';
import { GraphBuilder } from './graph.js';

export interface HostWeight {
  data: Float32Array;
  shape: number[];
}

export class ExportContext {
  readonly g = new GraphBuilder();
  private readonly added = new Map<string, string>();

  private readonly modules: Map<string, Module>;

  constructor(
    root: Module,
    private readonly weights: Map<string, HostWeight>,
  ) {
    this.modules = new Map(root.namedModules());
  }

  /** The module at `key` in the tree, checked to be of the class the exporter expects. */
  module<T extends Module>(key: string, cls: abstract new (...args: never[]) => T): T {
    const m = this.modules.get(key);
    if (!(m instanceof cls)) throw new Error(`export: ${key} is not a ${cls.name}`);
    return m;
  }

  /** The weight under state-dict `key` as an initializer (added once, named by its key). */
  weight(key: string): string {
    const have = this.added.get(key);
    if (have) return have;
    const w = this.raw(key);
    const name = this.g.float(key, w.shape, w.data);
    this.added.set(key, name);
    return name;
  }

  raw(key: string): HostWeight {
    const w = this.weights.get(key);
    if (!w) throw new Error(`export: the model has no weight ${key}`);
    return w;
  }

  has(key: string): boolean {
    return this.weights.has(key);
  }

  /** nn.Linear: x·Wᵀ + b as MatMul with the transposed weight stored (what ORT's fusions expect). */
  linear(x: string, key: string, bias = true): string {
    const w = this.raw(`${key}.weight`);
    const [out, inp] = w.shape;
    const t = new Float32Array(out * inp);
    for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) t[i * out + o] = w.data[o * inp + i];
    const wt = this.g.float(`${key}.weight_t`, [inp, out], t);
    const y = this.g.op('MatMul', [x, wt], {}, `${key}.matmul`);
    return bias && this.has(`${key}.bias`) ? this.g.op('Add', [y, this.weight(`${key}.bias`)], {}, key) : y;
  }

  layerNorm(x: string, key: string): string {
    const eps = this.module(key, LayerNorm).eps;
    return this.g.op(
      'LayerNormalization',
      [x, this.weight(`${key}.weight`), this.weight(`${key}.bias`)],
      { axis: -1, epsilon: eps },
      key,
    );
  }

  /** Set by the exporter: 3×3 convolutions as Winograd F(2,3) (see winograd.ts). */
  winograd: ((ctx: ExportContext, x: string, key: string) => string) | null = null;

  conv(x: string, key: string): string {
    const m = this.module(key, Conv2d);
    const plain3x3 = m.kernelSize === 3 && m.stride === 1 && m.padding === 1 && m.dilation === 1 && m.groups === 1;
    if (this.winograd && plain3x3) return this.winograd(this, x, key);
    const [k, p, s, d] = [m.kernelSize, m.padding, m.stride, m.dilation];
    const inputs = [x, this.weight(`${key}.weight`)];
    if (this.has(`${key}.bias`)) inputs.push(this.weight(`${key}.bias`));
    const attrs = { kernel_shape: [k, k], strides: [s, s], pads: [p, p, p, p], dilations: [d, d], group: m.groups };
    return this.g.op('Conv', inputs, attrs, key);
  }

  convTranspose(x: string, key: string, stride: number): string {
    const k = this.raw(`${key}.weight`).shape[2];
    return this.g.op(
      'ConvTranspose',
      [x, this.weight(`${key}.weight`), this.weight(`${key}.bias`)],
      { kernel_shape: [k, k], strides: [stride, stride] },
      key,
    );
  }

  /** BatchNorm2d in eval mode (running statistics). */
  batchNorm(x: string, key: string): string {
    const eps = this.module(key, BatchNorm2d).eps;
    const ins = ['weight', 'bias', 'running_mean', 'running_var'].map((n) => this.weight(`${key}.${n}`));
    return this.g.op('BatchNormalization', [x, ...ins], { epsilon: eps }, key);
  }

  /** GELU in its exact Erf form: 0.5·x·(1 + erf(x/√2)) (ORT fuses it into one Gelu kernel). */
  gelu(x: string): string {
    const g = this.g;
    const e = g.op('Erf', [g.op('Div', [x, g.constFloat([Math.SQRT2], [])])]);
    return g.op(
      'Mul',
      [g.op('Mul', [x, g.op('Add', [e, g.constFloat([1], [])])]), g.constFloat([0.5], [])],
      {},
      'gelu',
    );
  }

  /** Bilinear resize of NCHW `x` to the spatial size of `like` (torch interpolate, size given). */
  resizeLike(x: string, like: string, alignCorners: boolean): string {
    const g = this.g;
    const sizes = g.op('Concat', [this.dims(x, 0, 2), this.dims(like, 2, 4)], { axis: 0 });
    return g.op('Resize', [x, '', '', sizes], {
      mode: 'linear',
      coordinate_transformation_mode: alignCorners ? 'align_corners' : 'half_pixel',
    });
  }

  /** Shape(x)[start:end] as an int64 vector. */
  dims(x: string, start: number, end: number): string {
    return this.g.op('Shape', [x], { start, end });
  }
}
