/**
 * Float conversions between HostTensor bytes and float64 arrays, for the few places that must
 * compute on checkpoint values in JS (relative-position table resizing). Narrowing rounds to
 * nearest-even, as numpy and torch do.
 */
import { numel, type DType, type HostTensor } from '../../common/host_tensor.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float32 value -> IEEE half bits, round to nearest even (overflow to inf, underflow through subnormals). */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 2 ** (shift - 1);
    let r = Math.floor(mant / 2 ** shift);
    const rem = mant - r * 2 ** shift;
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r++;
  return sign | r;
}

/** float32 value -> bfloat16 bits, round to nearest even (NaN stays a quiet NaN). */
export function float32ToBfloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  const lsb = (x >>> 16) & 1;
  return ((x + 0x7fff + lsb) >>> 16) & 0xffff;
}

/** Reads a float32/float16/bfloat16 tensor as float64 values. */
export function toFloat64(t: HostTensor): Float64Array {
  const n = numel(t.shape);
  const out = new Float64Array(n);
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  switch (t.dtype) {
    case 'float32':
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'float16':
      for (let i = 0; i < n; i++) out[i] = f16BitsToNumber(view.getUint16(2 * i, true));
      break;
    case 'bfloat16':
      for (let i = 0; i < n; i++) {
        u32[0] = view.getUint16(2 * i, true) << 16;
        out[i] = f32[0]!;
      }
      break;
    default:
      throw new Error(`expected a floating-point tensor, got ${t.dtype}`);
  }
  return out;
}

/**
 * Builds a tensor of `dtype` from float64 values: rounded to float32 first (as `torch.Tensor`
 * does with a float64 numpy array), then to half/bfloat16 if asked.
 */
export function fromFloat64(values: Float64Array, shape: number[], dtype: DType): HostTensor {
  const n = values.length;
  if (n !== numel(shape)) throw new Error(`fromFloat64: ${n} values do not fill shape [${shape.join(', ')}]`);
  if (dtype === 'float32') {
    const out = new Float32Array(n);
    out.set(values);
    return { dtype, shape, data: new Uint8Array(out.buffer) };
  }
  if (dtype === 'float16' || dtype === 'bfloat16') {
    const out = new Uint16Array(n);
    const conv = dtype === 'float16' ? float32ToFloat16Bits : float32ToBfloat16Bits;
    for (let i = 0; i < n; i++) out[i] = conv(values[i]!);
    return { dtype, shape, data: new Uint8Array(out.buffer) };
  }
  throw new Error(`fromFloat64: ${dtype} is not a floating-point dtype`);
}
