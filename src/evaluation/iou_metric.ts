/**
 * mmseg's IoUMetric (1.x `mmseg/evaluation/metrics/iou_metric.py`, same math
 * as 0.x `mmseg/core/evaluation/metrics.py`):
 *
 * Per image, over pixels whose label != ignore_index (255):
 *   intersect = histogram of pred where pred == label
 *   area_pred = histogram of pred, area_label = histogram of label
 *   union = area_pred + area_label - intersect
 * Histograms have bins 0..num_classes-1; values outside are not counted (as
 * torch.histc with range [0, num_classes-1]). Totals are sums over images.
 *
 *   aAcc = sum(intersect) / sum(area_label)
 *   IoU_c = intersect_c / union_c, Acc_c = intersect_c / area_label_c (0/0 = NaN)
 *   mIoU = nanmean(IoU) * 100, mAcc = nanmean(Acc) * 100, aAcc * 100,
 *   each rounded to 2 decimals with numpy's np.round (round half to even on
 *   x * 100). Per-class values are rounded the same way.
 *
 * So a class absent from both GT and predictions is NaN and skipped; a class
 * predicted but absent from the GT has IoU 0 (counted in mIoU) and Acc NaN.
 *
 * Accumulation: counts are kept as float64 integers (exact up to 2^53 pixels
 * per class). mmseg sums float32 histc tensors, which rounds totals above
 * 2^24 at ~1e-7 relative: it can only matter for a value sitting exactly on a
 * rounding boundary at the second decimal.
 *
 * The accumulator state is plain JSON (getState/setState), so a long
 * evaluation can be saved and resumed with identical results.
 */

export interface AreaStats {
  intersect: Float64Array;
  union: Float64Array;
  pred: Float64Array;
  label: Float64Array;
}

export interface IoUMetricState {
  numClasses: number;
  ignoreIndex: number;
  images: number;
  intersect: number[];
  union: number[];
  pred: number[];
  label: number[];
}

export interface ClassResult {
  name: string;
  /** Percent, rounded to 2 decimals; NaN when undefined (0/0). */
  iou: number;
  acc: number;
}

export interface IoUResults {
  /** Percent, rounded to 2 decimals (mmseg 1.x keys). */
  aAcc: number;
  mIoU: number;
  mAcc: number;
  perClass: ClassResult[];
  images: number;
  /** Unrounded fractions, for anyone who needs more digits. */
  raw: { aAcc: number; mIoU: number; mAcc: number; iou: number[]; acc: number[] };
}

type Labels = ArrayLike<number>;

/** numpy np.round(x, decimals): rint(x * 10^d) / 10^d, ties to even. */
export function npRound(x: number, decimals = 2): number {
  if (!Number.isFinite(x)) return x;
  const k = 10 ** decimals;
  const y = x * k;
  let r = Math.round(y);
  if (r - y === 0.5 && r % 2 !== 0) r -= 1;
  return r / k;
}

/** numpy nanmean: mean of the non-NaN values, NaN when there are none. */
export function nanMean(values: ArrayLike<number>): number {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isNaN(v)) {
      sum += v;
      n++;
    }
  }
  return n === 0 ? NaN : sum / n;
}

/** Per-image areas (mmseg intersect_and_union). `pred` and `label` are flat, same length. */
export function intersectAndUnion(pred: Labels, label: Labels, numClasses: number, ignoreIndex = 255): AreaStats {
  if (pred.length !== label.length) {
    throw new Error(`intersectAndUnion: prediction has ${pred.length} pixels, label has ${label.length}`);
  }
  const intersect = new Float64Array(numClasses);
  const predArea = new Float64Array(numClasses);
  const labelArea = new Float64Array(numClasses);
  // Integer counting per image (exact), then into float64.
  const ci = new Uint32Array(numClasses);
  const cp = new Uint32Array(numClasses);
  const cl = new Uint32Array(numClasses);
  for (let i = 0; i < label.length; i++) {
    const l = label[i];
    if (l === ignoreIndex) continue;
    const p = pred[i];
    const pIn = p >= 0 && p < numClasses && Number.isInteger(p);
    const lIn = l >= 0 && l < numClasses && Number.isInteger(l);
    if (pIn) cp[p]++;
    if (lIn) cl[l]++;
    if (pIn && p === l) ci[p]++;
  }
  const union = new Float64Array(numClasses);
  for (let c = 0; c < numClasses; c++) {
    intersect[c] = ci[c];
    predArea[c] = cp[c];
    labelArea[c] = cl[c];
    union[c] = cp[c] + cl[c] - ci[c];
  }
  return { intersect, union, pred: predArea, label: labelArea };
}

export interface IoUMetricOptions {
  ignoreIndex?: number;
  /** Class names for tables (default class_0, class_1, ...). */
  classNames?: readonly string[];
}

