/**
 * Parameter groups of mmseg's `LayerDecayOptimizerConstructor` (decay_type 'layer_wise_vit'):
 * layer-wise learning-rate decay for a ViT backbone, with mmseg's weight-decay rule.
 *
 * - L = num_layers + 2 ids. `backbone.cls_token`, `backbone.mask_token`, `backbone.pos_embed`
 *   and `backbone.patch_embed.*` get id 0, `backbone.layers.{i}.*` id i + 1, everything else
 *   (neck, heads, other backbone parameters) id L − 1.
 * - lr_scale = rate^(L − id − 1); group lr = lr_scale · base lr.
 * - No weight decay for 1-D parameters and names ending in `.bias`. mmseg also lists
 *   'pos_embed' and 'cls_token', but compares them with the full (prefixed) name, so that test
 *   never matches: `backbone.cls_token` (1×1×C) and the 2-D relative_position_bias_table ARE
 *   decayed. `correctedNoDecay` applies the exclusion as intended (cls_token, mask_token,
 *   pos_embed and relative_position_bias_table without decay, as timm/unilm do).
 * - Groups are named `layer_{id}_{decay|no_decay}` and ordered by first appearance while
 *   walking the parameters in registration order (PyTorch's named_parameters order);
 *   parameters that do not require grad are skipped.
 */
import type { Tensor } from '../tensor/tensor.js';

export interface LayerDecayOptions {
  /** Number of transformer layers of the backbone (paramwise_cfg.num_layers). */
  numLayers: number;
  /** paramwise_cfg.layer_decay_rate (or decay_rate). */
  decayRate: number;
  baseLr: number;
  baseWeightDecay: number;
  /** Exclude cls_token/mask_token/pos_embed/relative_position_bias_table from decay (default false = mmseg). */
  correctedNoDecay?: boolean;
}

export interface ParamGroup {
  name: string;
  layerId: number;
  lrScale: number;
  /** The group's initial lr (lr_scale · base lr); schedulers multiply this. */
  initialLr: number;
  /** The group's current lr (set by the scheduler). */
  lr: number;
  weightDecay: number;
  paramNames: string[];
  params: Tensor[];
}

/**
 * x^n for an integer n >= 0, correctly rounded (as C's pow, which Python's `**` calls, gives
 * for these inputs; V8's `**` can be one ulp off: 0.9 ** 4 = 0.6561000000000001 vs 0.6561).
 * The exact power of the double's mantissa is formed as a BigInt and rounded once.
 */
export function powRoundedExactly(x: number, n: number): number {
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`powRoundedExactly: exponent must be a non-negative integer, got ${n}`);
  if (n === 0) return 1;
  if (x === 0 || !Number.isFinite(x)) return x ** n;
  const neg = x < 0 && n % 2 === 1;
  let a = Math.abs(x);
  // a = m · 2^e with m an integer < 2^53
  let e = 0;
  while (!Number.isInteger(a)) {
    a *= 2;
    e--;
  }
  while (a >= 2 ** 53) {
    a /= 2;
    e++;
  }
  let big = BigInt(a) ** BigInt(n);
  let exp = e * n;
  const bits = big.toString(2).length;
  if (bits > 64) {
    // keep 64 bits plus a sticky bit so that the single rounding below stays correct
    const shift = BigInt(bits - 64);
    const rest = big & ((1n << shift) - 1n);
    big = (big >> shift) | (rest !== 0n ? 1n : 0n);
    exp += bits - 64;
  }
  let r = Number(big); // rounds to nearest, ties to even
  // scale by 2^exp in steps that stay exact (no intermediate overflow/underflow)
  while (exp > 0) {
    const s = Math.min(exp, 1000);
    r *= 2 ** s;
    exp -= s;
  }
  while (exp < 0) {
    const s = Math.min(-exp, 1000);
    r /= 2 ** s;
    exp += s;
  }
  return neg ? -r : r;
}

/** mmseg's get_layer_id_for_vit with max_layer_id = num_layers + 2. */
export function layerIdForVit(name: string, numLayersPlus2: number): number {
  if (name === 'backbone.cls_token' || name === 'backbone.mask_token' || name === 'backbone.pos_embed') return 0;
  if (name.startsWith('backbone.patch_embed')) return 0;
  if (name.startsWith('backbone.layers')) {
    const id = Number(name.split('.')[2]);
    if (!Number.isInteger(id)) throw new Error(`layer decay: cannot read the layer index of ${name}`);
    return id + 1;
  }
  return numLayersPlus2 - 1;
}

const CORRECTED_NO_DECAY = ['cls_token', 'mask_token', 'pos_embed', 'relative_position_bias_table'];

/** True when mmseg's rule (or the corrected one) gives the parameter no weight decay. */
export function isNoDecay(name: string, shape: readonly number[], corrected = false): boolean {
  if (shape.length === 1 || name.endsWith('.bias')) return true;
  // mmseg: `name in ('pos_embed', 'cls_token')` against prefixed names -> never true for a segmentor.
  if (name === 'pos_embed' || name === 'cls_token') return true;
  if (corrected) {
    const last = name.split('.').pop()!;
    return CORRECTED_NO_DECAY.includes(last);
  }
  return false;
}

/** Groups for `named` (e.g. model.namedParameters()), in mmseg's order. */
export function layerDecayParamGroups(named: [string, Tensor][], o: LayerDecayOptions): ParamGroup[] {
  if (!Number.isInteger(o.numLayers) || o.numLayers < 1)
    throw new Error(`layer decay: num_layers must be a positive integer, got ${o.numLayers}`);
  const L = o.numLayers + 2;
  const groups = new Map<string, ParamGroup>();
  for (const [name, p] of named) {
    if (!p.requiresGrad) continue;
    const noDecay = isNoDecay(name, p.shape, o.correctedNoDecay ?? false);
    const layerId = layerIdForVit(name, L);
    if (layerId >= L) {
      throw new Error(`layer decay: ${name} is in layer ${layerId - 1} but paramwise_cfg.num_layers is ${o.numLayers}`);
    }
    const groupName = `layer_${layerId}_${noDecay ? 'no_decay' : 'decay'}`;
    let g = groups.get(groupName);
    if (!g) {
      const lrScale = powRoundedExactly(o.decayRate, L - layerId - 1);
      g = {
        name: groupName,
        layerId,
        lrScale,
        initialLr: lrScale * o.baseLr,
        lr: lrScale * o.baseLr,
        weightDecay: noDecay ? 0 : o.baseWeightDecay,
        paramNames: [],
        params: [],
      };
      groups.set(groupName, g);
    }
    g.paramNames.push(name);
    g.params.push(p);
  }
  return [...groups.values()];
}

/** One group holding every trainable parameter (the plain optimizer, no constructor). */
export function singleParamGroup(named: [string, Tensor][], baseLr: number, weightDecay: number): ParamGroup[] {
  const train = named.filter(([, p]) => p.requiresGrad);
  return [
    {
      name: 'default',
      layerId: 0,
      lrScale: 1,
      initialLr: baseLr,
      lr: baseLr,
      weightDecay,
      paramNames: train.map(([n]) => n),
      params: train.map(([, p]) => p),
    },
  ];
}
