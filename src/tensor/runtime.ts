/**
 * Process-wide libtorch settings: threads, seeds and generator state, grad mode, autocast,
 * CUDA. The addon's default thread count is every core (torch itself may start with fewer).
 */
import {
  native,
  type AttentionImpl,
  type BuildInfo,
  type ConvAlgorithm,
  type CpuMemory,
  type CudaFlags,
} from './native.js';
import { type Tensor, wrap, type Device } from './tensor.js';

export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}

/** Seeds the default generators (CPU and CUDA), like torch.manual_seed. */
export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}
export function getRngState(): Tensor {
  return wrap(native.getRngState());
}
export function setRngState(state: Tensor): void {
  native.setRngState(state.handle);
}

/** Runs fn with gradient recording off (torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}
export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

export type AutocastDType = 'bfloat16' | 'float16';

const autocastState: Record<'cpu' | 'cuda', AutocastDType | null> = { cpu: null, cuda: null };

/** The autocast device type of a device string ('cuda', 'cuda:1' -> 'cuda'; anything else -> 'cpu'). */
export function deviceTypeOf(device: string): 'cpu' | 'cuda' {
  return device.startsWith('cuda') ? 'cuda' : 'cpu';
}

/** Runs fn under torch.autocast(deviceType, dtype); the previous state is restored after. */
export function autocast<T>(deviceType: 'cpu' | 'cuda', dtype: AutocastDType | null, fn: () => T): T {
  const prev = autocastState[deviceType];
  if (dtype === prev) return fn();
  setAutocastState(deviceType, dtype);
  try {
    return fn();
  } finally {
    setAutocastState(deviceType, prev);
  }
}

function setAutocastState(deviceType: 'cpu' | 'cuda', dtype: AutocastDType | null): void {
  autocastState[deviceType] = dtype;
  native.setAutocast(deviceType, dtype !== null, dtype ?? 'bfloat16');
}

export const cuda = {
  isAvailable: (): boolean => native.cudaIsAvailable(),
  deviceCount: (): number => native.cudaDeviceCount(),
  synchronize: (): void => native.cudaSynchronize(),
  /** Bytes allocated now and at peak on device 0; resetPeak starts a new peak window. */
  memory: (resetPeak = false): { allocated: number; peak: number } => native.cudaMemory(resetPeak),
  /**
   * cuDNN autotuning and TF32 switches, as torch.backends sets them (defaults: benchmark off,
   * TF32 off for matmul, on for cuDNN convolutions). Returns the flags in force.
   */
  flags: (set: Partial<CudaFlags> = {}): CudaFlags => native.cudaFlags(set),
};

/**
 * Bytes of freed CPU blocks that beitseg's caching allocator keeps for reuse. Live + cached
 * bytes stay within the most ever live at once (plus BEITSEG_CPU_CACHE_SLACK_MB, default 0);
 * BEITSEG_CPU_CACHE_MB caps the cached bytes. `release` hands them back to the system first:
 * worth it after a one-off burst of allocations whose sizes will not recur.
 */
export function cpuCache(release = false): number {
  return native.cpuCache(release);
}

/** Live and cached CPU tensor bytes and live tensor handles (a leak shows as growth here). */
export function cpuMemory(): CpuMemory {
  return native.cpuMemory();
}

/**
 * Returns the free pages inside the C library's heaps to the system (glibc's malloc_trim;
 * false where there is none). Worth it when a long-running process goes idle: the heaps keep
 * what a burst of small allocations freed, and the RSS then overstates what is in use.
 */
export function trimHeap(): boolean {
  return native.trimHeap();
}

/**
 * The attention kernel (process-wide): 'sdpa' = libtorch's scaled_dot_product_attention
 * (2.1+), 'math' = matmul, bias add, softmax, matmul (mmseg's code), 'blocked' = the CPU
 * kernel in query blocks for attention with a gathered bias (BEiT's relative position bias;
 * memory O(N) per block instead of O(N²)), 'auto' = SDPA on CUDA where libtorch has it
 * (README "GPU"), blocked on the CPU for long sequences (README "Performance"), else the
 * math. Returns the setting in force.
 */
export function attentionImpl(impl?: AttentionImpl): AttentionImpl {
  return native.attentionImpl(impl);
}

