/**
 * Loads the libtorch addon (native/build/beitseg.node, built by scripts/build-native.mjs).
 * Tensor ops reach libtorch through the typed wrappers in this folder; only tensor/ and distributed/
 * (c10d process groups and DDP reducers: native objects tensor/ does not wrap) use `native` directly
 * (NATIVE_USERS in test/style/layers.ts, docs/architecture.md).
 */
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** An opaque native tensor handle. */
export interface NativeHandle {
  dispose(): void;
  isDisposed(): boolean;
}

type H = NativeHandle;
type Num = H | number;
type Opt<T> = T | null | undefined;

/** The addon's functions (see native/src/*.cc for the exact semantics of each). */
export interface NativeAddon {
  TensorHandle: new () => H;
  fromBuffer(view: ArrayBufferView, dtype: string, shape: number[], copy: boolean): H;
  toBuffer(t: H): ArrayBuffer;
  dataView(t: H): ArrayBuffer;
  copyToBuffer(t: H, view: ArrayBufferView): void;
  item(t: H): number;
  shape(t: H): number[];
  dtype(t: H): string;
  device(t: H): string;
  numel(t: H): number;
  zeros(shape: number[], dtype: string, device?: string): H;
  ones(shape: number[], dtype: string, device?: string): H;
  empty(shape: number[], dtype: string, device?: string): H;
  full(shape: number[], value: number, dtype: string, device?: string): H;
  arange(start: number, end: number, step: number, dtype: string, device?: string): H;
  randn(shape: number[], dtype: string, device?: string): H;
  rand(shape: number[], low: number, high: number, dtype: string, device?: string): H;
  bernoulli(shape: number[], p: number, dtype: string, device?: string): H;

  add(a: H, b: Num): H;
  sub(a: H, b: Num): H;
  mul(a: H, b: Num): H;
  div(a: H, b: Num): H;
  pow(a: H, b: Num): H;
  remainder(a: H, b: Num): H;
  eq(a: H, b: Num): H;
  ne(a: H, b: Num): H;
  lt(a: H, b: Num): H;
  le(a: H, b: Num): H;
  gt(a: H, b: Num): H;
  ge(a: H, b: Num): H;
  maximum(a: H, b: H): H;
  minimum(a: H, b: H): H;
  logicalAnd(a: H, b: H): H;
  logicalNot(a: H): H;
  neg(a: H): H;
  abs(a: H): H;
  sqrt(a: H): H;
  rsqrt(a: H): H;
  exp(a: H): H;
  log(a: H): H;
  sign(a: H): H;
  floor(a: H): H;
  sigmoid(a: H): H;
  tanh(a: H): H;
  isfinite(a: H): H;
  clamp(a: H, min: Opt<number>, max: Opt<number>): H;
  where(cond: H, a: Num, b: Num): H;
  matmul(a: H, b: H): H;
  linear(x: H, w: H, b: Opt<H>): H;
  sum(a: H, dims?: Opt<number[]>, keepdim?: boolean): H;
  mean(a: H, dims?: Opt<number[]>, keepdim?: boolean): H;
  max(a: H): H;
  max(a: H, dim: number, keepdim: boolean): [H, H];
  min(a: H): H;
  min(a: H, dim: number, keepdim: boolean): [H, H];
  argmax(a: H, dim?: Opt<number>, keepdim?: boolean): H;
  bincount(a: H, minlength: number): H;
  addInplace(a: H, b: Num, alpha?: number): void;
  mulInplace(a: H, b: Num): void;
  addcmulInplace(a: H, b: H, c: H, value: number): void;
  addcdivInplace(a: H, b: H, c: H, value: number): void;
  copyInplace(a: H, b: H): void;
  fillInplace(a: H, v: number): void;

