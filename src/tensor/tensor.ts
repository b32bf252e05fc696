/**
 * The Tensor wrapper: one libtorch tensor, owned by the innermost `tidy` scope it was made
 * in (or by the caller, outside any scope). Methods mirror torch.Tensor's names in camelCase.
 */
import type { DType } from '../common/dtype.js';
import { assertHostReadAllowed } from './host_reads.js';
import { native, type NativeHandle } from './native.js';
import { track } from './scope.js';

export type { DType };
export type TensorDType = DType | 'float64';
export type Device = string; // 'cpu' | 'cuda' | 'cuda:N'
export type TypedArray = Float32Array | Float64Array | Int32Array | Uint8Array | BigInt64Array | Uint16Array;

export class Tensor {
  readonly handle: NativeHandle;
  private shapeCache?: number[];

  constructor(handle: NativeHandle) {
    this.handle = handle;
    track(this);
  }

  // ---- metadata ----
  get shape(): number[] {
    this.shapeCache ??= native.shape(this.handle);
    return this.shapeCache.slice();
  }
  get dtype(): TensorDType {
    return native.dtype(this.handle) as TensorDType;
  }
  get device(): Device {
    return native.device(this.handle);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return native.numel(this.handle);
  }
  size(dim: number): number {
    const s = this.shape;
    return s[dim < 0 ? s.length + dim : dim];
  }
  get isDisposed(): boolean {
    return this.handle.isDisposed();
  }
  dispose(): void {
    this.handle.dispose();
  }
  toString(): string {
    return this.isDisposed ? 'Tensor(disposed)' : `Tensor(${this.dtype}, [${this.shape.join(', ')}], ${this.device})`;
  }

  // ---- arithmetic (a tensor or a number on the right) ----
  add(o: Tensor | number): Tensor {
    return wrap(native.add(this.handle, h(o)));
  }
  sub(o: Tensor | number): Tensor {
    return wrap(native.sub(this.handle, h(o)));
  }
  mul(o: Tensor | number): Tensor {
    return wrap(native.mul(this.handle, h(o)));
  }
  div(o: Tensor | number): Tensor {
    return wrap(native.div(this.handle, h(o)));
  }
  pow(o: Tensor | number): Tensor {
    return wrap(native.pow(this.handle, h(o)));
  }
  remainder(o: Tensor | number): Tensor {
    return wrap(native.remainder(this.handle, h(o)));
  }
  eq(o: Tensor | number): Tensor {
    return wrap(native.eq(this.handle, h(o)));
  }
  ne(o: Tensor | number): Tensor {
    return wrap(native.ne(this.handle, h(o)));
  }
  lt(o: Tensor | number): Tensor {
    return wrap(native.lt(this.handle, h(o)));
  }
  le(o: Tensor | number): Tensor {
    return wrap(native.le(this.handle, h(o)));
  }
  gt(o: Tensor | number): Tensor {
    return wrap(native.gt(this.handle, h(o)));
  }
  ge(o: Tensor | number): Tensor {
    return wrap(native.ge(this.handle, h(o)));
  }
  maximum(o: Tensor): Tensor {
    return wrap(native.maximum(this.handle, o.handle));
  }
  minimum(o: Tensor): Tensor {
    return wrap(native.minimum(this.handle, o.handle));
  }
  logicalAnd(o: Tensor): Tensor {
    return wrap(native.logicalAnd(this.handle, o.handle));
  }
  logicalNot(): Tensor {
    return wrap(native.logicalNot(this.handle));
  }
  neg(): Tensor {
    return wrap(native.neg(this.handle));
  }
  abs(): Tensor {
    return wrap(native.abs(this.handle));
  }
  sqrt(): Tensor {
    return wrap(native.sqrt(this.handle));
  }
  rsqrt(): Tensor {
    return wrap(native.rsqrt(this.handle));
  }
  exp(): Tensor {
    return wrap(native.exp(this.handle));
  }
  log(): Tensor {
    return wrap(native.log(this.handle));
  }
  sign(): Tensor {
    return wrap(native.sign(this.handle));
  }
  floor(): Tensor {
    return wrap(native.floor(this.handle));
  }
  sigmoid(): Tensor {
    return wrap(native.sigmoid(this.handle));
  }
  tanh(): Tensor {
    return wrap(native.tanh(this.handle));
  }
  isfinite(): Tensor {
    return wrap(native.isfinite(this.handle));
  }
  clamp(min: number | null, max: number | null = null): Tensor {
    return wrap(native.clamp(this.handle, min, max));
  }
  matmul(o: Tensor): Tensor {
    return wrap(native.matmul(this.handle, o.handle));
  }