export class IoUMetric {
  readonly numClasses: number;
  readonly ignoreIndex: number;
  readonly classNames: readonly string[];
  private intersect: Float64Array;
  private union: Float64Array;
  private predArea: Float64Array;
  private labelArea: Float64Array;
  private images = 0;

  constructor(numClasses: number, opts: IoUMetricOptions = {}) {
    if (!Number.isInteger(numClasses) || numClasses < 1)
      throw new Error(`IoUMetric: numClasses must be a positive integer, got ${numClasses}`);
    this.numClasses = numClasses;
    this.ignoreIndex = opts.ignoreIndex ?? 255;
    const names = opts.classNames ?? Array.from({ length: numClasses }, (_, i) => `class_${i}`);
    if (names.length !== numClasses)
      throw new Error(`IoUMetric: ${names.length} class names for ${numClasses} classes`);
    this.classNames = [...names];
    this.intersect = new Float64Array(numClasses);
    this.union = new Float64Array(numClasses);
    this.predArea = new Float64Array(numClasses);
    this.labelArea = new Float64Array(numClasses);
  }

  /** Add one image: `pred` (class ids) and `label` (ids, ignoreIndex = ignore), flat HW arrays of equal length. */
  add(pred: Labels, label: Labels): AreaStats {
    const a = intersectAndUnion(pred, label, this.numClasses, this.ignoreIndex);
    this.addAreas(a);
    return a;
  }

  /** Add precomputed per-image areas (e.g. from another process). */
  addAreas(a: AreaStats): void {
    for (let c = 0; c < this.numClasses; c++) {
      this.intersect[c] += a.intersect[c];
      this.union[c] += a.union[c];
      this.predArea[c] += a.pred[c];
      this.labelArea[c] += a.label[c];
    }
    this.images++;
  }

  /** Add totals over many images at once (e.g. the sum of every rank's shard). */
  addTotals(a: AreaStats, images: number): void {
    this.addAreas(a);
    this.images += images - 1;
  }

  get numImages(): number {
    return this.images;
  }

  reset(): void {
    this.intersect.fill(0);
    this.union.fill(0);
    this.predArea.fill(0);
    this.labelArea.fill(0);
    this.images = 0;
  }

  /** Totals so far (copies). */
  totals(): AreaStats {
    return {
      intersect: this.intersect.slice(),
      union: this.union.slice(),
      pred: this.predArea.slice(),
      label: this.labelArea.slice(),
    };
  }

  compute(): IoUResults {
    const C = this.numClasses;
    const iou = new Array<number>(C);
    const acc = new Array<number>(C);
    let sumI = 0;
    let sumL = 0;
    for (let c = 0; c < C; c++) {
      // 0/0 -> NaN, as torch float division.
      iou[c] = this.union[c] === 0 ? NaN : this.intersect[c] / this.union[c];
      acc[c] = this.labelArea[c] === 0 ? NaN : this.intersect[c] / this.labelArea[c];
      sumI += this.intersect[c];
      sumL += this.labelArea[c];
    }
    const aAcc = sumL === 0 ? NaN : sumI / sumL;
    const mIoU = nanMean(iou);
    const mAcc = nanMean(acc);
    return {
      aAcc: npRound(aAcc * 100),
      mIoU: npRound(mIoU * 100),
      mAcc: npRound(mAcc * 100),
      perClass: this.classNames.map((name, c) => ({ name, iou: npRound(iou[c] * 100), acc: npRound(acc[c] * 100) })),
      images: this.images,
      raw: { aAcc, mIoU, mAcc, iou, acc },
    };
  }

  getState(): IoUMetricState {
    return {
      numClasses: this.numClasses,
      ignoreIndex: this.ignoreIndex,
      images: this.images,
      intersect: Array.from(this.intersect),
      union: Array.from(this.union),
      pred: Array.from(this.predArea),
      label: Array.from(this.labelArea),
    };
  }

  setState(st: IoUMetricState): void {
    if (!st || st.numClasses !== this.numClasses || st.ignoreIndex !== this.ignoreIndex) {
      throw new Error(
        `IoUMetric.setState: state is for ${st?.numClasses} classes / ignore ${st?.ignoreIndex}, metric has ` +
          `${this.numClasses} / ${this.ignoreIndex}`,
      );
    }
    const arr = (v: unknown, what: string): Float64Array => {
      if (
        !Array.isArray(v) ||
        v.length !== this.numClasses ||
        !v.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0)
      ) {
        throw new Error(`IoUMetric.setState: bad '${what}' array`);
      }
      return Float64Array.from(v);
    };
    this.intersect = arr(st.intersect, 'intersect');
    this.union = arr(st.union, 'union');
    this.predArea = arr(st.pred, 'pred');
    this.labelArea = arr(st.label, 'label');
    this.images = st.images;
  }

  static fromState(st: IoUMetricState, classNames?: readonly string[]): IoUMetric {
    const m = new IoUMetric(st.numClasses, { ignoreIndex: st.ignoreIndex, classNames });
    m.setState(st);
    return m;
  }
}
