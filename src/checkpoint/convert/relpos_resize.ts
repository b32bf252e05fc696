/**
 * Resizing BEiT relative-position bias tables to another window (patch grid), as mmseg's
 * `BEiT.resize_rel_pos_embed` / `_geometric_sequence_interpolation` (a port of unilm's
 * checkpoint loader) does when a 224-pixel checkpoint is loaded into a 640-pixel model.
 *
 * A table has (2Wh-1)(2Ww-1) rows of relative offsets (row-major: rows = Δh, columns = Δw)
 * followed by 3 rows for the cls token, and one column per head. The grid part is resampled:
 *  1. ratio q by bisection on [1.01, 1.5] until the bracket is <= 1e-6, such that the
 *     geometric series 1 + q + ... + q^(n-1) (n = src_size // 2) matches dst_size // 2; the q
 *     used is the LAST midpoint computed (not either bracket end), as in mmseg;
 *  2. source sample positions ±(1, 1+q, 1+q+q^2, ...) and 0: denser near the centre;
 *  3. target positions the integers -t..t with t = dst_size // 2;
 *  4. per head a bicubic not-a-knot spline (SciPy interp2d kind='cubic') on that grid,
 *     evaluated at the targets: first along Δw for every source row, then along Δh;
 * in float64, rounded to float32 (and to the table dtype). The 3 cls rows are kept verbatim.
 * SciPy removed interp2d in 1.14, so mmseg itself can no longer do this on current SciPy.
 *
 * Only square source grids can be inferred from a table's length (mmseg requires square); a
 * non-square destination window is supported by resampling each axis with its own q.
 */
import { numel, type HostTensor } from '../../common/host_tensor.js';
import { fileText } from '../../common/safe_text.js';
import { splineWeights } from './cubic_spline.js';
import { fromFloat64, toFloat64 } from '../formats/float_convert.js';

/** Rows for the cls-token entries at the end of every table. */
export const CLS_ROWS = 3;

/** Sum of the geometric series a (1 - r^n) / (1 - r), written as mmseg writes it. */
function geometricProgression(a: number, r: number, n: number): number {
  return (a * (1.0 - r ** n)) / (1.0 - r);
}

/** The bisection of step 1: ratio for `srcSize` -> `dstSize` grid points along one axis. */
export function geometricRatio(srcSize: number, dstSize: number): number {
  let left = 1.01;
  let right = 1.5;
  let q = left;
  while (right - left > 1e-6) {
    q = (left + right) / 2.0;
    const gp = geometricProgression(1, q, Math.floor(srcSize / 2));
    if (gp > Math.floor(dstSize / 2)) right = q;
    else left = q;
  }
  return q;
}

/** Source sample positions (step 2): [-d_n, ..., -d_1, 0, d_1, ..., d_n], d_1 = 1, d_{k+1} = d_k + q^k. */
export function geometricSamplePositions(srcSize: number, q: number): number[] {
  const dis: number[] = [];
  let cur = 1;
  for (let i = 0; i < Math.floor(srcSize / 2); i++) {
    dis.push(cur);
    cur += q ** (i + 1);
  }
  return [...dis.map((d) => -d).reverse(), 0, ...dis];
}

/** Target positions (step 3): -t, -t+1, ..., t with t = dstSize // 2. */
export function targetPositions(dstSize: number): number[] {
  const t = Math.floor(dstSize / 2);
  const out: number[] = [];
  for (let v = -t; v <= t; v++) out.push(v);
  return out;
}

/** Number of table rows for a window: (2Wh-1)(2Ww-1) + 3. */
export function relPosTableRows(window: readonly [number, number]): number {
  return (2 * window[0] - 1) * (2 * window[1] - 1) + CLS_ROWS;
}

/** Infers the (square) window of a table from its row count. */
export function windowOfTable(rows: number): [number, number] {
  const side = Math.floor(Math.sqrt(rows - CLS_ROWS));
  if (side * side !== rows - CLS_ROWS || side % 2 !== 1) {
    throw new Error(`a relative position table with ${rows} rows is not (2W-1)^2 + 3 for a square window W`);
  }
  return [(side + 1) / 2, (side + 1) / 2];
}

/** Interpolation weights for one axis: (dst grid points) x (src grid points), row-major. */
function axisWeights(srcSize: number, dstSize: number): Float64Array {
  const q = geometricRatio(srcSize, dstSize);
  return splineWeights(geometricSamplePositions(srcSize, q), targetPositions(dstSize));
}

export interface ResizeOptions {
  /** Source window when the table is not square (cannot be inferred from its length). */
  srcWindow?: [number, number];
}