  conv2d(x: H, w: H, b: Opt<H>, stride: number[], padding: number[], dilation: number[], groups: number): H;
  convTranspose2d(
    x: H,
    w: H,
    b: Opt<H>,
    stride: number[],
    padding: number[],
    outputPadding: number[],
    groups: number,
    dilation: number[],
  ): H;
  layerNorm(x: H, shape: number[], w: Opt<H>, b: Opt<H>, eps: number): H;
  batchNorm(x: H, w: Opt<H>, b: Opt<H>, rm: Opt<H>, rv: Opt<H>, training: boolean, momentum: number, eps: number): H;
  gelu(x: H): H;
  relu(x: H): H;
  softmax(x: H, dim: number): H;
  logSoftmax(x: H, dim: number): H;
  crossEntropy(logits: H, target: H, weight: Opt<H>, reduction: string, ignoreIndex: number): H;
  dropout(x: H, p: number, train: boolean): H;
  featureDropout(x: H, p: number, train: boolean): H;
  interpolateBilinear(x: H, size: number[], alignCorners: boolean): H;
  interpolateNearest(x: H, size: number[]): H;
  adaptiveAvgPool2d(x: H, size: number[]): H;
  maxPool2d(x: H, kernel: number[], stride: number[], padding: number[], dilation: number[], ceilMode: boolean): H;
  attention(q: H, k: H, v: H, bias: Opt<H>, scale: number): H;
  gatheredBiasAttention(q: H, k: H, v: H, tableT: H, index: H, scale: number, blockRows?: Opt<number>): H;
  int8LinearPrepack(weight: H, bias: Opt<H>): PackedInt8Linear;
  int8Linear(x: H, packed: PackedInt8Linear, reduceRange: boolean): H;
  quantizedEngines(): { engine: string; supported: string[] };
  attentionImpl(name?: AttentionImpl): AttentionImpl;
  adamwStep(
    params: H[],
    grads: H[],
    expAvgs: H[],
    expAvgSqs: H[],
    stepSizes: number[],
    bc2Sqrts: number[],
    decay: number,
    beta1: number,
    beta2: number,
    eps: number,
  ): void;
  ampUnscale(grads: H[], invScale: number): boolean;
  ampUnscaleDevice(grads: H[], foundInf: H, invScale: H): void;
  adamwStepDevice(
    params: H[],
    grads: H[],
    expAvgs: H[],
    expAvgSqs: H[],
    settings: H,
    skipSettings: Opt<H>,
    foundInf: Opt<H>,
    eps: number,
  ): void;

  reshape(x: H, shape: number[]): H;
  view(x: H, shape: number[]): H;
  permute(x: H, dims: number[]): H;
  transpose(x: H, a: number, b: number): H;
  flatten(x: H, start: number, end: number): H;
  unsqueeze(x: H, dim: number): H;
  squeeze(x: H, dim?: Opt<number>): H;
  expand(x: H, shape: number[]): H;
  repeat(x: H, reps: number[]): H;
  contiguous(x: H, format?: string): H;
  isContiguous(x: H, format?: string): boolean;
  slice(x: H, dim: number, start: number, end: number, step?: number): H;
  select(x: H, dim: number, index: number): H;
  indexSelect(x: H, dim: number, index: H): H;
  gather(x: H, dim: number, index: H): H;
  maskedFill(x: H, mask: H, value: number): H;
  cat(xs: H[], dim: number): H;
  stack(xs: H[], dim: number): H;
  split(x: H, size: number, dim: number): H[];
  flip(x: H, dims: number[]): H;
  pad(x: H, pads: number[], value: number): H;
  clone(x: H): H;
  detach(x: H): H;
  to(x: H, dtype: Opt<string>, device: Opt<string>): H;

  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number): void;
  getRngState(): H;
  setRngState(state: H): void;
  setGradEnabled(enabled: boolean): boolean;
  isGradEnabled(): boolean;
  setRequiresGrad(t: H, v: boolean): void;
  requiresGrad(t: H): boolean;
  backward(t: H, grad?: Opt<H>): void;
  grad(t: H): H | null;
  setGrad(t: H, g: Opt<H>): void;
  setAutocast(deviceType: string, enabled: boolean, dtype: string): void;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  cudaSynchronize(): void;
  cudaMemory(resetPeak?: boolean): { allocated: number; peak: number };
  cudaFlags(set?: Partial<CudaFlags>): CudaFlags;
  convAlgorithm(name?: ConvAlgorithm): ConvAlgorithm;
  winogradAvailable(): boolean;
  cudaGraphsSupported(): boolean;
  cudaGraphBegin(deviceIndex: number): number;
  cudaGraphEnd(id: number, ok: boolean): void;
  cudaGraphReplay(id: number): void;
  cudaGraphDestroy(id: number): void;
  cpuCache(release?: boolean): number;
  cpuMemory(): CpuMemory;
  trimHeap(): boolean;

  // c10d process groups (native/src/distributed.cc); ids are plain numbers
  storeConnect(addr: string, port: number, timeoutMs: number, isServer: boolean): Promise<number>;
  storeSet(store: number, key: string, value: string): void;
  storeGet(store: number, key: string): string;
  storeAdd(store: number, key: string, delta: number): number;
  storeCheck(store: number, keys: string[]): boolean;
  storeCompareSet(store: number, key: string, expected: string, desired: string): string;
  storePort(store: number): number;
  storeClose(store: number): void;
  pgInit(
    store: number,
    prefix: string,
    rank: number,
    size: number,
    timeoutMs: number,
    backend: string,
    hostname: string,
  ): Promise<number>;
  pgInfo(pg: number): { rank: number; size: number; backend: string; port: number; timeoutMs: number };
  pgDestroy(pg: number): void;
  pgAllreduce(pg: number, t: H, op: string): number;
  pgBroadcast(pg: number, t: H, root: number): number;
  pgAllgather(pg: number, outs: H[], t: H): number;
  pgBarrier(pg: number): number;
  pgBroadcastCoalesced(pg: number, ts: H[], root: number): void;
  workWait(work: number): void;
  workWaitAsync(work: number): Promise<void>;
  allreduceSumAutograd(pg: number, t: H): H;
  ddpCreate(
    pg: number,
    params: H[],
    bucketMB: number,
    firstBucketMB: number,
  ): { id: number; buckets: number; mode: 'reducer' | 'flat' };
  ddpPrepare(ddp: number): void;
  ddpFinish(ddp: number): void;
  ddpDispose(ddp: number): void;
  ncclAvailable(): boolean;
  buildInfo(): BuildInfo;
}

