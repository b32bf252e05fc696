/** Sums evaluation areas over the ranks of a process group (distributed evaluation). */
import type { ProcessGroup } from '../distributed/process_group.js';
import { fromArray } from '../tensor/tensor.js';
import type { EvaluateOptions } from './evaluate.js';
import type { AreaStats } from './iou_metric.js';

/** The `shard` option of evaluateDataset for this rank of `pg` (float64 sums: integer areas stay exact). */
export function evaluationShard(pg: ProcessGroup): NonNullable<EvaluateOptions['shard']> {
  return {
    rank: pg.rank,
    worldSize: pg.worldSize,
    reduceTotals: async (a: AreaStats, images: number) => {
      const C = a.intersect.length;
      const packed = new Float64Array(4 * C + 1);
      [a.intersect, a.union, a.pred, a.label].forEach((v, k) => packed.set(v, k * C));
      packed[4 * C] = images;
      const t = fromArray(packed, [packed.length], { dtype: 'float64', copy: true });
      try {
        await pg.allReduceAsync(t);
        const sum = t.toTypedArray() as Float64Array;
        const part = (k: number) => sum.slice(k * C, (k + 1) * C);
        return { areas: { intersect: part(0), union: part(1), pred: part(2), label: part(3) }, images: sum[4 * C]! };
      } finally {
        t.dispose();
      }
    },
  };
}