  // ---- reductions ----
  sum(dims?: number[] | number, keepdim = false): Tensor {
    return wrap(native.sum(this.handle, dimList(dims), keepdim));
  }
  mean(dims?: number[] | number, keepdim = false): Tensor {
    return wrap(native.mean(this.handle, dimList(dims), keepdim));
  }
  max(): Tensor {
    return wrap(native.max(this.handle));
  }
  maxDim(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [v, i] = native.max(this.handle, dim, keepdim);
    return { values: wrap(v), indices: wrap(i) };
  }
  min(): Tensor {
    return wrap(native.min(this.handle));
  }
  /** First index of the maximum (torch.argmax), over `dim` or the flattened tensor. */
  argmax(dim?: number, keepdim = false): Tensor {
    return wrap(native.argmax(this.handle, dim ?? null, keepdim));
  }

  // ---- shape and layout ----
  reshape(...shape: number[]): Tensor {
    return wrap(native.reshape(this.handle, shape));
  }
  view(...shape: number[]): Tensor {
    return wrap(native.view(this.handle, shape));
  }
  permute(...dims: number[]): Tensor {
    return wrap(native.permute(this.handle, dims));
  }
  transpose(a: number, b: number): Tensor {
    return wrap(native.transpose(this.handle, a, b));
  }
  flatten(start = 0, end = -1): Tensor {
    return wrap(native.flatten(this.handle, start, end));
  }
  unsqueeze(dim: number): Tensor {
    return wrap(native.unsqueeze(this.handle, dim));
  }
  squeeze(dim?: number): Tensor {
    return wrap(native.squeeze(this.handle, dim ?? null));
  }
  expand(...shape: number[]): Tensor {
    return wrap(native.expand(this.handle, shape));
  }
  repeat(...reps: number[]): Tensor {
    return wrap(native.repeat(this.handle, reps));
  }
  contiguous(format: 'contiguous' | 'channels_last' = 'contiguous'): Tensor {
    return wrap(native.contiguous(this.handle, format));
  }
  isContiguous(format: 'contiguous' | 'channels_last' = 'contiguous'): boolean {
    return native.isContiguous(this.handle, format);
  }
  /** x[..., start:end:step] along `dim` (a view). */
  slice(dim: number, start: number, end: number, step = 1): Tensor {
    return wrap(native.slice(this.handle, dim, start, end, step));
  }
  select(dim: number, index: number): Tensor {
    return wrap(native.select(this.handle, dim, index));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return wrap(native.indexSelect(this.handle, dim, index.handle));
  }
  gather(dim: number, index: Tensor): Tensor {
    return wrap(native.gather(this.handle, dim, index.handle));
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    return wrap(native.maskedFill(this.handle, mask.handle, value));
  }
  flip(...dims: number[]): Tensor {
    return wrap(native.flip(this.handle, dims));
  }
  split(size: number, dim = 0): Tensor[] {
    return native.split(this.handle, size, dim).map(wrap);
  }