/** What the addon was built against and what ATen runs here. */
export interface BuildInfo {
  torchVersion: string;
  cudaBuild: boolean;
  cudaStats?: boolean;
  mkldnn: boolean;
  parallel: string;
  /** The vector ISA of ATen's CPU kernels (AVX2, AVX512, ...). */
  cpuCapability: string;
  /** OpenBLAS's kernel set for this CPU (SkylakeX, Haswell, ...); null where the BLAS is not OpenBLAS. */
  blasCore: string | null;
  /**
   * The ISA oneDNN dispatches to (avx2, avx512_core_vnni, avx512_core_bf16, ...): the CPU's, capped by
   * ONEDNN_MAX_CPU_ISA; null where the addon was built without oneDNN's headers.
   */
  onednnIsa: string | null;
}

/** An int8 linear layer's weights, quantised per channel and packed by libtorch (freed by the GC). */
export interface PackedInt8Linear {
  readonly packedInt8Linear: unique symbol;
}

function repoRoot(): string {
  // dist/src/tensor/native.js or src/tensor/native.ts -> repository root
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`beitseg: cannot locate the package root from ${fileURLToPath(import.meta.url)}`);
}

/** The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read). */
function cpuFlags(): Set<string> {
  let info: string;
  try {
    info = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return new Set();
  }
  return new Set((/^flags\s*:(.*)$/m.exec(info)?.[1] ?? '').trim().split(/\s+/));
}

const AVX512_CORE = ['avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512cd', 'fma'];

/**
 * The OpenBLAS kernel set for an AVX-512 CPU: Cooperlake where it has AVX512-BF16, SkylakeX
 * otherwise (undefined without AVX-512: OpenBLAS's own choice stands).
 */
function openblasCoreType(flags: Set<string>): string | undefined {
  if (!AVX512_CORE.every((f) => flags.has(f))) return undefined;
  return flags.has('avx512_bf16') ? 'Cooperlake' : 'SkylakeX';
}

