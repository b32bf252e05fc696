/**
 * The precision policy of inference: what the caller asks for (`amp`, `quantize`), turned once
 * per model into the ForwardPrecision that the segmentor's forward takes as an argument.
 * Nothing is set on the model around a call; the low-precision variants are built on first
 * use and cached beside the model (a WeakMap), so later calls and other policies reuse them.
 */
import type { LinearKernel } from '../models/backbones/beit.js';
import type { EncoderDecoder, ForwardPrecision } from '../models/segmentors/encoder_decoder.js';
import { Linear } from '../nn/linear.js';
import { int8Linear, int8LinearPrepack } from '../tensor/functional.js';
import type { PackedInt8Linear } from '../tensor/native.js';
import {
  int8ReducedRange,
  nativeBf16,
  quantizedEngines,
  type AutocastDType,
  warnEmulatedBf16,
} from '../tensor/runtime.js';

export type Quantize = 'int8';

export interface PrecisionPolicy {
  /** Compute in bf16/fp16 under autocast (CPU: bf16); with bf16 the decode head runs as a bf16 copy. */
  amp?: AutocastDType | null;
  /**
   * 'int8': the backbone's linear layers with int8 weights (per output channel) and
   * activations quantised per call, through libtorch's quantized engine; the rest as `amp` says. CPU only.
   */
  quantize?: Quantize | null;
}

/** A --quantize value checked: 'int8' (the only mode), else a clear error. */
export function parseQuantize(value: string): Quantize {
  if (value !== 'int8') throw new Error(`--quantize must be int8, got '${value}'`);
  return value;
}

/** The policy in force for one call: the call's own options over the model's defaults (initModel). */
export function resolvePolicy(defaults: PrecisionPolicy | undefined, call: PrecisionPolicy): Required<PrecisionPolicy> {
  return {
    amp: call.amp !== undefined ? call.amp : (defaults?.amp ?? null),
    quantize: call.quantize !== undefined ? call.quantize : (defaults?.quantize ?? null),
  };
}

/**
 * `--amp auto`: bf16 where the CPU computes it natively (AVX512-BF16, AMX), fp32 elsewhere: an
 * AVX2-only CPU emulates bf16 and ran it slower than fp32 (docs/performance.md "CPU kinds").
 * On CUDA, fp32 too (pass bf16 or fp16 explicitly there).
 */
export function autoAmp(device: string): AutocastDType | null {
  return device === 'cpu' && nativeBf16() === true ? 'bfloat16' : null;
}

/** A clear error for a policy the device cannot run (and a warning, once, for emulated bf16). */
export function checkPolicy(policy: Required<PrecisionPolicy>, device: string): void {
  if (policy.amp === 'float16' && !device.startsWith('cuda'))
    throw new Error('fp16 autocast needs a CUDA device; on the CPU use bf16');
  if (policy.amp === 'bfloat16') warnEmulatedBf16(device);
  if (policy.quantize !== null && policy.quantize !== 'int8') {
    throw new Error(`quantize must be 'int8' or null, got ${JSON.stringify(policy.quantize)}`);
  }
  if (policy.quantize === 'int8') {
    if (device !== 'cpu')
      throw new Error(`int8 quantization runs on the CPU only (libtorch's quantized engines), not on ${device}`);
    if (quantizedEngines().engine === 'none')
      throw new Error('int8 quantization: this libtorch has no quantized engine');
  }
}

/**
 * Every Linear of `root` packed for int8 once; the kernel runs a packed layer through
 * libtorch's dynamic int8 linear and any other layer as it is. 7-bit activations
 * (reduce_range) where the kernels lack VNNI (int8ReducedRange): their 16-bit pair sums saturate
 * on 8-bit activations, which put outputs off by up to 0.5 on an AVX2 CPU (issue 26).
 */
export function int8LinearKernel(root: { namedModules(): Iterable<[string, unknown]> }): LinearKernel {
  const packed = new Map<Linear, PackedInt8Linear>();
  for (const [, m] of root.namedModules()) {
    if (!(m instanceof Linear)) continue;
    const params = new Map(m.namedParameters());
    packed.set(m, int8LinearPrepack(params.get('weight')!, params.get('bias') ?? null));
  }
  const reduceRange = int8ReducedRange();
  return (layer, x) => {
    const p = packed.get(layer);
    return p ? int8Linear(x, p, reduceRange) : layer.forward(x);
  };
}

/** The low-precision parts of `policy` for `model`, built now (uncached: see forwardPrecision). */
export function buildForwardPrecision(model: EncoderDecoder, policy: Required<PrecisionPolicy>): ForwardPrecision {
  return {
    lowPrecisionHead: policy.amp === 'bfloat16' ? model.decodeHead.castCopy('bfloat16') : null,
    backboneLinear: policy.quantize === 'int8' ? int8LinearKernel(model.backbone) : null,
  };
}

const variants = new WeakMap<EncoderDecoder, Map<string, ForwardPrecision>>();

/**
 * What the forward pass runs for `policy`, built once per model and policy: {} for fp32 (and
 * fp16, which is autocast alone); for bf16 a bf16 copy of the decode head, which runs entirely
 * in bf16 outside autocast while the backbone keeps its fp32 residual stream under autocast
 * (faster than the head under autocast, and closer to fp32: README "Performance"); for int8
 * the backbone's linear layers packed for libtorch's quantized engine.
 */
export function forwardPrecision(model: EncoderDecoder, policy: Required<PrecisionPolicy>): ForwardPrecision {
  if (policy.amp !== 'bfloat16' && policy.quantize === null) return {};
  let cache = variants.get(model);
  if (!cache) variants.set(model, (cache = new Map()));
  const key = `amp=${policy.amp};quantize=${policy.quantize}`;
  let built = cache.get(key);
  if (!built) {
    built = buildForwardPrecision(model, policy);
    cache.set(key, built);
  }
  return built;
}
