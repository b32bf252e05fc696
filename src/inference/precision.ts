/**
 * The precision policy of inference: what the caller asks for (`amp`), turned once per model
 * into the ForwardPrecision that the segmentor's forward takes as an argument. Nothing is set
 * on the model around a call; the low-precision variants are built on first use and cached
 * beside the model (a WeakMap), so later calls and other policies reuse them.
 */
import type { ForwardPrecision } from '../models/segmentors/encoder_decoder.js';
import type { AutocastDType } from '../tensor/runtime.js';
import type { SegModel } from './api.js';

export interface PrecisionPolicy {
  /** Compute in bf16/fp16 under autocast (CPU: bf16); with bf16 the decode head runs as a bf16 copy. */
  amp?: AutocastDType | null;
}

/** The policy in force for one call: the call's own options over the model's defaults (initModel). */
export function resolvePolicy(defaults: PrecisionPolicy | undefined, call: PrecisionPolicy): Required<PrecisionPolicy> {
  return { amp: call.amp !== undefined ? call.amp : (defaults?.amp ?? null) };
}

/** A clear error for a policy the device cannot run. */
export function checkPolicy(policy: Required<PrecisionPolicy>, device: string): void {
  if (policy.amp === 'float16' && !device.startsWith('cuda')) throw new Error('fp16 autocast needs a CUDA device; on the CPU use bf16');
}

const variants = new WeakMap<SegModel, Map<string, ForwardPrecision>>();

/**
 * What the forward pass runs for `policy`: {} for fp32 (and fp16, which is autocast alone);
 * for bf16 a bf16 copy of the decode head, which runs entirely in bf16 outside autocast while
 * the backbone keeps its fp32 residual stream under autocast (faster than the head under
 * autocast, and closer to fp32: bench/results, README "Performance").
 */
export function forwardPrecision(m: SegModel, policy: Required<PrecisionPolicy>): ForwardPrecision {
  if (policy.amp !== 'bfloat16') return {};
  let cache = variants.get(m);
  if (!cache) variants.set(m, (cache = new Map()));
  const key = `amp=${policy.amp}`;
  let built = cache.get(key);
  if (!built) {
    built = { lowPrecisionHead: m.model.decodeHead.castCopy('bfloat16') };
    cache.set(key, built);
  }
  return built;
}