  // ---- conversion ----
  to(target: TensorDType | Device): Tensor {
    if (isDType(target)) return wrap(native.to(this.handle, target, null));
    if ((target === 'cpu') !== (this.device === 'cpu')) assertHostReadAllowed(`to('${target}') from ${this.device}`);
    return wrap(native.to(this.handle, null, target));
  }
  float(): Tensor {
    return this.to('float32');
  }
  clone(): Tensor {
    return wrap(native.clone(this.handle));
  }
  detach(): Tensor {
    return wrap(native.detach(this.handle));
  }
  item(): number {
    assertHostReadAllowed('item()');
    return native.item(this.handle);
  }
  /** A copy of the elements as a typed array of the tensor's dtype (row-major). */
  toTypedArray(): TypedArray {
    assertHostReadAllowed('toTypedArray()');
    const buf = native.toBuffer(this.handle);
    return typedArrayFor(this.dtype, buf);
  }
  toFloat32Array(): Float32Array {
    assertHostReadAllowed('toFloat32Array()');
    if (this.dtype === 'float32') return new Float32Array(native.toBuffer(this.handle));
    const f = wrap(native.to(this.handle, 'float32', null));
    try {
      return new Float32Array(native.toBuffer(f.handle));
    } finally {
      f.dispose();
    }
  }
  /** Raw little-endian bytes, copied. */
  toBytes(): Uint8Array {
    assertHostReadAllowed('toBytes()');
    return new Uint8Array(native.toBuffer(this.handle));
  }
  /** Raw bytes without a copy (keeps the storage alive while referenced). */
  dataView(): Uint8Array {
    assertHostReadAllowed('dataView()');
    return new Uint8Array(native.dataView(this.handle));
  }
  copyToBuffer(out: ArrayBufferView): void {
    assertHostReadAllowed('copyToBuffer()');
    native.copyToBuffer(this.handle, out);
  }

  // ---- autograd ----
  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }
  set requiresGrad(v: boolean) {
    native.setRequiresGrad(this.handle, v);
  }
  requiresGrad_(v = true): this {
    native.setRequiresGrad(this.handle, v);
    return this;
  }
  /** The accumulated gradient (a new wrapper each call; dispose it when done), or null. */
  get grad(): Tensor | null {
    const g = native.grad(this.handle);
    return g ? wrap(g) : null;
  }
  set grad(g: Tensor | null) {
    native.setGrad(this.handle, g ? g.handle : null);
  }
  zeroGrad(): void {
    native.setGrad(this.handle, null);
  }
  backward(gradient?: Tensor): void {
    native.backward(this.handle, gradient?.handle ?? null);
  }

  // ---- in-place (used by optimizers and running statistics; no autograd history) ----
  add_(o: Tensor | number, alpha = 1): this {
    native.addInplace(this.handle, h(o), alpha);
    return this;
  }
  mul_(o: Tensor | number): this {
    native.mulInplace(this.handle, h(o));
    return this;
  }
  addcmul_(a: Tensor, b: Tensor, value: number): this {
    native.addcmulInplace(this.handle, a.handle, b.handle, value);
    return this;
  }
  addcdiv_(a: Tensor, b: Tensor, value: number): this {
    native.addcdivInplace(this.handle, a.handle, b.handle, value);
    return this;
  }
  copy_(src: Tensor): this {
    native.copyInplace(this.handle, src.handle);
    return this;
  }
  fill_(v: number): this {
    native.fillInplace(this.handle, v);
    return this;
  }
}

function h(o: Tensor | number): NativeHandle | number {
  return typeof o === 'number' ? o : o.handle;
}

function dimList(d?: number[] | number): number[] | null {
  if (d === undefined) return null;
  return typeof d === 'number' ? [d] : d;
}

export function wrap(handle: NativeHandle): Tensor {
  return new Tensor(handle);
}

const DTYPES = new Set(['float32', 'float16', 'bfloat16', 'float64', 'int64', 'int32', 'uint8', 'bool']);
function isDType(s: string): s is TensorDType {
  return DTYPES.has(s);
}

function typedArrayFor(dtype: TensorDType, buf: ArrayBuffer): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buf);
    case 'float64':
      return new Float64Array(buf);
    case 'int32':
      return new Int32Array(buf);
    case 'int64':
      return new BigInt64Array(buf);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buf);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(buf);
  }
}