function load(): NativeAddon {
  // libgomp reads this when the addon pulls it in. Spinning OpenMP workers fight with the
  // data-loader threads and any other process for the cores (README "Performance" has the
  // measurement). Users may override it.
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  // libtorch 1.13 runs its own CPU kernels (softmax, GELU, norms, elementwise) with AVX2 even
  // where AVX-512 is present, unless ATEN_CPU_CAPABILITY says otherwise (pytorch#80252: AVX-512
  // could be slower on older Xeons through down-clocking). On AMX CPUs (Sapphire Rapids and
  // later) the AVX-512 kernels were faster (README "Performance"), so beitseg opts in there.
  // Users may override it; libtorch reads it once, at its first dispatch.
  const flags = cpuFlags();
  const hasAmx = flags.has('amx_tile') && AVX512_CORE.every((f) => flags.has(f));
  if (process.env.ATEN_CPU_CAPABILITY === undefined && hasAmx) process.env.ATEN_CPU_CAPABILITY = 'avx512';
  // Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernels from the CPU model number and
  // falls back to the SSE3 "Prescott" set for models it does not know, newer Xeons among them
  // (model 207, Emerald Rapids, under a hypervisor: every fp32 linear layer ran several times
  // slower; README "Performance"). On AVX-512 CPUs beitseg names the set OpenBLAS picks for the
  // models it knows. OpenBLAS reads this when the addon pulls it in; users may override it.
  if (process.env.OPENBLAS_CORETYPE === undefined) {
    const core = openblasCoreType(flags);
    if (core) process.env.OPENBLAS_CORETYPE = core;
  }
  const file = process.env.BEITSEG_ADDON ?? path.join(repoRoot(), 'native', 'build', 'beitseg.node');
  if (!fs.existsSync(file)) throw new Error(ADDON_MISSING);
  const loaded = createRequire(import.meta.url)(file) as NativeAddon;
  // Default: all cores (BEITSEG_NUM_THREADS overrides), as the product promises.
  loaded.setNumThreads(Number(process.env.BEITSEG_NUM_THREADS) || os.availableParallelism());
  return loaded;
}

/** The one line a command that needs the addon prints when it is missing (docs/install.md). */
export const ADDON_MISSING =
  'this needs the native libtorch addon (training, libtorch inference, distributed runs), which is not built: ' +
  'build it with "npm rebuild beitseg" (Linux, g++ and libtorch; see docs/install.md)';

let addon: NativeAddon | undefined;

/**
 * The addon, loaded at its first use rather than at import, so that importing the package,
 * `beitseg --help` and everything that does not compute on libtorch work (and start fast)
 * without it.
 */
export const native: NativeAddon = new Proxy({} as NativeAddon, {
  get(_target, key) {
    addon ??= load();
    return addon[key as keyof NativeAddon];
  },
  has(_target, key) {
    addon ??= load();
    return key in addon;
  },
  ownKeys() {
    addon ??= load();
    return Reflect.ownKeys(addon);
  },
  getOwnPropertyDescriptor(_target, key) {
    addon ??= load();
    const d = Reflect.getOwnPropertyDescriptor(addon, key);
    // the (empty) proxy target has no such property, so it may only be reported configurable
    return d && { ...d, configurable: true };
  },
});

/** Whether the addon can be loaded here (loads it when it can). */
export function nativeAvailable(): boolean {
  try {
    addon ??= load();
    return true;
  } catch {
    return false;
  }
}

/**
 * Attention kernel: libtorch's fused SDPA, the explicit matmul-softmax-matmul, the CPU kernel
 * in query blocks (gathered-bias attention only), or per device and size.
 */
export type AttentionImpl = 'auto' | 'sdpa' | 'math' | 'blocked';

/** 3x3 convolutions in CPU fp32 inference: ATen's direct algorithm, oneDNN's Winograd, or per layer. */
export type ConvAlgorithm = 'auto' | 'direct' | 'winograd';

/**
 * What tensors hold on the CPU. Byte counts come from beitseg's caching allocator and are null
 * where BEITSEG_CPU_CACHE_MB=0 left libtorch's allocator in place.
 */
export interface CpuMemory {
  /** Bytes lent to live tensors (all sizes). */
  liveBytes: number | null;
  /** Bytes of freed large blocks kept for reuse. */
  cachedBytes: number | null;
  /** The most large-block (>= 1 MiB) bytes live at once. */
  peakLargeBytes: number | null;
  /** JS tensor handles neither disposed nor garbage-collected. */
  tensorHandles: number;
}

/** Process-wide cuDNN/cuBLAS switches (torch.backends.cudnn.benchmark, allow_tf32). */
export interface CudaFlags {
  benchmark: boolean;
  tf32Matmul: boolean;
  tf32Cudnn: boolean;
}