/**
 * The algorithm of 3x3 convolutions (stride 1, no dilation or groups) in CPU fp32 inference,
 * process-wide: 'winograd' = oneDNN's Winograd F(4x4, 3x3) (about a quarter of the
 * multiplications; results within a few 1e-6 of the direct algorithm's), 'direct' = ATen's
 * convolution, 'auto' (default) = Winograd for layers with at least 64 channels in and out.
 * Winograd needs the oneDNN build (winogradAvailable()) and an AVX-512 CPU; elsewhere, and
 * whenever gradients are recorded or autocast is on, ATen's convolution runs. BEITSEG_CONV_ALGO
 * sets the start value. Returns the setting in force.
 */
export function convAlgorithm(name?: ConvAlgorithm): ConvAlgorithm {
  return native.convAlgorithm(name);
}

/** Whether this build of the addon has oneDNN's Winograd convolution (Debian's libtorch + libdnnl-dev). */
export function winogradAvailable(): boolean {
  return native.winogradAvailable();
}

/** 'cuda' when a GPU is usable, else 'cpu'; an explicit request is validated. */
export function resolveDevice(requested?: string): Device {
  if (!requested || requested === 'auto') return cuda.isAvailable() ? 'cuda' : 'cpu';
  if (requested.startsWith('cuda') && !cuda.isAvailable()) {
    throw new Error(
      `device '${requested}' requested but CUDA is not available (libtorch ${native.buildInfo().torchVersion}, ` +
        (native.buildInfo().cudaBuild
          ? 'CUDA build, no GPU visible'
          : 'CPU-only build: rebuild with LIBTORCH=<CUDA libtorch>') +
        ')',
    );
  }
  if (requested !== 'cpu' && !requested.startsWith('cuda'))
    throw new Error(`unknown device '${requested}' (cpu, cuda, cuda:N)`);
  return requested;
}

export function buildInfo(): BuildInfo {
  return native.buildInfo();
}

/** The quantized engine int8 layers use here, and every engine this libtorch has. */
export function quantizedEngines(): { engine: string; supported: string[] } {
  return native.quantizedEngines();
}

/** oneDNN ISAs with int8 dot-product instructions (VNNI: u8·s8 products summed in 32 bits). */
const VNNI_ISAS = new Set(['avx2_vnni', 'avx512_core_vnni', 'avx512_core_bf16', 'avx512_core_amx']);
/** oneDNN ISAs with bf16 instructions (AVX512-BF16, AMX); below them bf16 is emulated. */
const BF16_ISAS = new Set(['avx512_core_bf16', 'avx512_core_amx']);

/**
 * Whether int8 linear layers must quantise activations to 7 bits (reduce_range). Without VNNI,
 * x86 int8 kernels (FBGEMM's, and oneDNN's on AVX2 and plain AVX-512) sum pairs of u8·s8
 * products in 16 bits with saturation (vpmaddubsw): 2·255·127 > 32767 overflows, 2·127·127 does not.
 */
export function int8ReducedRange(): boolean {
  const { engine } = native.quantizedEngines();
  if (engine === 'fbgemm') return true;
  if (engine !== 'onednn') return false; // QNNPACK (ARM) widens to 32 bits before summing
  const isa = native.buildInfo().onednnIsa;
  return isa !== null && !VNNI_ISAS.has(isa);
}

/** Whether this CPU computes bf16 natively (oneDNN at AVX512-BF16 or AMX); null where unknown. */
export function nativeBf16(): boolean | null {
  const isa = native.buildInfo().onednnIsa;
  return isa === null ? null : BF16_ISAS.has(isa);
}

let bf16Warned = false;

/**
 * Says once per process, on stderr, that CPU bf16 is emulated here and slower than fp32 (an
 * AVX2-only CPU ran BEiT-B bf16 many times slower: docs/performance.md "CPU kinds"). Returns
 * whether it warned now.
 */
export function warnEmulatedBf16(device: string, warn: (message: string) => void = console.warn): boolean {
  if (bf16Warned || device !== 'cpu' || nativeBf16() !== false) return false;
  bf16Warned = true;
  warn(
    `warning: bf16 on this CPU (oneDNN ISA ${native.buildInfo().onednnIsa}: no AVX512-BF16 or AMX) is emulated and ` +
      'slower than fp32; leave --amp out (or use --amp auto) for fp32 here (docs/performance.md)',
  );
  return true;
}
