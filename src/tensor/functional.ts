/**
 * Functional NN ops, named after torch.nn.functional. Shapes are NCHW unless stated.
 */
import { native, type PackedInt8Linear } from './native.js';
import { type Tensor, wrap } from './tensor.js';

type Pair = number | [number, number];
const pair = (v: Pair): number[] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return wrap(native.linear(x.handle, weight.handle, bias?.handle ?? null));
}

export interface ConvOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: ConvOptions = {}): Tensor {
  return wrap(
    native.conv2d(
      x.handle,
      weight.handle,
      bias?.handle ?? null,
      pair(o.stride ?? 1),
      pair(o.padding ?? 0),
      pair(o.dilation ?? 1),
      o.groups ?? 1,
    ),
  );
}

/** weight layout [C_in, C_out / groups, kh, kw] as torch. */
export function convTranspose2d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  o: ConvOptions & { outputPadding?: Pair } = {},
): Tensor {
  return wrap(
    native.convTranspose2d(
      x.handle,
      weight.handle,
      bias?.handle ?? null,
      pair(o.stride ?? 1),
      pair(o.padding ?? 0),
      pair(o.outputPadding ?? 0),
      o.groups ?? 1,
      pair(o.dilation ?? 1),
    ),
  );
}

export function layerNorm(
  x: Tensor,
  normalizedShape: number[],
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
): Tensor {
  return wrap(native.layerNorm(x.handle, normalizedShape, weight?.handle ?? null, bias?.handle ?? null, eps));
}

/** torch.nn.functional.batch_norm: in training mode running stats are updated in place. */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null,
  bias: Tensor | null,
  training: boolean,
  momentum: number,
  eps: number,
): Tensor {
  return wrap(
    native.batchNorm(
      x.handle,
      weight?.handle ?? null,
      bias?.handle ?? null,
      runningMean?.handle ?? null,
      runningVar?.handle ?? null,
      training,
      momentum,
      eps,
    ),
  );
}

/** Exact (erf) GELU, nn.GELU's default. */
export function gelu(x: Tensor): Tensor {
  return wrap(native.gelu(x.handle));
}
export function relu(x: Tensor): Tensor {
  return wrap(native.relu(x.handle));
}
export function softmax(x: Tensor, dim: number): Tensor {
  return wrap(native.softmax(x.handle, dim));
}
export function logSoftmax(x: Tensor, dim: number): Tensor {
  return wrap(native.logSoftmax(x.handle, dim));
}

/** Per-element (reduction 'none'), 'mean' (over non-ignored, as torch) or 'sum' cross-entropy. */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  o: { weight?: Tensor; reduction?: 'none' | 'mean' | 'sum'; ignoreIndex?: number } = {},
): Tensor {
  return wrap(
    native.crossEntropy(
      logits.handle,
      target.handle,
      o.weight?.handle ?? null,
      o.reduction ?? 'mean',
      o.ignoreIndex ?? -100,
    ),
  );
}

export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  return wrap(native.dropout(x.handle, p, training));
}
/** nn.Dropout2d: zeroes whole channels. */
export function dropout2d(x: Tensor, p: number, training: boolean): Tensor {
  return wrap(native.featureDropout(x.handle, p, training));
}

/** F.interpolate(x, size, mode) without antialiasing. */
export function interpolate(
  x: Tensor,
  size: [number, number],
  mode: 'bilinear' | 'nearest' = 'bilinear',
  alignCorners = false,
): Tensor {
  if (mode === 'nearest') return wrap(native.interpolateNearest(x.handle, size));
  return wrap(native.interpolateBilinear(x.handle, size, alignCorners));
}

export function adaptiveAvgPool2d(x: Tensor, size: Pair): Tensor {
  return wrap(native.adaptiveAvgPool2d(x.handle, pair(size)));
}

export function maxPool2d(
  x: Tensor,
  kernel: Pair,
  o: { stride?: Pair; padding?: Pair; dilation?: Pair; ceilMode?: boolean } = {},
): Tensor {
  return wrap(
    native.maxPool2d(
      x.handle,
      pair(kernel),
      pair(o.stride ?? kernel),
      pair(o.padding ?? 0),
      pair(o.dilation ?? 1),
      o.ceilMode ?? false,
    ),
  );
}

/** F.pad(x, pads, value): pads lists (left, right) for the last dim, then the one before, ... */
export function pad(x: Tensor, pads: number[], value = 0): Tensor {
  return wrap(native.pad(x.handle, pads, value));
}