/**
 * Resizes one relative_position_bias_table (rows x heads) to `dstWindow`. Returns the input
 * unchanged if the grid already has the destination size.
 */
export function resizeRelPosTable(
  table: HostTensor,
  dstWindow: [number, number],
  opts: ResizeOptions = {},
): HostTensor {
  if (table.shape.length !== 2)
    throw new Error(`relative position table must be 2-D (rows, heads), got [${table.shape.join(', ')}]`);
  if (!dstWindow.every((w) => Number.isInteger(w) && w >= 1))
    throw new Error(`invalid destination window [${dstWindow.join(', ')}]`);
  const [rows, heads] = table.shape as [number, number];
  const srcWindow = opts.srcWindow ?? windowOfTable(rows);
  if (relPosTableRows(srcWindow) !== rows) {
    throw new Error(`table has ${rows} rows but window [${srcWindow.join(', ')}] needs ${relPosTableRows(srcWindow)}`);
  }
  const srcH = 2 * srcWindow[0] - 1,
    srcW = 2 * srcWindow[1] - 1;
  const dstH = 2 * dstWindow[0] - 1,
    dstW = 2 * dstWindow[1] - 1;
  if (srcH === dstH && srcW === dstW) return table;

  const values = toFloat64(table);
  // mmseg hands the spline float32 values (`.float()`); identical for float32 tables.
  const src = table.dtype === 'float32' ? values : Float64Array.from(values, Math.fround);
  const Ww = axisWeights(srcW, dstW); // dstW x srcW
  const Wh = axisWeights(srcH, dstH); // dstH x srcH
  const outRows = dstH * dstW + CLS_ROWS;
  const out = new Float64Array(outRows * heads);
  const tmp = new Float64Array(srcH * dstW);
  for (let head = 0; head < heads; head++) {
    // Along Δw for every source row: tmp[r, c] = sum_k Ww[c, k] z[r, k].
    for (let r = 0; r < srcH; r++) {
      for (let c = 0; c < dstW; c++) {
        let s = 0;
        for (let k = 0; k < srcW; k++) s += Ww[c * srcW + k]! * src[(r * srcW + k) * heads + head]!;
        tmp[r * dstW + c] = s;
      }
    }
    // Then along Δh for every target column.
    for (let r = 0; r < dstH; r++) {
      for (let c = 0; c < dstW; c++) {
        let s = 0;
        for (let k = 0; k < srcH; k++) s += Wh[r * srcH + k]! * tmp[k * dstW + c]!;
        out[(r * dstW + c) * heads + head] = s;
      }
    }
  }
  const resized = fromFloat64(out, [outRows, heads], table.dtype);
  // The cls rows are copied byte for byte (no float round trip).
  const rowBytes = heads * (table.data.byteLength / numel(table.shape));
  resized.data.set(table.data.subarray((rows - CLS_ROWS) * rowBytes), (outRows - CLS_ROWS) * rowBytes);
  return resized;
}

export interface ResizeTablesResult {
  stateDict: Map<string, HostTensor>;
  /** Keys whose table was resampled, with old and new row counts. */
  resized: { key: string; from: number; to: number }[];
  /** `relative_position_index` keys removed (the model builds its own for its window). */
  droppedIndex: string[];
}

/**
 * Dict-level resize as mmseg does on load: every `*relative_position_index*` key is dropped,
 * every `*relative_position_bias_table*` resized to `dstWindow`. Other entries are kept.
 */
export function resizeRelPosTables(
  stateDict: Map<string, HostTensor>,
  dstWindow: [number, number],
): ResizeTablesResult {
  const out = new Map<string, HostTensor>();
  const resized: ResizeTablesResult['resized'] = [];
  const droppedIndex: string[] = [];
  // Tables are identical across keys more often than not (shared-table expansion): resize once.
  const cache = new Map<Uint8Array, HostTensor>();
  for (const [k, v] of stateDict) {
    if (k.includes('relative_position_index')) {
      droppedIndex.push(k);
      continue;
    }
    if (k.includes('relative_position_bias_table')) {
      let r = cache.get(v.data);
      if (r === undefined) {
        try {
          r = resizeRelPosTable(v, dstWindow);
        } catch (err) {
          throw new Error(`${fileText(k)}: ${(err as Error).message}`);
        }
        cache.set(v.data, r);
      }
      if (r !== v) resized.push({ key: k, from: v.shape[0]!, to: r.shape[0]! });
      out.set(k, r === v ? v : { dtype: r.dtype, shape: r.shape.slice(), data: r.data });
      continue;
    }
    out.set(k, v);
  }
  return { stateDict: out, resized, droppedIndex };
}