// biome-ignore lint/complexity/noBannedTypes: keys are typed-array constructors, looked up by `view.constructor`
const ARRAY_DTYPE = new Map<Function, TensorDType>([
  [Float32Array, 'float32'],
  [Float64Array, 'float64'],
  [Int32Array, 'int32'],
  [BigInt64Array, 'int64'],
  [Uint8Array, 'uint8'],
]);

/**
 * A CPU tensor over a typed array. By default the tensor shares the array's memory (no copy);
 * pass copy=true when the array will be reused. `dtype` reinterprets the bytes (e.g. a
 * Uint16Array of bfloat16 bits, or Uint8Array bytes of any dtype).
 */
export function fromArray(
  data: ArrayBufferView,
  shape: number[],
  opts: { dtype?: TensorDType; copy?: boolean } = {},
): Tensor {
  // instanceof, so subclasses such as Node's Buffer (a Uint8Array) are recognised too
  const dtype = opts.dtype ?? [...ARRAY_DTYPE].find(([ctor]) => data instanceof ctor)?.[1];
  if (!dtype) throw new Error(`fromArray: cannot infer a dtype from ${data.constructor.name}; pass opts.dtype`);
  return wrap(native.fromBuffer(data, dtype, shape, opts.copy ?? false));
}

export function tensor(values: number[], shape?: number[], dtype: TensorDType = 'float32'): Tensor {
  const s = shape ?? [values.length];
  if (dtype === 'float32') return fromArray(Float32Array.from(values), s, { copy: false });
  if (dtype === 'int64') return fromArray(BigInt64Array.from(values.map((v) => BigInt(v))), s);
  if (dtype === 'int32') return fromArray(Int32Array.from(values), s);
  if (dtype === 'uint8' || dtype === 'bool') return fromArray(Uint8Array.from(values), s, { dtype });
  const f64 = fromArray(Float64Array.from(values), s);
  if (dtype === 'float64') return f64;
  try {
    return f64.to(dtype);
  } finally {
    f64.dispose(); // the float64 staging tensor is not the caller's to free
  }
}

export function zeros(shape: number[], dtype: TensorDType = 'float32', device: Device = 'cpu'): Tensor {
  return wrap(native.zeros(shape, dtype, device));
}
export function ones(shape: number[], dtype: TensorDType = 'float32', device: Device = 'cpu'): Tensor {
  return wrap(native.ones(shape, dtype, device));
}
export function empty(shape: number[], dtype: TensorDType = 'float32', device: Device = 'cpu'): Tensor {
  return wrap(native.empty(shape, dtype, device));
}
export function full(shape: number[], value: number, dtype: TensorDType = 'float32', device: Device = 'cpu'): Tensor {
  return wrap(native.full(shape, value, dtype, device));
}
export function arange(
  start: number,
  end: number,
  step = 1,
  dtype: TensorDType = 'int64',
  device: Device = 'cpu',
): Tensor {
  return wrap(native.arange(start, end, step, dtype, device));
}
/** Standard normal samples from the default generator (seed with manualSeed). */
export function randn(shape: number[], dtype: TensorDType = 'float32', device: Device = 'cpu'): Tensor {
  return wrap(native.randn(shape, dtype, device));
}
/** Uniform samples on [low, high). */
export function rand(
  shape: number[],
  low = 0,
  high = 1,
  dtype: TensorDType = 'float32',
  device: Device = 'cpu',
): Tensor {
  return wrap(native.rand(shape, low, high, dtype, device));
}
/** 1 with probability p, else 0. */
export function bernoulli(shape: number[], p: number, dtype: TensorDType = 'float32', device: Device = 'cpu'): Tensor {
  return wrap(native.bernoulli(shape, p, dtype, device));
}

export function cat(xs: Tensor[], dim = 0): Tensor {
  return wrap(
    native.cat(
      xs.map((x) => x.handle),
      dim,
    ),
  );
}
export function stack(xs: Tensor[], dim = 0): Tensor {
  return wrap(
    native.stack(
      xs.map((x) => x.handle),
      dim,
    ),
  );
}
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  return wrap(native.where(cond.handle, h(a), h(b)));
}