/**
 * softmax(q kᵀ · scale + bias) v with q, k, v [B, heads, N, d]; libtorch's fused kernel or the
 * explicit math as `attentionImpl` (src/tensor/runtime.ts) selects.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | null, scale: number): Tensor {
  return wrap(native.attention(q.handle, k.handle, v.handle, bias?.handle ?? null, scale));
}

/**
 * softmax(q kᵀ · scale + bias) v with q, k, v [B, heads, N, d] and the bias gathered from a
 * table: bias[h, i, j] = tableT[h, index[i, j]] (tableT [heads, T], index int64 [N, N]). The
 * 'blocked' kernel (attentionImpl; 'auto' on the CPU for long sequences) computes it in query
 * blocks and never holds the [heads, N, N] bias or scores whole, in the forward or backward
 * pass; the others gather the whole bias first. `blockRows` forces the block height (tests).
 */
export function gatheredBiasAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  tableT: Tensor,
  index: Tensor,
  scale: number,
  blockRows?: number,
): Tensor {
  return wrap(
    native.gatheredBiasAttention(q.handle, k.handle, v.handle, tableT.handle, index.handle, scale, blockRows ?? null),
  );
}

/**
 * Packs a linear layer's weight [out, in] (and bias) for int8Linear: symmetric int8 per output
 * channel, in the layout of libtorch's quantized engine (oneDNN, FBGEMM or QNNPACK). CPU only.
 */
export function int8LinearPrepack(weight: Tensor, bias?: Tensor | null): PackedInt8Linear {
  return native.int8LinearPrepack(weight.handle, bias?.handle ?? null);
}

/**
 * x Wᵀ + b with x quantised to uint8 per call (dynamic quantisation) and the packed int8
 * weight: libtorch's quantized::linear_dynamic kernel. fp32 out; inference only.
 * `reduceRange` uses 7-bit activations (for CPUs without VNNI, as PyTorch does for FBGEMM).
 */
export function int8Linear(x: Tensor, packed: PackedInt8Linear, reduceRange = false): Tensor {
  return wrap(native.int8Linear(x.handle, packed, reduceRange));
}

/**
 * One AdamW update of a list of parameters (multi-tensor kernels on CUDA), in place:
 * p ← p·decay; m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 * p ← p − stepSizes[i]·m / (√v / bc2Sqrts[i] + ε).
 */
export function adamwStep(
  params: Tensor[],
  grads: Tensor[],
  expAvgs: Tensor[],
  expAvgSqs: Tensor[],
  stepSizes: number[],
  bc2Sqrts: number[],
  o: { decay: number; beta1: number; beta2: number; eps: number },
): void {
  const h = (ts: Tensor[]) => ts.map((t) => t.handle);
  native.adamwStep(
    h(params),
    h(grads),
    h(expAvgs),
    h(expAvgSqs),
    stepSizes,
    bc2Sqrts,
    o.decay,
    o.beta1,
    o.beta2,
    o.eps,
  );
}

/**
 * adamwStep with its per-step numbers in a float32 device tensor, for CUDA-graphed steps:
 * settings = [β1, 1−β1, β2, 1−β2, then per parameter: decay, −stepSize, √(1−β2^t)]. With
 * `skip` (a one-element float tensor, non-zero = some gradient was not finite) the step leaves
 * everything as it was, decided on the device: `skip.settings` holds [1, 0, 1, 0, 1, 0, 1, ...].
 */
export function adamwStepDevice(
  params: Tensor[],
  grads: Tensor[],
  expAvgs: Tensor[],
  expAvgSqs: Tensor[],
  settings: Tensor,
  eps: number,
  skip: { foundInf: Tensor; settings: Tensor } | null,
): void {
  const h = (ts: Tensor[]) => ts.map((t) => t.handle);
  native.adamwStepDevice(
    h(params),
    h(grads),
    h(expAvgs),
    h(expAvgSqs),
    settings.handle,
    skip ? skip.settings.handle : null,
    skip ? skip.foundInf.handle : null,
    eps,
  );
}

/**
 * ampUnscale without reading the verdict back: gradients times `invScale` (one-element device
 * tensor) in place; `foundInf` (one-element float32) becomes 1 where some gradient is not finite.
 */
export function ampUnscaleDevice(grads: Tensor[], foundInf: Tensor, invScale: Tensor): void {
  native.ampUnscaleDevice(
    grads.map((g) => g.handle),
    foundInf.handle,
    invScale.handle,
  );
}

/** Multiplies every gradient by invScale in place; true when all are finite (GradScaler.unscale_). */
export function ampUnscale(grads: Tensor[], invScale: number): boolean {
  return native.ampUnscale(
    grads.map((g) => g.handle),
    invScale,
  );
}
