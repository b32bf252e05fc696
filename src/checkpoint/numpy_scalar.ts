/**
 * The value of a numpy scalar read from a pickle (mmengine's message hub keeps metrics such as
 * `best_score` as np.float64): pickle writes one as `numpy.core.multiarray.scalar(dtype, bytes)`,
 * which the reader keeps as an inert OpaqueObject. Plain Python numbers pass through.
 */
import { OpaqueObject } from './formats/pickle_machine.js';

const KINDS: Record<string, { bytes: number; read: (v: DataView, little: boolean) => number }> = {
  f8: { bytes: 8, read: (v, le) => v.getFloat64(0, le) },
  f4: { bytes: 4, read: (v, le) => v.getFloat32(0, le) },
  i8: { bytes: 8, read: (v, le) => Number(v.getBigInt64(0, le)) },
  i4: { bytes: 4, read: (v, le) => v.getInt32(0, le) },
  i2: { bytes: 2, read: (v, le) => v.getInt16(0, le) },
  i1: { bytes: 1, read: (v) => v.getInt8(0) },
  u8: { bytes: 8, read: (v, le) => Number(v.getBigUint64(0, le)) },
  u4: { bytes: 4, read: (v, le) => v.getUint32(0, le) },
  u2: { bytes: 2, read: (v, le) => v.getUint16(0, le) },
  u1: { bytes: 1, read: (v) => v.getUint8(0) },
  b1: { bytes: 1, read: (v) => v.getUint8(0) },
};

/** The number a pickled Python or numpy scalar holds, or null when `v` is neither. */
export function scalarValue(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return Number(v);
  if (!(v instanceof OpaqueObject) || !/^numpy\.(_?core)\.multiarray\.scalar$/.test(v.qualname)) return null;
  const [dtype, data] = v.args;
  if (!(dtype instanceof OpaqueObject) || !(data instanceof Uint8Array)) return null;
  const kind = KINDS[String((dtype.args as unknown[])[0])];
  if (!kind || data.length !== kind.bytes) return null;
  const order = Array.isArray(dtype.state) ? dtype.state[1] : '<';
  return kind.read(new DataView(data.buffer, data.byteOffset, data.length), order !== '>');
}
